/**
 * A run's report, made from its history and its children's (core/report/history.ts) without I/O: the phases with
 * their times, every batch of host steps with its host count, the database tasks, the decisions, the failures, the
 * rollback, and for every host its starting and final version and each step's outcome and time.
 *
 * Each payload is parsed with a schema before it is read. These are records the workflow wrote itself, of any
 * version of it, so the schemas read the fields the report needs and let others be (not strict): a history from
 * newer code still makes a report. A payload that does not fit is left out and counted (`unreadable`).
 */
import { z } from 'zod';
import { lastLine } from '../text';
import type { ClosedStatus, RunEvent, RunHistory } from './history';

const HostOutcome = z.object({ host: z.string(), ok: z.boolean(), exitCode: z.number(), outputTail: z.string(), attempt: z.number() });
const StepBatchInput = z.object({ step: z.string(), tasks: z.array(z.object({ host: z.string() })), wave: z.number().optional() });
const DatabaseTaskInput = z.object({ action: z.string(), host: z.string() });
const DatabaseOutcome = z.object({ action: z.string(), result: z.string() });
const CompactInput = z.object({
  batches: z.array(z.union([z.object({ step: z.string(), hosts: z.array(z.string()), wave: z.number().optional() }), StepBatchInput])),
});
const ChildResult = z.object({ batches: z.array(z.object({ ok: z.array(z.string()), tails: z.record(z.string(), z.string()).optional(), failed: z.array(HostOutcome) }).nullable()) });
const Decision = z.object({
  gate: z.string(),
  approver: z.string(),
  decision: z.string(),
  host: z.string().optional(),
  comment: z.string().optional(),
  key: z.string().optional(),
  at: z.string(),
});
const StepRecord = z.object({ step: z.string(), host: z.string(), output: z.string() });
const Backup = z.object({ name: z.string(), checksum: z.string() });
const RunOutcome = z.object({
  outcome: z.enum(['completed', 'rejected', 'rolled-back']),
  backup: Backup.optional(),
  decisions: z.array(Decision),
  reason: z.string().optional(),
  followUp: z.array(z.string()).optional(),
  records: z.array(StepRecord),
  recordsNotKept: z.number().optional(),
});
/** A failed run's failure carries its last status (workflows/fleetRun.ts `result`). */
const FailedStatus = z.object({ decisions: z.array(Decision), records: z.array(StepRecord), backup: Backup.optional() });
const PlanInput = z.object({
  fleet: z.string(),
  product: z.string().optional(),
  source: z.string(),
  target: z.string(),
  hosts: z.array(z.object({ id: z.string(), roles: z.array(z.string()) })),
  followUp: z.array(z.string()).optional(),
});

export type ReportOutcome = 'completed' | 'rejected' | 'rolled-back' | 'running' | Exclude<ClosedStatus, 'completed'>;

export interface PhaseSpan {
  phase: string;
  start: number;
  end: number;
}

export interface BatchSpan {
  step: string;
  start: number;
  end: number;
  hosts: number;
  failed: number;
  wave?: number;
  /** The child workflow it ran in, if any. */
  child?: string;
}

export interface DatabaseSpan {
  action: string;
  host: string;
  start: number;
  end: number;
  ok: boolean;
  result?: string;
}

export interface StepResult {
  ok: boolean;
  /** The time of the batch the host ran in (a batch's hosts run side by side): ms. */
  ms: number;
  /** How many times the step ran on the host (a retry chosen by an operator runs it again). */
  runs: number;
  error?: string;
}

export type HostVerdict = 'upgraded' | 'failed' | 'skipped' | 'rolled back' | 'not finished' | 'not upgraded';

export interface HostRow {
  id: string;
  startVersion?: string;
  finalVersion?: string;
  verdict: HostVerdict;
  steps: Record<string, StepResult>;
}

export interface ReportModel {
  workflowId: string;
  fleet: string;
  product?: string;
  source: string;
  target: string;
  start: number;
  end: number;
  outcome: ReportOutcome;
  reason?: string;
  phases: PhaseSpan[];
  batches: BatchSpan[];
  database: DatabaseSpan[];
  decisions: z.infer<typeof Decision>[];
  /** One line per host-step that failed, in the order they did. */
  failures: { host: string; step: string; at: number; error: string }[];
  rollback?: { start: number; end: number };
  hosts: HostRow[];
  /** The steps in the order the run took them: the columns of the host table. */
  steps: string[];
  records: z.infer<typeof StepRecord>[];
  recordsNotKept?: number;
  backup?: { name: string; checksum: string };
  followUp: string[];
  children: number;
  /** Payloads that did not fit their schema (a history from other code): left out of the report. */
  unreadable: number;
}

class Reader {
  unreadable = 0;
  parse<T>(schema: z.ZodType<T>, value: unknown): T | undefined {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    this.unreadable++;
    return undefined;
  }
}

/** Host outcomes of one batch, however it ran: an activity's list, or a child's compact form. */
interface BatchResult {
  span: BatchSpan;
  hosts: string[];
  outcomes: { host: string; ok: boolean; tail: string }[];
}

function activityBatches(events: RunEvent[], reader: Reader, child?: string): { batches: BatchResult[]; database: DatabaseSpan[] } {
  const scheduled = new Map<number, Extract<RunEvent, { kind: 'activityScheduled' }>>();
  const batches: BatchResult[] = [];
  const database: DatabaseSpan[] = [];
  for (const event of events) {
    if (event.kind === 'activityScheduled') scheduled.set(event.id, event);
    if (event.kind !== 'activityClosed') continue;
    const start = scheduled.get(event.scheduledId);
    if (!start) continue;
    if (start.activityType === 'runHostStep') {
      const input = reader.parse(StepBatchInput, start.input);
      if (!input) continue;
      const hosts = input.tasks.map((task) => task.host);
      const outcomes = event.result === undefined ? [] : (reader.parse(z.array(HostOutcome), event.result) ?? []);
      const results = outcomes.length
        ? outcomes.map((o) => ({ host: o.host, ok: o.ok, tail: o.outputTail }))
        : hosts.map((host) => ({ host, ok: false, tail: event.failure ?? 'the batch failed' }));
      batches.push({
        span: { step: input.step, start: start.at, end: event.at, hosts: hosts.length, failed: results.filter((r) => !r.ok).length, ...(input.wave !== undefined ? { wave: input.wave } : {}), ...(child ? { child } : {}) },
        hosts,
        outcomes: results,
      });
    } else if (start.activityType === 'runDatabaseTask') {
      const input = reader.parse(DatabaseTaskInput, start.input);
      if (!input) continue;
      const result = event.result === undefined ? undefined : reader.parse(DatabaseOutcome, event.result);
      database.push({ action: input.action, host: input.host, start: start.at, end: event.at, ok: result !== undefined, ...(result ? { result: result.result } : event.failure ? { result: event.failure } : {}) });
    }
  }
  return { batches, database };
}

/**
 * A child's batches: from its own history when it was fetched (each activity with its times), else from what the
 * parent gave it and got back (the child's span for each batch).
 */
function childBatches(events: RunEvent[], history: RunHistory, reader: Reader): { batches: BatchResult[]; database: DatabaseSpan[] } {
  const batches: BatchResult[] = [];
  const database: DatabaseSpan[] = [];
  const started = new Map<string, Extract<RunEvent, { kind: 'childStarted' }>>();
  for (const event of events) {
    if (event.kind === 'childStarted') started.set(event.workflowId, event);
    if (event.kind !== 'childClosed') continue;
    const own = history.children[event.workflowId];
    if (own) {
      const found = activityBatches(own, reader, event.workflowId);
      batches.push(...found.batches);
      database.push(...found.database);
      continue;
    }
    const start = started.get(event.workflowId);
    const input = start && reader.parse(CompactInput, start.input);
    const result = event.result === undefined ? undefined : reader.parse(ChildResult, event.result);
    input?.batches.forEach((batch, i) => {
      const hosts = 'hosts' in batch ? batch.hosts : batch.tasks.map((task) => task.host);
      const outcome = result?.batches[i];
      const outcomes = outcome
        ? [...outcome.ok.map((host) => ({ host, ok: true, tail: outcome.tails?.[host] ?? '' })), ...outcome.failed.map((o) => ({ host: o.host, ok: false, tail: o.outputTail }))]
        : [];
      batches.push({
        span: { step: batch.step, start: (start as { at: number }).at, end: event.at, hosts: hosts.length, failed: outcomes.filter((o) => !o.ok).length, child: event.workflowId },
        hosts,
        outcomes,
      });
    });
  }
  return { batches, database };
}

/** Where a run ends: its last phase, not a span of time. */
const FINAL_PHASES = new Set(['completed', 'rejected', 'failed', 'rolled-back']);

function phaseSpans(events: RunEvent[], end: number): PhaseSpan[] {
  const changes = events.filter((event): event is Extract<RunEvent, { kind: 'phase' }> => event.kind === 'phase' && !FINAL_PHASES.has(event.phase));
  const spans: PhaseSpan[] = [];
  changes.forEach((change, i) => {
    if (spans.at(-1)?.phase === change.phase) return;
    const last = spans.at(-1);
    if (last) last.end = change.at;
    spans.push({ phase: change.phase, start: change.at, end: changes[i + 1]?.at ?? end });
  });
  if (spans.length) (spans.at(-1) as PhaseSpan).end = end;
  return spans;
}

const ROLLBACK_STEPS = new Set(['rollback-drain', 'rollback-stop', 'downgrade', 'rollback-start', 'rollback-verify', 'rollback-online']);

function errorLine(step: string, tail: string): string {
  return `${step} failed${lastLine(tail) ? `: ${lastLine(tail)}` : ''}`;
}

/** Every host's row: each step's last outcome and time, the version it answered and where it ended. */
function hostRows(ids: string[], batches: BatchResult[], model: Pick<ReportModel, 'source' | 'target' | 'outcome' | 'decisions'>): HostRow[] {
  const rows = new Map<string, HostRow>(ids.map((id) => [id, { id, verdict: 'not finished', steps: {} }]));
  for (const batch of batches) {
    const ms = batch.span.end - batch.span.start;
    for (const outcome of batch.outcomes) {
      const row = rows.get(outcome.host) ?? { id: outcome.host, verdict: 'not finished' as const, steps: {} };
      rows.set(outcome.host, row);
      const runs = (row.steps[batch.span.step]?.runs ?? 0) + 1;
      row.steps[batch.span.step] = { ok: outcome.ok, ms, runs, ...(outcome.ok ? {} : { error: errorLine(batch.span.step, outcome.tail) }) };
      if (batch.span.step === 'version' && outcome.ok) row.startVersion = lastLine(outcome.tail);
    }
  }
  const skipped = new Set(model.decisions.filter((d) => d.decision === 'skip' && d.host).map((d) => d.host as string));
  for (const row of rows.values()) {
    const failed = Object.values(row.steps).some((step) => !step.ok);
    const upgraded = row.steps.upgrade?.ok === true;
    const downgraded = row.steps.downgrade?.ok === true || Object.keys(row.steps).some((step) => ROLLBACK_STEPS.has(step) && row.steps[step]?.ok);
    row.verdict = skipped.has(row.id)
      ? 'skipped'
      : failed
        ? 'failed'
        : downgraded || model.outcome === 'rolled-back'
          ? 'rolled back'
          : upgraded && row.steps.online?.ok
            ? 'upgraded'
            : model.outcome === 'running'
              ? 'not finished'
              : 'not upgraded';
    const start = row.startVersion ?? model.source;
    row.finalVersion = row.steps.downgrade?.ok ? start : upgraded ? model.target : start;
  }
  return [...rows.values()];
}

interface Ending {
  outcome: ReportOutcome;
  end: number;
  reason?: string;
  result?: z.infer<typeof RunOutcome>;
  failedStatus?: z.infer<typeof FailedStatus>;
}

function ending(events: RunEvent[], reader: Reader): Ending {
  const closed = events.find((event): event is Extract<RunEvent, { kind: 'workflowClosed' }> => event.kind === 'workflowClosed');
  const end = closed?.at ?? events.at(-1)?.at ?? 0;
  if (!closed) return { outcome: 'running', end };
  if (closed.status !== 'completed') {
    const failedStatus = closed.details === undefined ? undefined : reader.parse(FailedStatus, closed.details);
    return { outcome: closed.status, end, ...(closed.failure ? { reason: closed.failure } : {}), ...(failedStatus ? { failedStatus } : {}) };
  }
  const result = reader.parse(RunOutcome, closed.result);
  return { outcome: result?.outcome ?? 'completed', end, ...(result?.reason ? { reason: result.reason } : {}), ...(result ? { result } : {}) };
}

function planOf(events: RunEvent[], reader: Reader): z.infer<typeof PlanInput> | undefined {
  const started = events.find((event) => event.kind === 'workflowStarted');
  if (!started || started.kind !== 'workflowStarted') return undefined;
  const input = started.input as { plan?: unknown; signature?: unknown } | undefined;
  // A signed plan comes in its envelope (core/trust/planSignature.ts).
  const plan = input && typeof input === 'object' && 'signature' in input ? input.plan : input;
  return reader.parse(PlanInput, plan);
}

/** The steps in the order the run first took them. */
function stepOrder(batches: BatchResult[]): string[] {
  return [...new Set([...batches].sort((a, b) => a.span.start - b.span.start).map((batch) => batch.span.step))];
}

export function reportModel(history: RunHistory): ReportModel {
  const reader = new Reader();
  const { events } = history;
  const plan = planOf(events, reader);
  const start = events[0]?.at ?? 0;
  const end = ending(events, reader);
  const own = activityBatches(events, reader);
  const children = childBatches(events, history, reader);
  const batches = [...own.batches, ...children.batches].sort((a, b) => a.span.start - b.span.start || a.span.end - b.span.end);
  const decisions = end.result?.decisions ?? end.failedStatus?.decisions ?? [];
  const base = { source: plan?.source ?? '?', target: plan?.target ?? '?', outcome: end.outcome, decisions };
  const phases = phaseSpans(events, end.end);
  const rollbackPhases = phases.filter((span) => span.phase === 'rolling-back');
  const failures = batches.flatMap((batch) =>
    batch.outcomes.filter((o) => !o.ok).map((o) => ({ host: o.host, step: batch.span.step, at: batch.span.end, error: errorLine(batch.span.step, o.tail) })),
  );
  const backup = end.result?.backup ?? end.failedStatus?.backup;
  return {
    workflowId: history.workflowId,
    fleet: plan?.fleet ?? history.workflowId,
    ...(plan?.product ? { product: plan.product } : {}),
    ...base,
    start,
    end: end.end,
    ...(end.reason ? { reason: end.reason } : {}),
    phases,
    batches: batches.map((batch) => batch.span),
    database: [...own.database, ...children.database].sort((a, b) => a.start - b.start),
    failures,
    ...(rollbackPhases.length ? { rollback: { start: (rollbackPhases[0] as PhaseSpan).start, end: (rollbackPhases.at(-1) as PhaseSpan).end } } : {}),
    hosts: hostRows(plan?.hosts.map((host) => host.id) ?? [], batches, base),
    steps: stepOrder(batches),
    records: end.result?.records ?? end.failedStatus?.records ?? [],
    ...(end.result?.recordsNotKept ? { recordsNotKept: end.result.recordsNotKept } : {}),
    ...(backup ? { backup } : {}),
    followUp: end.result?.followUp ?? (end.outcome === 'completed' ? (plan?.followUp ?? []) : []),
    children: Object.keys(history.children).length,
    unreadable: reader.unreadable,
  };
}
