/** Starting and steering runs: shared by the CLI and the embedded stack. */
import { Client, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { UserError } from '../core/errors';
import type { UpgradePlan } from '../core/plan';
import { withChildProgress } from '../core/progress';
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
  statusQuery,
  workflowIdForFleet,
} from '../workflows/messages';
import { upgradeFleet } from '../workflows/upgradeFleet';

/** Accepts a workflow id or a fleet name. */
export function runId(arg: string): string {
  return arg.startsWith('cutover-') ? arg : workflowIdForFleet(arg);
}

export async function startRun(client: Client, plan: UpgradePlan, taskQueue: string) {
  const workflowId = workflowIdForFleet(plan.fleet);
  try {
    return await client.workflow.start(upgradeFleet, {
      taskQueue,
      workflowId,
      args: [plan],
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

/** Queries and updates are answered by a worker: without one polling the task queue they time out. */
function noWorker(error: unknown, id: string): UserError | undefined {
  const message = (error as Error)?.message ?? '';
  if (/deadline|DEADLINE_EXCEEDED|timed out|timeout/i.test(message)) {
    return new UserError(`${runId(id)} did not answer (${message}): is a worker running for its task queue? Start one with \`cutover worker\`.`);
  }
  return undefined;
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
  try {
    return await queryStatus(client, runId(id));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No run ${runId(id)} in namespace ${client.options.namespace}.`);
    throw noWorker(error, id) ?? error;
  }
}

export async function decide(client: Client, id: string, kind: 'approve' | 'reject', input: ApprovalInput): Promise<RunStatus> {
  try {
    return await client.workflow.getHandle(runId(id)).executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, { args: [input] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) throw new UserError(`${kind} refused: ${error.cause?.message ?? error.message}`);
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No open run ${runId(id)} in namespace ${client.options.namespace}.`);
    throw noWorker(error, id) ?? error;
  }
}

const OPERATOR_UPDATES = { retry: retryUpdate, skip: skipUpdate, rollback: rollbackUpdate } as const;

/** Guided failure from the CLI: an update, so a refusal comes back at once with its reason. */
export async function operate(client: Client, id: string, action: OperatorAction, input: OperatorInput): Promise<RunStatus> {
  try {
    return await client.workflow.getHandle(runId(id)).executeUpdate(OPERATOR_UPDATES[action], { args: [input] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) throw new UserError(`${action} refused: ${error.cause?.message ?? error.message}`);
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No open run ${runId(id)} in namespace ${client.options.namespace}.`);
    throw noWorker(error, id) ?? error;
  }
}
