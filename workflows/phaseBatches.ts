/**
 * Runs a phase's batches of host steps for upgradeFleet: in the workflow itself, or in child workflows runHostSteps
 * (core/batching.ts decides). Once more hosts have failed than the phase's threshold, no new batch starts; every
 * failure goes to the operator at the end.
 */
import { executeChild, isCancellation, patched, workflowInfo } from '@temporalio/workflow';
import { childGroups, hostCount, parentWindow, runsInChildren } from '../core/batching';
import type { Failure, UpgradeEvent } from '../core/machine';
import { type FailedHost, type HostOutcome, phaseProblem } from '../core/outcomes';
import { type UpgradePlan, failureLimit } from '../core/plan';
import type { StepBatch, StepName } from '../core/planner';
import { outcomesOfLostBatch, runBatch } from './activities';
import { type CompactOutcomes, compactBatch, compactOutcomes, expandOutcomes } from './compact';
import type { AppliedBatch, FleetRun } from './fleetRun';
import { runSegments } from './hostBatches';
import { runHostSteps } from './runHostSteps';

export interface PhaseBatches {
  /** The phase (or rollback step): names its child workflows. */
  label: string;
  skipping: Set<string>;
  /** The plan's failure threshold, of the hosts these batches run on. */
  threshold: UpgradePlan['execution']['failureThreshold'];
  /** The gate before each wave of the remaining hosts: an event when it was rejected. */
  beforeWave?: (wave: number) => Promise<UpgradeEvent | undefined>;
}

export type PhaseOutcome = { event: UpgradeEvent } | { problem: string; failure: Failure } | Record<string, never>;

/** A phase's failures against its threshold: a host that failed a step of the phase takes no later step of it. */
class PhaseFailures {
  readonly hosts: FailedHost[] = [];
  private readonly failed = new Set<string>();
  private readonly summaries: string[] = [];
  private step: StepName | undefined;

  constructor(readonly limit: number) {}

  get over(): boolean {
    return this.failed.size > this.limit;
  }
  get count(): number {
    return this.failed.size;
  }
  has(host: string): boolean {
    return this.failed.has(host);
  }

  add(step: StepName, applied: AppliedBatch): void {
    if (!applied.problem) return;
    this.summaries.push(applied.problem);
    this.step = step;
    for (const failure of applied.failures) {
      if (!this.failed.has(failure.host)) this.hosts.push(failure);
      this.failed.add(failure.host);
    }
  }

  outcome(): PhaseOutcome {
    if (this.summaries.length === 0) return {};
    return { problem: phaseProblem(this.summaries, this.hosts.length), failure: { ...(this.step ? { step: this.step } : {}), hosts: this.hosts } };
  }
}

/** Opens the wave's gate once per wave, before the first batch (or child) of it. */
function waveGate(beforeWave: PhaseBatches['beforeWave']): (batch: StepBatch | undefined) => Promise<UpgradeEvent | undefined> {
  let opened: number | undefined;
  return async (batch) => {
    if (!beforeWave || batch?.wave === undefined || batch.wave === opened) return undefined;
    opened = batch.wave;
    return beforeWave(batch.wave);
  };
}

interface PhaseContext {
  run: FleetRun;
  options: PhaseBatches;
  failures: PhaseFailures;
  skipping: Pick<Set<string>, 'has'>;
  gateBefore: (batch: StepBatch | undefined) => Promise<UpgradeEvent | undefined>;
  /** Records batches' outcomes, then publishes the status once (a child's results come back together). */
  apply: (results: [StepBatch, HostOutcome[]][]) => void;
}

/** Runs a phase's (or a rollback step's) batches in order. */
export async function runPhaseBatches(run: FleetRun, all: StepBatch[], options: PhaseBatches): Promise<PhaseOutcome> {
  const failures = new PhaseFailures(failureLimit(options.threshold, hostCount(all)));
  const context: PhaseContext = {
    run,
    options,
    failures,
    skipping: { has: (host) => options.skipping.has(host) || failures.has(host) },
    gateBefore: waveGate(options.beforeWave),
    apply: (results) => {
      // Nothing came back: nothing to publish (a publish could upsert a pending phase change at a new place).
      if (results.length === 0) return;
      for (const [batch, outcomes] of results) failures.add(batch.step, run.applyBatch(batch, outcomes));
      run.publish();
    },
  };
  const event = runsInChildren(all, run.plan.execution.hostsPerWorkflow, patched) ? await inChildren(context, all) : await inParent(context, all);
  return event ? { event } : failures.outcome();
}

function inParent({ run, failures, skipping, gateBefore, apply }: PhaseContext, all: StepBatch[]): Promise<UpgradeEvent | undefined> {
  return runSegments(all, {
    over: () => failures.over,
    before: (segment) => gateBefore(segment[0]),
    window: (segment) => parentWindow(segment, patched),
    run: async (whole) => {
      const batch = run.prepareBatch(whole, skipping);
      if (batch) apply([[batch, await run.underWay(batch, () => runBatch(batch, run.heartbeatTimeoutMs))]]);
    },
  });
}

async function inChildren(context: PhaseContext, all: StepBatch[]): Promise<UpgradeEvent | undefined> {
  const { run, options, failures, skipping, gateBefore, apply } = context;
  const groups = childGroups(all, { maxHosts: run.plan.execution.hostsPerWorkflow, wavePerGroup: options.beforeWave !== undefined }, patched);
  for (const group of groups) {
    if (failures.over) break;
    const event = await gateBefore(group[0]);
    if (event) return event;
    const batches = group.flatMap((whole) => run.prepareBatch(whole, skipping) ?? []);
    if (batches.length === 0) continue;
    const results = await runChild(run, options.label, batches, failures.limit - failures.count);
    apply(batches.flatMap((batch, i): [StepBatch, HostOutcome[]][] => (results[i] ? [[batch, expandOutcomes(results[i])]] : [])));
  }
  return undefined;
}

/** One child workflow over `batches`; while it runs, the status names it, so clients can ask it for progress. */
async function runChild(run: FleetRun, label: string, batches: StepBatch[], failureBudget: number): Promise<(CompactOutcomes | null)[]> {
  const workflowId = run.nextChildId(workflowInfo().workflowId, label);
  const hosts = hostCount(batches);
  run.status.children = [{ workflowId, phase: label, hosts }];
  try {
    const child = await executeChild(runHostSteps, {
      workflowId,
      // Children of runs from before the short heartbeat timeout were started without one, and use the old one.
      args: [{ batches: batches.map(compactBatch), failureBudget, ...(run.versions.shortHeartbeat ? { heartbeatTimeoutMs: run.heartbeatTimeoutMs } : {}) }],
      staticSummary: `${label}: ${batches.length} batch(es) on ${hosts} hosts`,
    });
    return child.batches;
  } catch (error) {
    if (isCancellation(error)) throw error;
    return batches.map((batch) => compactOutcomes(batch, outcomesOfLostBatch(batch, error), run.failedTailChars));
  } finally {
    delete run.status.children;
  }
}
