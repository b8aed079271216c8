/** Starting and steering runs: shared by the CLI and the embedded stack. */
import { Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, isGrpcServiceError } from '@temporalio/client';
import { UserError } from '../core/errors';
import type { UpgradePlan } from '../core/plan';
import { withChildProgress } from '../core/progress';
import type { SignedInput } from '../core/inputs';
import type { ApprovalInput, OperatorAction, OperatorInput, RunStatus } from '../core/status';
import {
  FleetAttribute,
  PhaseAttribute,
  approveUpdate,
  hostStepsProgressQuery,
  rejectUpdate,
  retryUpdate,
  rollbackUpdate,
  skipUpdate,
  WORKFLOW_TYPE,
  statusQuery,
  workflowIdForFleet,
} from '../workflows/messages';
import type { upgradeFleet } from '../workflows/upgradeFleet';
import { taskQueue } from './connection';
import { pollerIdentities } from './pollers';

/** Accepts a workflow id or a fleet name. */
export function runId(arg: string): string {
  return arg.startsWith('cutover-') ? arg : workflowIdForFleet(arg);
}

/** Starts a run of the plan; with a signature (`cutover start --key`), its input is the signed envelope. */
export async function startRun(client: Client, plan: UpgradePlan, taskQueue: string, signed?: { plan: unknown; signature: string }) {
  const workflowId = workflowIdForFleet(plan.fleet);
  try {
    // By name, typed by the workflow: the CLI does not load the workflow code (xstate, the machine, the planner).
    return await client.workflow.start<typeof upgradeFleet>(WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: [signed ?? plan],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      typedSearchAttributes: [
        { key: FleetAttribute, value: plan.fleet },
        { key: PhaseAttribute, value: 'preflight' },
      ],
      staticSummary: `Upgrade ${plan.fleet} ${plan.source} → ${plan.target} (${plan.hosts.length} hosts)`,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      const open = await client.workflow.getHandle(workflowId).describe().catch(() => undefined);
      throw new UserError(
        `A run for fleet ${plan.fleet} is already open: ${workflowId}${open ? ` (run ${open.runId}, started ${open.startTime.toISOString()})` : ''}. ` +
          `Follow it with \`cutover status ${workflowId}\`, or finish or cancel it before starting another.`,
      );
    }
    throw error;
  }
}

/** gRPC status codes with which the server gives up on a worker: DEADLINE_EXCEEDED, FAILED_PRECONDITION ("no poller seen for task queue recently"). */
const WORKER_DID_NOT_ANSWER = new Set([4, 9]);

/** The server's gRPC status under a client error (a ServiceError keeps it as its cause). */
function grpcStatus(error: unknown): { code: number; details: string } | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (isGrpcServiceError(cause)) return cause;
  }
  return undefined;
}

/** The task queue whose workers answer the run (it may be another than this CLI's), and whether the run is open. */
async function describeRun(client: Client, workflowId: string): Promise<{ queue: string; open: boolean }> {
  const description = await client.workflow.getHandle(workflowId).describe();
  return { queue: description.taskQueue, open: description.status.name === 'RUNNING' };
}

function startWorkerHint(queue: string): string {
  return queue === taskQueue() ? '`cutover worker`' : `\`CUTOVER_TASK_QUEUE=${queue} cutover worker\``;
}

function noWorkerPolling(workflowId: string, queue: string): UserError {
  return new UserError(`No worker is polling task queue "${queue}", so ${workflowId} cannot answer. Start one with ${startWorkerHint(queue)}.`);
}

/**
 * Queries and updates are answered by a worker: without one polling the run's task queue a query waits for the
 * server's deadline and an update for ever, so that is said at once. An update of a closed run is refused anyway.
 */
async function requireWorker(client: Client, workflowId: string, kind: 'query' | 'update'): Promise<void> {
  const { queue, open } = await describeRun(client, workflowId);
  if (kind === 'update' && !open) return;
  if ((await pollerIdentities(client, queue, 'workflow')).length === 0) throw noWorkerPolling(workflowId, queue);
}

/** A worker polled, yet the server gave up waiting for it to answer: it may have stopped since. */
async function unanswered(client: Client, workflowId: string, error: unknown): Promise<UserError | undefined> {
  const status = grpcStatus(error);
  if (!status || !WORKER_DID_NOT_ANSWER.has(status.code)) return undefined;
  const { queue } = await describeRun(client, workflowId);
  const pollers = await pollerIdentities(client, queue, 'workflow');
  if (pollers.length === 0) return noWorkerPolling(workflowId, queue);
  return new UserError(
    `${workflowId} did not answer (${status.details}): the worker last seen polling task queue "${queue}" (${pollers.join(', ')}) ` +
      `may have stopped or be stuck. Check it, or start one with ${startWorkerHint(queue)}.`,
  );
}

/**
 * Asks the run a query or an update, saying so when no worker is there to answer it. A query only reads, so it is
 * asked beside that check, not after it; an update is sent only once a worker is there to take it.
 */
async function askWorker<T>(client: Client, workflowId: string, kind: 'query' | 'update', ask: () => Promise<T>): Promise<T> {
  const asked = kind === 'query' ? ask() : undefined;
  // Left unanswered when the check fails: its rejection then is nobody's error.
  asked?.catch(() => undefined);
  await requireWorker(client, workflowId, kind);
  try {
    return await (asked ?? ask());
  } catch (error) {
    throw (await unanswered(client, workflowId, error).catch(() => undefined)) ?? error;
  }
}

/** The run's status, with the finished batches of the child workflows it is waiting for laid over it. */
export async function queryStatus(client: Client, workflowId: string): Promise<RunStatus> {
  const status = await client.workflow.getHandle(workflowId).query(statusQuery);
  const progress = await Promise.all(
    // A child the parent has just heard from is no longer listed; one that cannot answer adds nothing.
    (status.children ?? []).map((child) => client.workflow.getHandle(child.workflowId).query(hostStepsProgressQuery).catch(() => ({ batches: [] }))),
  );
  return withChildProgress(status, progress);
}

export async function getStatus(client: Client, id: string): Promise<RunStatus> {
  const workflowId = runId(id);
  try {
    return await askWorker(client, workflowId, 'query', () => queryStatus(client, workflowId));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No run ${workflowId} in namespace ${client.options.namespace}.`);
    throw error;
  }
}

export async function decide(client: Client, id: string, kind: 'approve' | 'reject', input: ApprovalInput | SignedInput): Promise<RunStatus> {
  const workflowId = runId(id);
  try {
    return await askWorker(client, workflowId, 'update', () => client.workflow.getHandle(workflowId).executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, { args: [input] }));
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) throw new UserError(`${kind} refused: ${error.cause?.message ?? error.message}`);
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No open run ${workflowId} in namespace ${client.options.namespace}.`);
    throw error;
  }
}

const OPERATOR_UPDATES = { retry: retryUpdate, skip: skipUpdate, rollback: rollbackUpdate } as const;

/** Guided failure from the CLI: an update, so a refusal comes back at once with its reason. */
export async function operate(client: Client, id: string, action: OperatorAction, input: OperatorInput | SignedInput): Promise<RunStatus> {
  const workflowId = runId(id);
  try {
    return await askWorker(client, workflowId, 'update', () => client.workflow.getHandle(workflowId).executeUpdate(OPERATOR_UPDATES[action], { args: [input] }));
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) throw new UserError(`${action} refused: ${error.cause?.message ?? error.message}`);
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No open run ${workflowId} in namespace ${client.options.namespace}.`);
    throw error;
  }
}
