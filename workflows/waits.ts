/**
 * The run waiting for people: at an approval gate until its quorum approves, someone rejects or it expires; and at a
 * failure until the operator retries, skips or rolls back, or the operator timeout rolls back for them.
 */
import { condition, patched } from '@temporalio/workflow';
import { openGate } from '../core/gates';
import type { Failure, UpgradeEvent } from '../core/machine';
import { type OFFLINE_GATE, skippableHosts } from '../core/operator';
import { type Gate, type GateName, durationMs } from '../core/plan';
import type { StepName } from '../core/planner';
import type { AwaitingOperator, PendingGate } from '../core/status';
import { allowedApprovers, effectiveGate, expandApprovers, refuseUnsigned } from '../core/trust';
import type { FleetRun } from './fleetRun';
import { type GateWaitOutcome, gateClosed, gateOpened } from './metrics';

/** Waits until `decided()`, or `timeoutMs` when given: whether it was decided in time. */
async function decidedInTime(decided: () => boolean, timeoutMs: number | undefined): Promise<boolean> {
  if (timeoutMs === undefined) {
    await condition(decided);
    return true;
  }
  return condition(decided, timeoutMs);
}

/**
 * Where the worker's policy takes signed decisions only, the gate's approvers are those both the policy and the plan
 * allow: a plan may narrow the policy, never widen it. A gate nobody can reach says so, so people see it at once.
 */
function narrowToPolicy(run: FleetRun, pending: PendingGate): void {
  if (!run.trust || !refuseUnsigned(run.trust.policy)) return;
  const allowed = allowedApprovers(run.trust.policy, { fleet: run.plan.fleet, gate: pending.gate, action: 'approve' });
  const effective = effectiveGate(allowed, { approvers: expandApprovers(run.trust.policy, pending.approvers), quorum: pending.quorum });
  pending.approvers = effective.approvers;
  pending.quorum = effective.quorum;
  if (effective.unreachable) pending.unreachable = effective.unreachable;
}

/** Waits at one of the plan's gates, or at a named confirmation (a prerequisite) with its own gate settings. */
export async function waitAtGate(run: FleetRun, name: GateName | `prerequisite:${string}` | typeof OFFLINE_GATE, confirmation?: Gate): Promise<UpgradeEvent> {
  const gate = confirmation ?? run.plan.gates[name as GateName];
  if (!gate) return { type: 'GATE_APPROVED' };
  const timeoutMs = gate.timeout ? durationMs(gate.timeout) : undefined;
  const { status } = run;
  const phaseBefore = status.phase;
  status.phase = 'awaiting-approval';
  status.pendingGate = { ...openGate(name, gate, timeoutMs ? new Date(Date.now() + timeoutMs).toISOString() : undefined), opening: run.nextOpening(name) };
  narrowToPolicy(run, status.pendingGate);
  run.resetGateApprovals();
  run.gateDecision.reset();
  run.publish();
  run.notifier?.notify({ event: 'gate-opened', gate: status.pendingGate });
  const opened = Date.now();
  gateOpened(run.plan.fleet, name);
  let outcome: GateWaitOutcome = 'cancelled';
  try {
    const inTime = await decidedInTime(() => run.gateDecision.made, timeoutMs);
    const decided = run.gateDecision.taken();
    if (!inTime || !decided) {
      outcome = 'expired';
      run.recordAutomaticDecision(name, 'timer', 'expired');
      return { type: 'GATE_REJECTED', reason: `gate ${name} expired after ${gate.timeout} without approval` };
    }
    outcome = decided.approved ? 'approved' : 'rejected';
    return decided.approved ? { type: 'GATE_APPROVED' } : { type: 'GATE_REJECTED', reason: decided.reason };
  } finally {
    gateClosed(run.plan.fleet, name, outcome, Date.now() - opened);
    status.pendingGate = undefined;
    status.phase = phaseBefore;
  }
}

export interface FailureToAttend {
  rollingBack: boolean;
  reason: string;
  /** The public phase the failure happened in. */
  phase: string;
  failure: Failure;
}

function awaitingOperator(run: FleetRun, attend: FailureToAttend, undecided: AwaitingOperator['hosts'], deadline: number | undefined): AwaitingOperator {
  const skippable = skippableHosts(run.plan, attend.failure.step as StepName | undefined, undecided.map((h) => h.host));
  return {
    phase: attend.phase,
    ...(attend.failure.step ? { step: attend.failure.step } : {}),
    rollingBack: attend.rollingBack,
    reason: attend.reason,
    hosts: undecided,
    options: skippable.length ? ['retry', 'skip', 'rollback'] : ['retry', 'rollback'],
    skippable,
    ...(deadline !== undefined ? { expiresAt: new Date(deadline).toISOString() } : {}),
  };
}

/**
 * Waits for the operator's decision about a failure. Skipping one of several failed hosts is no decision about the
 * others: running the step again on them is a retry, which the operator did not choose, so the wait goes on.
 */
export async function waitForOperator(run: FleetRun, attend: FailureToAttend): Promise<UpgradeEvent> {
  const { operatorTimeout } = run.plan.execution;
  const timeoutMs = !attend.rollingBack && operatorTimeout ? durationMs(operatorTimeout) : undefined;
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  let undecided = attend.failure.hosts;
  const opening = run.nextOpening('guided-failure');
  try {
    for (;;) {
      run.status.awaitingOperator = { ...awaitingOperator(run, attend, undecided, deadline), opening };
      run.operatorChoice.reset();
      run.publish();
      // Once per failure: a skip of some of its hosts is no new failure.
      if (undecided === attend.failure.hosts) run.notifier?.notify({ event: 'operator-needed', awaiting: run.status.awaitingOperator });
      const inTime = await decidedInTime(() => run.operatorChoice.made, deadline === undefined ? undefined : Math.max(1, deadline - Date.now()));
      const choice = run.operatorChoice.taken();
      if (!inTime || !choice) {
        run.recordAutomaticDecision('guided-failure', 'timer', 'rollback');
        return { type: 'OPERATOR_ROLLBACK', reason: `no operator decision within ${operatorTimeout}: ${attend.reason}` };
      }
      if (choice.type !== 'OPERATOR_SKIP') return choice;
      run.skip(choice.hosts, attend.rollingBack);
      undecided = undecided.filter((h) => !choice.hosts.includes(h.host));
      // Recorded runs went on after any skip, so only new ones wait for a decision about every failed host.
      if (undecided.length === 0 || !patched('skip-waits-for-every-failed-host')) return choice;
    }
  } finally {
    run.status.awaitingOperator = undefined;
  }
}
