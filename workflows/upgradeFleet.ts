/**
 * upgradeFleet: runs a validated plan in the vendor's order. The machine (core/machine.ts, made from the procedure
 * in core/procedure.ts) decides what comes next; this workflow performs what it names (phases.ts: phases and the
 * rollback; waits.ts: gates and guided failures) on the run's state (fleetRun.ts), which handlers.ts exposes.
 */
import { ApplicationFailure, CancellationScope, isCancellation, proxyLocalActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { initialTransition, transition } from 'xstate';
import { type UpgradeAction, type UpgradeEvent, publicPhase, upgradeMachine } from '../core/machine';
import { type UpgradePlan, validatePlan } from '../core/plan';
import { backupName, planRun } from '../core/planner';
import { procedurePhase } from '../core/procedure';
import { type RunResult, startingStatus } from '../core/status';
import { statusQuery } from './messages';
import { planDigest, planOfInput } from '../core/trust';
import { FleetRun } from './fleetRun';
import { registerHandlers } from './handlers';
import { invalidIfThrows } from './invalidPlan';
import { notifierFor, notifyOutcome } from './notify';
import { readTrust } from './trust';
import { runPhase, runRollback } from './phases';
import { type RunVersions, planOptions, runVersions } from './versions';
import { waitAtGate, waitForOperator } from './waits';

export async function upgradeFleet(input: unknown): Promise<RunResult> {
  // Runs started before each change (workflows/versions.ts) run as they did, so they replay: before trust policies
  // they read their plan without length caps and their messages leniently, and decide by name.
  const versions = runVersions();
  const { plan: rawPlan, signature } = planOfInput(input);
  const plan = await planOf(rawPlan, versions);
  // The first run id survives resets and continue-as-new, so the restore always finds this run's backup.
  const backup = backupName(plan.fleet, plan.target, workflowInfo().firstExecutionRunId);
  const run = new FleetRun(plan, invalidIfThrows(() => planRun(plan, { backup, ...planOptions(plan, versions) })), versions);
  run.notifier = versions.notifications ? notifierFor(run) : undefined;
  registerHandlers(run);
  if (versions.trusted) run.trust = await readTrust(run, invalidIfThrows(() => planDigest(rawPlan)), signature);
  try {
    await drive(run);
  } finally {
    await notifyOutcome(run);
  }
  return run.result();
}

const { normalizePlan } = proxyLocalActivities<Activities>({ startToCloseTimeout: '1m', retry: { maximumAttempts: 3 } });

/**
 * The input validated again (the workflow trusts no client), or the run fails at once with the readable problems.
 * New runs have it normalized by a local activity, whose result the history keeps: replay never depends on today's
 * defaults. Runs from before validate in the workflow, as they did.
 */
async function planOf(input: unknown, versions: RunVersions): Promise<UpgradePlan> {
  const options = { uncapped: !versions.trusted };
  const validated = versions.planNormalized ? await normalized(input, options) : invalidIfThrows(() => validatePlan(input, { ...options, asBeforeNormalized: true }));
  if (!validated.ok) throw ApplicationFailure.nonRetryable(`The upgrade plan is invalid:\n${validated.message}`, 'InvalidPlan');
  // Runs started before sites had task queues of their own ran every host on the run's queue: they still do.
  if (validated.plan.hosts.some((host) => host.site) && !versions.siteQueues) {
    return { ...validated.plan, hosts: validated.plan.hosts.map(({ site: _site, ...host }) => host) };
  }
  return validated.plan;
}

async function normalized(input: unknown, options: { uncapped: boolean }) {
  // `cutover status` right after a start asks at once: until the run has its plan, it is starting.
  setHandler(statusQuery, () => startingStatus(input));
  try {
    return await normalizePlan(input, options);
  } catch (error) {
    if (isCancellation(error)) throw error;
    throw ApplicationFailure.nonRetryable(`The upgrade plan could not be read: ${error instanceof Error ? error.message : String(error)}`, 'InvalidPlan');
  }
}

/** Feeds the machine the outcome of each piece of work it asks for, until it stops. Cancelling rolls back. */
async function drive(run: FleetRun): Promise<void> {
  let cancelled: unknown;
  let actions: NamedActions;
  [run.snapshot, actions] = initialTransition(upgradeMachine, { gates: run.planned.gates });
  while (run.snapshot.status === 'active') {
    show(run);
    let event: UpgradeEvent;
    try {
      // Compensation runs to the end even when the run is cancelled: it must never stop half-way.
      const work = () => perform(run, actions);
      event = run.snapshot.hasTag('rollback') || cancelled ? await CancellationScope.nonCancellable(work) : await work();
    } catch (error) {
      if (!isCancellation(error) || cancelled) throw error;
      cancelled = error;
      event = { type: 'CANCELLED' };
      run.recordAutomaticDecision('guided-failure', 'cancellation', 'rollback');
    }
    [run.snapshot, actions] = transition(upgradeMachine, run.snapshot, event);
  }
  show(run);
  if (cancelled) throw cancelled;
}

/** The machine's state as the public status: its phase (the state's meta) and the failure it remembers. */
function show(run: FleetRun): void {
  run.status.phase = publicPhase(run.snapshot);
  run.status.failure = run.snapshot.context.failure;
  run.publish();
}

/** The actions a transition returns, as the workflow reads them: each names its type and parameters. */
type NamedActions = readonly { type: string; params?: unknown }[];

const WORK = ['runPhase', 'openGate', 'awaitOperator', 'runRollback'];

/** Performs the work the state's entry names, and returns the event its outcome is. */
async function perform(run: FleetRun, actions: NamedActions): Promise<UpgradeEvent> {
  const action = actions.filter((a): a is UpgradeAction => WORK.includes(a.type)).at(-1);
  if (!action) throw ApplicationFailure.nonRetryable(`machine entered a state without work: ${JSON.stringify(actions)}`);
  const { context } = run.snapshot;
  switch (action.type) {
    case 'runPhase':
      return runPhase(run, action.params.phase);
    case 'openGate':
      return waitAtGate(run, action.params.gate);
    case 'awaitOperator':
      return waitForOperator(run, {
        rollingBack: action.params.rollingBack,
        reason: context.failure ?? 'a step failed',
        phase: action.params.rollingBack ? 'rolling-back' : procedurePhase(context.failedIn ?? 'preflight').publicPhase,
        failure: context.failed ?? { hosts: [] },
      });
    case 'runRollback':
      return runRollback(run);
  }
}
