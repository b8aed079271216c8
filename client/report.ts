/**
 * `cutover report RUN`: the run's history and its child workflows' histories, fetched and decoded with the
 * client's data converter into the events core/report reads, then written as HTML, Markdown and SVG.
 */
import { writeFileSync } from 'node:fs';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { decodeArrayFromPayloads, decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow';
import { tsToMs } from '@temporalio/common/lib/time';
import { UserError } from '../core/errors';
import { type RunEvent, type RunHistory, reportHtml, reportMarkdown, reportModel, timelineSvg } from '../core/report';
import { type ReportOptions, parseReportOptions } from '../core/report/options';
import { PhaseAttribute } from '../workflows/messages';
import { runId } from './runs';

// The proto types as the client's fetchHistory() gives them (@temporalio/proto is not a direct dependency).
type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
type ProtoFailure = NonNullable<HistoryEvent['activityTaskFailedEventAttributes']>['failure'];

/** Decodes one history event's payloads into the report's event, or undefined for an event the report does not read. */
function decoder(client: Client) {
  const converter = client.options.loadedDataConverter;
  const first = async (payloads: Payload[] | null | undefined) => (await decodeArrayFromPayloads(converter, payloads))[0];
  const message = async (failure: ProtoFailure) => (await decodeOptionalFailureToOptionalError(converter, failure))?.message ?? 'failed';
  return async (event: HistoryEvent): Promise<RunEvent | undefined> => {
    const id = Number(event.eventId);
    const at = tsToMs(event.eventTime);
    if (event.workflowExecutionStartedEventAttributes) return { kind: 'workflowStarted', id, at, input: await first(event.workflowExecutionStartedEventAttributes.input?.payloads) };
    if (event.upsertWorkflowSearchAttributesEventAttributes) {
      const field = event.upsertWorkflowSearchAttributesEventAttributes.searchAttributes?.indexedFields?.[PhaseAttribute.name];
      // Search attributes are stored as plain JSON, never through a payload codec.
      const phase: unknown = field ? defaultPayloadConverter.fromPayload(field) : undefined;
      return typeof phase === 'string' ? { kind: 'phase', id, at, phase } : undefined;
    }
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) return { kind: 'activityScheduled', id, at, activityType: scheduled.activityType?.name ?? '', input: await first(scheduled.input?.payloads) };
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) return { kind: 'activityClosed', id, at, scheduledId: Number(completed.scheduledEventId), result: await first(completed.result?.payloads) };
    const failed = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    if (failed) return { kind: 'activityClosed', id, at, scheduledId: Number(failed.scheduledEventId), failure: await message(failed.failure) };
    if (event.activityTaskCanceledEventAttributes) return { kind: 'activityClosed', id, at, scheduledId: Number(event.activityTaskCanceledEventAttributes.scheduledEventId), failure: 'cancelled' };
    const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (child) return { kind: 'childStarted', id, at, workflowId: child.workflowId ?? '', input: await first(child.input?.payloads) };
    return closing(event, id, at, first, message);
  };
}

async function closing(
  event: HistoryEvent,
  id: number,
  at: number,
  first: (payloads: Payload[] | null | undefined) => Promise<unknown>,
  message: (failure: ProtoFailure) => Promise<string>,
): Promise<RunEvent | undefined> {
  const childDone = event.childWorkflowExecutionCompletedEventAttributes;
  if (childDone) return { kind: 'childClosed', id, at, workflowId: childDone.workflowExecution?.workflowId ?? '', result: await first(childDone.result?.payloads) };
  const childFailed = event.childWorkflowExecutionFailedEventAttributes;
  if (childFailed) return { kind: 'childClosed', id, at, workflowId: childFailed.workflowExecution?.workflowId ?? '', failure: await message(childFailed.failure) };
  const childOther = event.childWorkflowExecutionCanceledEventAttributes ?? event.childWorkflowExecutionTimedOutEventAttributes ?? event.childWorkflowExecutionTerminatedEventAttributes;
  if (childOther) return { kind: 'childClosed', id, at, workflowId: childOther.workflowExecution?.workflowId ?? '', failure: 'the child workflow did not complete' };
  if (event.workflowExecutionCompletedEventAttributes) return { kind: 'workflowClosed', id, at, status: 'completed', result: await first(event.workflowExecutionCompletedEventAttributes.result?.payloads) };
  const runFailed = event.workflowExecutionFailedEventAttributes;
  if (runFailed) {
    const details = runFailed.failure?.applicationFailureInfo?.details?.payloads;
    return { kind: 'workflowClosed', id, at, status: 'failed', failure: await message(runFailed.failure), details: await first(details) };
  }
  if (event.workflowExecutionCanceledEventAttributes) return { kind: 'workflowClosed', id, at, status: 'cancelled' };
  if (event.workflowExecutionTerminatedEventAttributes) return { kind: 'workflowClosed', id, at, status: 'terminated', failure: event.workflowExecutionTerminatedEventAttributes.reason ?? 'terminated' };
  if (event.workflowExecutionTimedOutEventAttributes) return { kind: 'workflowClosed', id, at, status: 'timed-out' };
  if (event.workflowExecutionContinuedAsNewEventAttributes) return { kind: 'workflowClosed', id, at, status: 'continued-as-new' };
  return undefined;
}

async function events(client: Client, workflowId: string): Promise<RunEvent[]> {
  const decode = decoder(client);
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const decoded = await Promise.all((history.events ?? []).map(decode));
  return decoded.filter((event): event is RunEvent => event !== undefined);
}

/** The run's history and its children's: each child's id is in the parent's history. */
export async function fetchRunHistory(client: Client, run: string): Promise<RunHistory> {
  const workflowId = runId(run);
  // fetchHistory answers a missing run with a bare gRPC NOT_FOUND; describe says it as WorkflowNotFoundError.
  await client.workflow
    .getHandle(workflowId)
    .describe()
    .catch((error: unknown) => {
      throw error instanceof WorkflowNotFoundError ? new UserError(`No run ${workflowId} in namespace ${client.options.namespace}.`) : error;
    });
  const parent = await events(client, workflowId);
  const childIds = parent.flatMap((event) => (event.kind === 'childStarted' ? [event.workflowId] : []));
  const children: RunHistory['children'] = {};
  for (const id of childIds) {
    // A child whose history is gone (retention) is reported from what the parent gave it and got back.
    const childEvents = await events(client, id).catch(() => undefined);
    if (childEvents) children[id] = childEvents;
  }
  return { workflowId, events: parent, children };
}

/** The command's options, parsed (core/report/options.ts); a refusal is the user's to fix. */
export function reportOptions(raw: unknown): ReportOptions {
  const parsed = parseReportOptions(raw);
  if (!parsed.ok) throw new UserError(parsed.message);
  return parsed.options;
}

function write(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'its directory does not exist' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new UserError(`Cannot write the report to ${file}: ${why}`);
  }
}

/** Writes the files asked for; with none, prints the Markdown. Returns what it wrote, for the message. */
export async function writeReport(client: Client, run: string, options: ReportOptions): Promise<string[]> {
  const model = reportModel(await fetchRunHistory(client, run));
  const written: string[] = [];
  if (options.html) write(options.html, reportHtml(model));
  if (options.md) write(options.md, reportMarkdown(model));
  if (options.svg) write(options.svg, timelineSvg(model));
  for (const file of [options.html, options.md, options.svg]) if (file) written.push(file);
  if (written.length === 0) process.stdout.write(reportMarkdown(model));
  return written;
}
