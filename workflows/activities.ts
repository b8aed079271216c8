/**
 * The activities as the workflows call them: the option profile of a batch of host steps and of a single-host task,
 * and one batch run to an outcome per host, however the activity ended. Activity types keep the names that every
 * recorded history holds: `runHostStep` runs one step on a batch, `runDatabaseTask` one command on one host.
 */
import { ActivityFailure, TimeoutFailure, isCancellation, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities, BatchProgress } from '../activities';
import type { HostOutcome } from '../core/outcomes';
import { type RetryPolicy, durationMs } from '../core/plan';
import { askingBudgetMs } from '../core/databaseQueries';
import { type SingleHostTask, type StepBatch, batchActivityAttempts, describeBatch, siteTaskQueue } from '../core/planner';

/** A worker that dies mid-batch is noticed within this (core/heartbeat.ts), not within the (possibly hour-long) step timeout. */
export { HEARTBEAT_TIMEOUT_MS } from '../core/heartbeat';

function retryOptions(retry: RetryPolicy): ActivityOptions['retry'] {
  return {
    maximumAttempts: retry.maxAttempts,
    initialInterval: durationMs(retry.initialInterval),
    backoffCoefficient: retry.backoff,
    maximumInterval: durationMs(retry.maxInterval),
  };
}

/** A site's hosts are reached by the workers inside its network, which poll the site's own task queue. */
function siteQueue(site: string | undefined): Pick<ActivityOptions, 'taskQueue'> {
  return site ? { taskQueue: siteTaskQueue(workflowInfo().taskQueue, site) } : {};
}

/**
 * Activity option profile of a host step: time for every wave of the batch, and always a heartbeat timeout (the run's:
 * core/heartbeat.ts). The activity counts the plan's attempts per host command itself, so Temporal's attempts go
 * beyond them: an attempt lost to the infrastructure (a worker killed, a timeout) leaves every host's attempts as they
 * were. Runs recorded before this replay unchanged, since the retry policy is no part of what replay compares.
 */
export function hostStepActivity(batch: StepBatch, heartbeatTimeoutMs: number) {
  const waves = Math.ceil(batch.tasks.length / batch.maxParallel);
  return proxyActivities<Activities>({
    startToCloseTimeout: batch.timeoutMs * waves + 30_000,
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: { ...retryOptions(batch.retry), maximumAttempts: batchActivityAttempts(batch.retry) },
    summary: describeBatch(batch),
    ...siteQueue(batch.site),
  }).runHostStep;
}

/** Activity option profile of one database command or prerequisite check. */
export function singleHostActivity(task: SingleHostTask, heartbeatTimeoutMs: number) {
  return proxyActivities<Activities>({
    startToCloseTimeout: task.timeoutMs + askingBudgetMs(task) + 30_000,
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: retryOptions(task.retry),
    summary: `${task.action === 'check' ? 'prerequisite check' : `database ${task.action}`} on ${task.host}`,
    ...siteQueue(task.site),
  }).runDatabaseTask;
}

export function failureMessage(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one batch. When the batch gives up as a whole (timeouts, workers lost on every attempt Temporal had), the hosts
 * its last heartbeat recorded as done keep their outcomes (success, or a failure for good), and every other host in it
 * failed with the batch's error.
 */
export async function runBatch(batch: StepBatch, heartbeatTimeoutMs: number): Promise<HostOutcome[]> {
  try {
    return await hostStepActivity(batch, heartbeatTimeoutMs)(batch);
  } catch (error) {
    if (isCancellation(error)) throw error;
    return outcomesOfLostBatch(batch, error);
  }
}

export function outcomesOfLostBatch(batch: StepBatch, error: unknown): HostOutcome[] {
  const heartbeat = error instanceof ActivityFailure && error.cause instanceof TimeoutFailure ? error.cause.lastHeartbeatDetails : undefined;
  const finished = (heartbeat as BatchProgress | undefined)?.done ?? {};
  const message = failureMessage(error);
  return batch.tasks.map((task) => finished[task.host] ?? { host: task.host, ok: false, exitCode: -1, outputTail: message, attempt: 0 });
}
