/**
 * What a batch's outcomes mean for the run, decided without I/O: which hosts succeeded, which failed and why (a
 * version off the upgrade path is a failure of the version step), and the one-line summary the operator reads.
 */
import { keepEnd } from './budget';
import { type UpgradePlan, ownValue } from './plan';
import type { StepBatch, StepName } from './planner';
import type { AwaitingOperator } from './status';
import { lastLine } from './text';

/** One host's result of one step, as the batch activity reports it. */
export interface HostOutcome {
  host: string;
  ok: boolean;
  exitCode: number;
  /** The end of the command's output (stdout and stderr). */
  outputTail: string;
  /** The attempt that decided it; 0 when unknown (the batch was lost). */
  attempt: number;
}

export type FailedHost = AwaitingOperator['hosts'][number];

/** Failures named in a reason; the status lists every failed host. */
const MAX_HOSTS_IN_REASON = 10;

/** Whether each host may start at any version on the upgrade path (and roll back to it), or every host at the source. */
export interface VersionRule {
  perHost: boolean;
}

/**
 * Why a host's version answer stops the run, or undefined when it may be upgraded: the plan's upgrade path lists
 * the versions the target installs over. With per-host versions each host rolls back to the version preflight found
 * on it; runs from before that return every host to the plan's source, so every host had to be at it.
 */
export function versionVerdict(plan: Pick<UpgradePlan, 'source' | 'target' | 'upgradePaths'>, host: string, printed: string, rule: VersionRule = { perHost: true }): string | undefined {
  const allowed = ownValue(plan.upgradePaths, plan.target) ?? [];
  if (!allowed.includes(printed)) {
    const onPath = allowed.join(' or ');
    return `${host} is at ${printed || '(no version printed)'}: ${plan.target} can only be installed over ${onPath}; upgrade it to ${onPath} first, or uninstall it`;
  }
  if (!rule.perHost && printed !== plan.source) {
    return `${host} is at ${printed}, but the plan's source is ${plan.source}: a rollback returns hosts to the source, so every host must be at it (upgrade it to ${plan.source} first, or run a plan for ${printed} hosts)`;
  }
  return undefined;
}

/** The error of a host whose command failed (unreachable, or its command broke), as opposed to what it answered. */
export function commandFailure(step: StepName, exitCode: number, attempt: number): string {
  return `${step} failed (exit ${exitCode}) after ${attempt || 'all'} attempt(s)`;
}

/** Whether `error` says the host's command failed, rather than judging its answer (a version off the path). */
export function isCommandFailure(step: StepName, error: string): boolean {
  return error.startsWith(`${step} failed (exit `);
}

/** Why one host's outcome of a step is a failure, or undefined when the step succeeded on it. */
export function stepError(plan: Pick<UpgradePlan, 'source' | 'target' | 'upgradePaths'>, step: StepName, outcome: HostOutcome, rule?: VersionRule): string | undefined {
  if (!outcome.ok) return commandFailure(step, outcome.exitCode, outcome.attempt);
  if (step === 'version') return versionVerdict(plan, outcome.host, lastLine(outcome.outputTail), rule);
  return undefined;
}

export interface JudgedBatch {
  succeeded: HostOutcome[];
  /** Each failed host with its error, and its output cut to `tailChars`. */
  failed: FailedHost[];
}

export function judgeOutcomes(
  plan: Pick<UpgradePlan, 'source' | 'target' | 'upgradePaths'>,
  batch: StepBatch,
  outcomes: HostOutcome[],
  tailChars: number,
  rule?: VersionRule,
): JudgedBatch {
  const judged: JudgedBatch = { succeeded: [], failed: [] };
  for (const outcome of outcomes) {
    const error = stepError(plan, batch.step, outcome, rule);
    if (error) judged.failed.push({ host: outcome.host, error, outputTail: keepEnd(outcome.outputTail, tailChars) });
    else judged.succeeded.push(outcome);
  }
  return judged;
}

/** One line for a step that failed on some hosts: the first ten with their error and last output line. */
export function failureSummary(step: StepName, failures: FailedHost[]): string {
  const named = failures.slice(0, MAX_HOSTS_IN_REASON).map((f) => `${f.host}: ${f.error}${lastLine(f.outputTail) ? ` (${lastLine(f.outputTail)})` : ''}`);
  const more = failures.length > MAX_HOSTS_IN_REASON ? `; and ${failures.length - MAX_HOSTS_IN_REASON} more (see the status)` : '';
  return `${step} failed on ${failures.length} host(s): ${named.join('; ')}${more}`;
}

/** A phase's problem: its one step's summary, or every step's when several failed. */
export function phaseProblem(summaries: string[], failedHosts: number): string {
  return summaries.length === 1 ? (summaries[0] as string) : `${failedHosts} host(s) failed: ${summaries.join('; ')}`;
}
