/**
 * A run's progress inside its child workflows. A child reports its batches to the parent only when it ends, which
 * for a group of long installs can take hours; meanwhile the parent's status lists the children under way, each
 * answers a `progress` query, and the client lays their finished batches over the parent's status.
 */
import type { StepName } from './planner';
import type { HostState, HostStatus, RunStatus } from './status';

/** What a host is once a step has succeeded on it. */
export const STATE_AFTER_STEP: Record<StepName, HostState> = {
  version: 'checked',
  drain: 'drained',
  stop: 'offline',
  upgrade: 'upgraded',
  start: 'started',
  verify: 'verified',
  online: 'online',
  'rollback-drain': 'drained',
  'rollback-stop': 'offline',
  downgrade: 'downgraded',
  'rollback-start': 'started',
  'rollback-verify': 'verified',
  'rollback-online': 'rolled-back',
};

/** A child workflow's answer to the `progress` query: its batches that have finished, in the order they did. */
export interface HostStepsProgress {
  batches: { step: StepName; ok: string[]; failed: string[] }[];
}

/**
 * `status` with what its running children have finished: hosts move on as the child's batches succeed, or show as
 * failed (the error and output reach the parent's status when the child ends). Counts are recomputed.
 */
export function withChildProgress(status: RunStatus, progress: readonly HostStepsProgress[]): RunStatus {
  if (progress.length === 0) return status;
  const hosts: Record<string, HostStatus> = { ...status.hosts };
  for (const { batches } of progress) {
    for (const batch of batches) {
      // A version answered is not yet a version accepted: the parent checks it against the upgrade path.
      if (batch.step === 'version') continue;
      for (const id of batch.ok) if (hosts[id]) hosts[id] = { state: STATE_AFTER_STEP[batch.step], step: batch.step };
      for (const id of batch.failed) if (hosts[id]) hosts[id] = { state: 'failed', step: batch.step, error: `${batch.step} failed (the output reaches the status when its child workflow ends)` };
    }
  }
  const hostCounts: RunStatus['hostCounts'] = {};
  for (const host of Object.values(hosts)) hostCounts[host.state] = (hostCounts[host.state] ?? 0) + 1;
  return { ...status, hosts, hostCounts };
}
