/**
 * Reads a run's workflow histories (the workflow, every run it continued as, and every child workflow, recursively)
 * and derives from their event times where Cutover's time went. Event times are the server's.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { tsToMs } from '@temporalio/common/lib/time';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

export interface RunHistory {
  workflowId: string;
  runId: string;
  type: string;
  events: number;
  /** The server's history size in bytes (DescribeWorkflowExecution historySizeBytes). */
  bytes: number;
  history: History;
}

const num = (value: unknown): number => (typeof value === 'number' ? value : Number(String(value ?? NaN)));
const timeOf = (event: HistoryEvent): number => tsToMs(event.eventTime);

/** The run and all its descendants: continue-as-new followed, ChildWorkflowExecutionStarted walked recursively. */
export async function collectHistories(client: Client, workflowId: string, runId: string): Promise<RunHistory[]> {
  const out: RunHistory[] = [];
  const queue: { workflowId: string; runId: string }[] = [{ workflowId, runId }];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const next = queue.shift() as { workflowId: string; runId: string };
    if (seen.has(`${next.workflowId}/${next.runId}`)) continue;
    seen.add(`${next.workflowId}/${next.runId}`);
    const handle = client.workflow.getHandle(next.workflowId, next.runId);
    const [history, description] = await Promise.all([handle.fetchHistory(), handle.describe()]);
    const events = history.events ?? [];
    for (const event of events) {
      const child = event.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
      if (child?.workflowId && child.runId) queue.push({ workflowId: child.workflowId, runId: child.runId });
      const continued = event.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
      if (continued) queue.push({ workflowId: next.workflowId, runId: continued });
    }
    out.push({
      workflowId: next.workflowId,
      runId: next.runId,
      type: description.type,
      events: events.length,
      bytes: num(description.raw.workflowExecutionInfo?.historySizeBytes ?? description.historySize ?? 0),
      history,
    });
  }
  return out;
}

/** Writes each history as the JSON the temporal CLI and historyFromJSON use, for inspection (`--keep`). */
export function saveHistories(runs: RunHistory[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const run of runs) writeFileSync(join(dir, `${run.workflowId}--${run.runId}.json`), historyToJSON(run.history));
}

export interface Breakdown {
  runs: number;
  totalEvents: number;
  largestByEvents: { workflowId: string; runId: string; events: number; bytes: number };
  largestByBytes: { workflowId: string; runId: string; events: number; bytes: number };
  /** Root run's WorkflowExecutionStarted → the last run's close event (server clock). */
  workflowSpanMs: number;
  workflowTasks: { count: number; execMs: number; queueMs: number; failed: number; timedOut: number };
  activities: {
    count: number;
    /** ActivityTaskScheduled → ActivityTaskStarted (of the attempt that closed it). */
    queueMs: number;
    /** ActivityTaskStarted → completed/failed/timed out. */
    execMs: number;
    /** ActivityTask completed/failed/timed out → the next WorkflowTaskStarted of that workflow. */
    toNextWorkflowTaskMs: number;
    /** Activities whose closing attempt was not the first. */
    retried: number;
    failed: number;
    timedOut: number;
    /** Heartbeat timeouts, those that closed an activity and those that led to a retry (heartbeatTimeouts()). */
    heartbeatTimeouts: number;
    byType: Record<string, number>;
  };
  children: { count: number; startMs: number; toNextWorkflowTaskMs: number; runMs: number };
  /** beforeOffline: the task that opened the gate completing → the approval's workflow task being scheduled. */
  gateWaitMs?: number;
  /** The approval's update accepted → the run closed: what a person waits for once they approve. */
  afterApprovalMs?: number;
}

function nextWorkflowTaskStarted(events: HistoryEvent[], from: number): number | undefined {
  for (let i = from + 1; i < events.length; i++) {
    const event = events[i] as HistoryEvent;
    if (event.workflowTaskStartedEventAttributes) return timeOf(event);
  }
  return undefined;
}

const first = (runs: RunHistory[]): HistoryEvent | undefined => runs[0]?.history.events?.[0] ?? undefined;

export function breakdown(runs: RunHistory[]): Breakdown {
  const b: Breakdown = {
    runs: runs.length,
    totalEvents: 0,
    largestByEvents: { workflowId: '', runId: '', events: 0, bytes: 0 },
    largestByBytes: { workflowId: '', runId: '', events: 0, bytes: 0 },
    workflowSpanMs: 0,
    workflowTasks: { count: 0, execMs: 0, queueMs: 0, failed: 0, timedOut: 0 },
    activities: { count: 0, queueMs: 0, execMs: 0, toNextWorkflowTaskMs: 0, retried: 0, failed: 0, timedOut: 0, heartbeatTimeouts: heartbeatTimeouts(runs).length, byType: {} },
    children: { count: 0, startMs: 0, toNextWorkflowTaskMs: 0, runMs: 0 },
  };
  const rootStart = first(runs);
  let rootClose = 0;
  let approvedAt: number | undefined;
  for (const run of runs) {
    const summary = { workflowId: run.workflowId, runId: run.runId, events: run.events, bytes: run.bytes };
    b.totalEvents += run.events;
    if (run.events > b.largestByEvents.events) b.largestByEvents = summary;
    if (run.bytes > b.largestByBytes.bytes) b.largestByBytes = summary;
    const events = run.history.events ?? [];
    const byId = new Map<number, HistoryEvent>(events.map((event) => [num(event.eventId), event]));
    const at = (id: unknown) => byId.get(num(id));
    events.forEach((event, index) => {
      const wftDone = event.workflowTaskCompletedEventAttributes ?? event.workflowTaskFailedEventAttributes ?? event.workflowTaskTimedOutEventAttributes;
      if (wftDone) {
        const started = at(wftDone.startedEventId);
        const scheduled = at(wftDone.scheduledEventId);
        b.workflowTasks.count++;
        if (started) b.workflowTasks.execMs += timeOf(event) - timeOf(started);
        if (started && scheduled) b.workflowTasks.queueMs += timeOf(started) - timeOf(scheduled);
        if (event.workflowTaskFailedEventAttributes) b.workflowTasks.failed++;
        if (event.workflowTaskTimedOutEventAttributes) b.workflowTasks.timedOut++;
      }
      const activityDone =
        event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes ?? event.activityTaskCanceledEventAttributes;
      if (activityDone) {
        const scheduled = at(activityDone.scheduledEventId);
        const started = at(activityDone.startedEventId);
        b.activities.count++;
        const type = scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        b.activities.byType[type] = (b.activities.byType[type] ?? 0) + 1;
        if (scheduled && started) b.activities.queueMs += timeOf(started) - timeOf(scheduled);
        if (started) b.activities.execMs += timeOf(event) - timeOf(started);
        if (num(started?.activityTaskStartedEventAttributes?.attempt ?? 1) > 1) b.activities.retried++;
        if (event.activityTaskFailedEventAttributes) b.activities.failed++;
        if (event.activityTaskTimedOutEventAttributes) b.activities.timedOut++;
        const next = nextWorkflowTaskStarted(events, index);
        if (next !== undefined) b.activities.toNextWorkflowTaskMs += next - timeOf(event);
      }
      const childStarted = event.childWorkflowExecutionStartedEventAttributes;
      if (childStarted) {
        const initiated = at(childStarted.initiatedEventId);
        b.children.count++;
        if (initiated) b.children.startMs += timeOf(event) - timeOf(initiated);
      }
      const childClosed =
        event.childWorkflowExecutionCompletedEventAttributes ??
        event.childWorkflowExecutionFailedEventAttributes ??
        event.childWorkflowExecutionTimedOutEventAttributes ??
        event.childWorkflowExecutionCanceledEventAttributes ??
        event.childWorkflowExecutionTerminatedEventAttributes;
      if (childClosed) {
        const startedEvent = at(childClosed.startedEventId);
        if (startedEvent) b.children.runMs += timeOf(event) - timeOf(startedEvent);
        const next = nextWorkflowTaskStarted(events, index);
        if (next !== undefined) b.children.toNextWorkflowTaskMs += next - timeOf(event);
      }
      if (event.workflowExecutionUpdateAcceptedEventAttributes && run === runs[0]) approvedAt ??= timeOf(event);
      if (event.workflowExecutionUpdateAcceptedEventAttributes && b.gateWaitMs === undefined && run === runs[0]) {
        // The approval's workflow task: the last WorkflowTaskScheduled before the acceptance; the gate opened when
        // the workflow task before that one completed.
        let scheduledAt: number | undefined;
        for (let i = index - 1; i >= 0; i--) {
          const earlier = events[i] as HistoryEvent;
          if (scheduledAt === undefined && earlier.workflowTaskScheduledEventAttributes) scheduledAt = timeOf(earlier);
          else if (scheduledAt !== undefined && earlier.workflowTaskCompletedEventAttributes) {
            b.gateWaitMs = scheduledAt - timeOf(earlier);
            break;
          }
        }
      }
      const closed =
        event.workflowExecutionCompletedEventAttributes ?? event.workflowExecutionFailedEventAttributes ?? event.workflowExecutionTimedOutEventAttributes ?? event.workflowExecutionTerminatedEventAttributes;
      if (closed && run.workflowId === runs[0]?.workflowId) rootClose = Math.max(rootClose, timeOf(event));
    });
  }
  if (rootStart && rootClose) b.workflowSpanMs = rootClose - timeOf(rootStart);
  if (approvedAt !== undefined && rootClose) b.afterApprovalMs = rootClose - approvedAt;
  return b;
}

function payloadText(data: Uint8Array | null | undefined): string {
  if (!data) return '';
  const text = Buffer.from(data).toString('utf8');
  try {
    return String(JSON.parse(text));
  } catch {
    return text;
  }
}

/** What failed the attempt before the closing one: an application failure's type, or a timeout. */
function failureKind(failure: Failure | null | undefined): { lastFailure?: string } {
  if (!failure) return {};
  if (isHeartbeatTimeout(failure)) return { lastFailure: 'heartbeat timeout' };
  return { lastFailure: failure.applicationFailureInfo?.type || failure.message || 'a failure' };
}

/** temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT */
const TIMEOUT_TYPE_HEARTBEAT = 4;

type Failure = NonNullable<NonNullable<HistoryEvent['activityTaskTimedOutEventAttributes']>['failure']>;

function isHeartbeatTimeout(failure: Failure | null | undefined): boolean {
  for (let f = failure; f; f = f.cause) if (num(f.timeoutFailureInfo?.timeoutType) === TIMEOUT_TYPE_HEARTBEAT) return true;
  return false;
}

export interface HeartbeatTimeout {
  workflowId: string;
  type: string;
  summary: string;
  /** The server's time of the event that tells of it: the ActivityTaskTimedOut, or the retried attempt's start. */
  atMs: number;
  /** `closed`: the activity timed out for good; `retried`: the attempt that closed it followed this timeout. */
  kind: 'closed' | 'retried';
}

/**
 * Every heartbeat timeout the histories show. A history keeps only an activity's closing attempt: a timeout that led to
 * a retry is that attempt's ActivityTaskStarted `lastFailure` (the last failure before it, so one of several timeouts
 * of the same activity is all that shows, and the closing attempt number says how many attempts there were).
 */
export function heartbeatTimeouts(runs: RunHistory[]): HeartbeatTimeout[] {
  const found: HeartbeatTimeout[] = [];
  for (const run of runs) {
    const events = run.history.events ?? [];
    const byId = new Map<number, HistoryEvent>(events.map((event) => [num(event.eventId), event]));
    for (const event of events) {
      const done = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes ?? event.activityTaskCanceledEventAttributes;
      if (!done) continue;
      const scheduled = byId.get(num(done.scheduledEventId));
      const started = byId.get(num(done.startedEventId));
      const about = { workflowId: run.workflowId, type: scheduled?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?', summary: payloadText(scheduled?.userMetadata?.summary?.data) };
      if (isHeartbeatTimeout(event.activityTaskTimedOutEventAttributes?.failure)) found.push({ ...about, atMs: timeOf(event), kind: 'closed' });
      if (started && isHeartbeatTimeout(started.activityTaskStartedEventAttributes?.lastFailure)) found.push({ ...about, atMs: timeOf(started), kind: 'retried' });
    }
  }
  return found;
}

/** Activities (in any of the histories) that were scheduled before `atMs` and closed after it. */
export function activitiesSpanning(runs: RunHistory[], atMs: number) {
  const spanning: { workflowId: string; type: string; summary: string; heartbeatTimeoutMs: number; attempt: number; lastFailure?: string; scheduledMs: number; startedMs: number; closedMs: number }[] = [];
  for (const run of runs) {
    const events = run.history.events ?? [];
    const byId = new Map<number, HistoryEvent>(events.map((event) => [num(event.eventId), event]));
    for (const event of events) {
      const done = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
      if (!done) continue;
      const scheduled = byId.get(num(done.scheduledEventId));
      const started = byId.get(num(done.startedEventId));
      if (!scheduled || timeOf(scheduled) > atMs || timeOf(event) < atMs) continue;
      const attributes = scheduled.activityTaskScheduledEventAttributes;
      spanning.push({
        workflowId: run.workflowId,
        type: attributes?.activityType?.name ?? '?',
        summary: payloadText(scheduled.userMetadata?.summary?.data),
        heartbeatTimeoutMs: attributes?.heartbeatTimeout ? tsToMs(attributes.heartbeatTimeout) : 0,
        attempt: num(started?.activityTaskStartedEventAttributes?.attempt ?? 0),
        ...failureKind(started?.activityTaskStartedEventAttributes?.lastFailure),
        scheduledMs: timeOf(scheduled),
        startedMs: started ? timeOf(started) : 0,
        closedMs: timeOf(event),
      });
    }
  }
  return spanning;
}
