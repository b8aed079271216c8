/**
 * What Temporal can carry, shared out. A payload (an activity's or a child's result, a heartbeat, a query's answer,
 * the run's result) over 2 MB is refused, and a history over 10,240 events slows every replay. Outputs kept for
 * people grow with the fleet, so each place that keeps them gets a fixed budget that its hosts share: a small fleet
 * keeps whole output tails, a large one keeps the end of each.
 */
import { DB_OWNER_ROLE, HOST_STEPS, type UpgradePlan, applicationRole, ownValue } from './plan';

/** The longest output tail a transport keeps of one command (transport/commandRunner.cjs OUTPUT_TAIL_CHARS). */
export const OUTPUT_TAIL_MAX = 4096;
/** Below this, an output tail no longer says what happened; a fleet large enough to need less is out of budget. */
const TAIL_FLOOR = 64;

// Budgets count characters. Tails hold no control characters (transport/commandRunner.cjs), so in JSON a character
// takes at most 3 bytes: 512 Ki characters of the most foreign text stay under 1.5 MB.

/** One batch activity's result and heartbeat: the tails of hosts that failed or whose output is recorded. */
export const BATCH_RESULT_CHARS = 512 * 1024;
/** One child workflow's result: the tails of its failed hosts and of recorded and version outputs. */
export const CHILD_RESULT_CHARS = 512 * 1024;
/** The run's record of outputs (status.records, and the run's result): once spent, further outputs are counted, not kept. */
export const RECORDS_CHARS = 256 * 1024;
/** The failed hosts' tails in the status (each host's, and again in the operator's list). */
export const FAILED_TAILS_CHARS = 128 * 1024;

/** Batch activities a phase runs in the parent workflow; more go to child workflows. About 7 events each. */
export const BATCHES_IN_PARENT = 64;
/** Batch activities one child workflow runs: about 7,000 events, under the 10,240 that Temporal warns at. */
export const BATCHES_PER_CHILD = 1000;

/**
 * How many characters each of `entries` outputs may keep within `budget`, but not fewer than `floor`: a batch
 * (at most 2,000 hosts) or a child (10,000) at the floor of 64 still fits its payload.
 */
export function tailShare(budget: number, entries: number, floor = TAIL_FLOOR): number {
  return Math.max(floor, Math.min(OUTPUT_TAIL_MAX, Math.floor(budget / Math.max(1, entries))));
}

/** The end of `text` in at most `chars` characters, marked where it was cut. */
export function keepEnd(text: string, chars: number): string {
  if (text.length <= chars) return text;
  return chars <= 0 ? '' : `…${text.slice(text.length - chars + 1)}`;
}

/**
 * A budget shared by outputs as they come, when their number is only known as an upper bound: each keeps the end of
 * its text within its share of the expected count, and once the budget is spent no more is kept, only counted.
 */
export class OutputBudget {
  private used = 0;
  private readonly share: number;
  /** Outputs that came after the budget was spent. */
  notKept = 0;

  constructor(
    private readonly budget: number,
    expected: number,
  ) {
    this.share = tailShare(budget, expected);
  }

  keep(text: string): string | undefined {
    const kept = keepEnd(text, this.share);
    if (this.used + kept.length > this.budget) {
      this.notKept++;
      return undefined;
    }
    this.used += kept.length;
    return kept;
  }
}

/**
 * How many outputs a run of `plan` may record: every host's steps with `record`, twice (a rollback's step records as
 * the step it undoes does), the rehearsal, the prerequisites. Retries of the same steps may record more.
 */
export function recordedOutputs(plan: UpgradePlan): number {
  let count = plan.prerequisites.length + 1;
  for (const host of plan.hosts) {
    const roles = host.roles.includes(DB_OWNER_ROLE) ? [DB_OWNER_ROLE, applicationRole(host)] : [applicationRole(host)];
    count += 2 * HOST_STEPS.filter((step) => roles.some((role) => ownValue(plan.roles, role)?.steps[step]?.record === true)).length;
  }
  return count;
}
