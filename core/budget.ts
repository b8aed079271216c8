/**
 * What Temporal can carry, shared out. A payload (an activity's or a child's result, a heartbeat, a query's answer,
 * the run's result) over 2 MB is refused, and a history over 10,240 events slows every replay. Outputs kept for
 * people grow with the fleet, so each place that keeps them gets a fixed budget that its hosts share: a small fleet
 * keeps whole output tails, a large one keeps the end of each.
 */
import { DB_OWNER_ROLE, HOST_STEPS, type UpgradePlan, applicationRole } from './plan';

/** The longest output tail a transport keeps of one command (transport/commandRunner.cjs OUTPUT_TAIL_CHARS). */
export const OUTPUT_TAIL_MAX = 4096;
/** Below this, an output tail no longer says what happened; a fleet large enough to need less is out of budget. */
const TAIL_FLOOR = 64;

/** One batch activity's result and heartbeat: the tails of hosts that failed or whose output is recorded. */
export const BATCH_RESULT_CHARS = 512 * 1024;
/** One child workflow's result: the tails of its failed hosts and of recorded and version outputs. */
export const CHILD_RESULT_CHARS = 1024 * 1024;
/** The run's record of outputs (status.records, and the run's result). */
export const RECORDS_CHARS = 384 * 1024;
/** The failed hosts' tails in the status (each host's, and again in the operator's list). */
export const FAILED_TAILS_CHARS = 192 * 1024;

/** Batch activities a phase runs in the parent workflow; more go to child workflows. About 7 events each. */
export const BATCHES_IN_PARENT = 64;
/** Batch activities one child workflow runs: about 7,000 events, under the 10,240 that Temporal warns at. */
export const BATCHES_PER_CHILD = 1000;

/** How many characters each of `entries` outputs may keep within `budget`. */
export function tailShare(budget: number, entries: number): number {
  return Math.max(TAIL_FLOOR, Math.min(OUTPUT_TAIL_MAX, Math.floor(budget / Math.max(1, entries))));
}

/** The end of `text` in at most `chars` characters, marked where it was cut. */
export function keepEnd(text: string, chars: number): string {
  return text.length <= chars ? text : `…${text.slice(text.length - chars + 1)}`;
}

/** How many outputs a run of `plan` may record: every host's steps with `record`, the rehearsal, the prerequisites. */
export function recordedOutputs(plan: UpgradePlan): number {
  let count = plan.prerequisites.length + 1;
  for (const host of plan.hosts) {
    const roles = host.roles.includes(DB_OWNER_ROLE) ? [DB_OWNER_ROLE, applicationRole(host)] : [applicationRole(host)];
    count += HOST_STEPS.filter((step) => roles.some((role) => plan.roles[role]?.steps[step]?.record === true)).length;
  }
  return count;
}
