/**
 * runHostSteps: a child of upgradeFleet that runs a group of its batches (up to execution.hostsPerWorkflow hosts and
 * core/budget.ts BATCHES_PER_CHILD batches), so the parent's history holds one child per group instead of every
 * batch's activity. It decides nothing about the run: it reports each batch's outcomes, and stops starting batches
 * once the failures exceed its budget. (Its type name is in recorded histories, so it keeps it.)
 */
import { ApplicationFailure, setHandler, workflowInfo } from '@temporalio/workflow';
import { windowFor } from '../core/batching';
import { CHILD_RESULT_CHARS, tailShare } from '../core/budget';
import type { HostStepsProgress } from '../core/progress';
import { LEGACY_HEARTBEAT_TIMEOUT_MS } from '../core/heartbeat';
import { runBatch } from './activities';
import { type CompactBatch, type CompactOutcomes, compactOutcomes, expandBatch } from './compact';
import { runSegments } from './hostBatches';
import { hostStepsProgressQuery } from './messages';

export interface HostStepsInput {
  batches: CompactBatch[];
  /** Failed hosts this group may have before it starts no new batch (what the phase's threshold has left). */
  failureBudget: number;
  /** The parent run's heartbeat timeout (core/heartbeat.ts); absent from children of runs that predate it. */
  heartbeatTimeoutMs?: number;
}

export interface HostStepsResult {
  /** Per input batch, its outcomes; null for a batch that did not run (the budget ran out, or every host had failed). */
  batches: (CompactOutcomes | null)[];
}

/**
 * Only upgradeFleet starts this, with ids under its own (`<parent id>/<phase>-<n>`): a direct start would run host
 * steps past every gate, so it fails at once. Workflow info names the parent's id, not its type, so this stops a
 * person with a client, not someone who runs workflow code of their own in the namespace (who could run anything).
 */
function refuseWithoutParent(): void {
  const { parent, workflowId } = workflowInfo();
  if (!parent || !workflowId.startsWith(`${parent.workflowId}/`)) {
    throw ApplicationFailure.nonRetryable('runHostSteps runs only as a child of an upgradeFleet run; start upgradeFleet instead', 'NotAChildRun');
  }
}

/** Only the parent sets it; anything but a positive number of milliseconds counts as absent, never a failed task. */
function childHeartbeatTimeoutMs(input: HostStepsInput): number {
  const ms = input.heartbeatTimeoutMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : LEGACY_HEARTBEAT_TIMEOUT_MS;
}

export async function runHostSteps(input: HostStepsInput): Promise<HostStepsResult> {
  refuseWithoutParent();
  const batches = input.batches.map(expandBatch);
  const index = new Map(batches.map((batch, i) => [batch, i]));
  const results: (CompactOutcomes | null)[] = batches.map(() => null);
  const tailChars = tailShare(CHILD_RESULT_CHARS, batches.reduce((hosts, batch) => hosts + batch.tasks.length, 0));
  const progress: HostStepsProgress = { batches: [] };
  setHandler(hostStepsProgressQuery, () => progress, { description: 'The batches finished so far: hosts that succeeded and failed, per step.' });
  // A host that failed a step takes no later step of this group (its start never follows a failed upgrade).
  const failed = new Set<string>();
  await runSegments(batches, {
    over: () => failed.size > input.failureBudget,
    window: windowFor,
    run: async (whole) => {
      const batch = { ...whole, tasks: whole.tasks.filter((task) => !failed.has(task.host)) };
      if (batch.tasks.length === 0) return;
      const outcomes = await runBatch(batch, childHeartbeatTimeoutMs(input));
      for (const outcome of outcomes) if (!outcome.ok) failed.add(outcome.host);
      results[index.get(whole) as number] = compactOutcomes(batch, outcomes, tailChars);
      progress.batches.push({ step: batch.step, ok: outcomes.filter((o) => o.ok).map((o) => o.host), failed: outcomes.filter((o) => !o.ok).map((o) => o.host) });
    },
  });
  return { batches: results };
}
