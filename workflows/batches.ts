/**
 * Running batches of host steps, shared by upgradeFleet and its child workflow runHostSteps: the activity option
 * profiles, one batch's activity, and a window that runs consecutive batches of a step side by side.
 */
import { ActivityFailure, TimeoutFailure, isCancellation, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities, BatchProgress, HostOutcome } from '../activities';
import { type RetryPolicy, durationMs } from '../core/plan';
import { type DatabaseTask, type StepBatch, batchActivityAttempts, describeBatch, siteTaskQueue } from '../core/planner';

/** A worker that dies mid-batch is noticed within this, not within the (possibly hour-long) step timeout. */
export const HEARTBEAT_TIMEOUT_MS = 20_000;

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
 * Activity option profile of a host step: time for every wave of the batch, and always a heartbeat timeout. The
 * activity counts the plan's attempts per host command itself, so Temporal's attempts go beyond them: an attempt lost
 * to the infrastructure (a worker killed, a timeout) leaves every host's attempts as they were. Runs recorded before
 * this replay unchanged, since the retry policy is no part of what replay compares.
 */
export function hostStepActivity(batch: StepBatch) {
  const waves = Math.ceil(batch.tasks.length / batch.maxParallel);
  return proxyActivities<Activities>({
    startToCloseTimeout: batch.timeoutMs * waves + 30_000,
    heartbeatTimeout: HEARTBEAT_TIMEOUT_MS,
    retry: { ...retryOptions(batch.retry), maximumAttempts: batchActivityAttempts(batch.retry) },
    summary: describeBatch(batch),
    ...siteQueue(batch.site),
  }).runHostStep;
}

/** Activity option profile of one database command or prerequisite check. */
export function databaseActivity(task: DatabaseTask) {
  return proxyActivities<Activities>({
    startToCloseTimeout: task.timeoutMs + 30_000,
    heartbeatTimeout: HEARTBEAT_TIMEOUT_MS,
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
export async function runStepBatch(batch: StepBatch): Promise<HostOutcome[]> {
  try {
    return await hostStepActivity(batch)(batch);
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

/**
 * Consecutive batches that may run side by side: the same step of the same wave. Batches of different steps never
 * overlap (a host's start waits for its upgrade), and waves keep their order (and their gates).
 */
export function segments(batches: StepBatch[]): StepBatch[][] {
  const result: StepBatch[][] = [];
  for (const batch of batches) {
    const last = result[result.length - 1];
    const previous = last?.[last.length - 1];
    if (last && previous && previous.step === batch.step && previous.wave === batch.wave) last.push(batch);
    else result.push([batch]);
  }
  return result;
}

/** How many batches of a segment run at once so that at most maxParallel hosts do: small batches share the fleet's parallelism. */
export function windowFor(segment: StepBatch[]): number {
  const largest = Math.max(...segment.map((batch) => batch.tasks.length));
  const maxParallel = segment[0]?.maxParallel ?? 1;
  return Math.max(1, Math.floor(maxParallel / Math.max(1, largest)));
}

/** Runs `items` in order, at most `window` at a time; once `stop()` says so, starts no more (those under way finish). */
export async function inWindow<T>(items: T[], window: number, run: (item: T) => Promise<void>, stop: () => boolean): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const item = items[next++] as T;
      await run(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, items.length) }, lane));
}

export interface GroupLimits {
  maxHosts: number;
  /** Most batches a group runs, so a child's history stays short; a wave with more is split, in order. */
  maxBatches?: number;
  /** With a gate before each wave, a group never holds two waves, so the gate can open between children. */
  wavePerGroup: boolean;
}

/**
 * Splits a phase's batches into the groups its child workflows run, in order: whole waves (a wave's start follows
 * its upgrade in the same child) or single batches where there are no waves, up to `maxHosts` hosts and
 * `maxBatches` batches a group (at least one unit). Only a wave of more than `maxBatches` batches is cut, into
 * consecutive groups: the children run one after another, so its start still follows its upgrade.
 */
export function groupsOf(batches: StepBatch[], { maxHosts, maxBatches = Infinity, wavePerGroup }: GroupLimits): StepBatch[][] {
  const units: StepBatch[][] = [];
  for (const batch of batches) {
    const last = units[units.length - 1];
    if (last && batch.wave !== undefined && last[0]?.wave === batch.wave && last.length < maxBatches) last.push(batch);
    else units.push([batch]);
  }
  const groups: StepBatch[][] = [];
  let hostsInGroup = 0;
  for (const unit of units) {
    const hosts = new Set(unit.flatMap((batch) => batch.tasks.map((task) => task.host))).size;
    const last = groups[groups.length - 1];
    const fits = last !== undefined && hostsInGroup + hosts <= maxHosts && last.length + unit.length <= maxBatches;
    if (last && fits && !wavePerGroup) {
      last.push(...unit);
      hostsInGroup += hosts;
    } else {
      groups.push([...unit]);
      hostsInGroup = hosts;
    }
  }
  return groups;
}
