/**
 * The run's phase logic as an xstate machine, made from the procedure's table (core/procedure.ts). Pure: it never
 * awaits anything. The workflow feeds it events with `transition()` and turns the actions it names into activities
 * and waits. A state's public phase is its `meta`; the rollback states carry the tag `rollback`.
 */
import { assign, setup, type SnapshotFrom } from 'xstate';
import type { GateName } from './plan';
import { type GateBetween, type GateWithin, type PhaseName, type PublicPhase, PROCEDURE, hostsChangedBefore } from './procedure';
import type { AwaitingOperator } from './status';

/** What failed, travelling with the event that says so: the step, and each failed host with its error and output. */
export interface Failure {
  step?: string;
  hosts: AwaitingOperator['hosts'];
}

export type UpgradeEvent =
  | { type: 'PHASE_SUCCEEDED' }
  | { type: 'PHASE_FAILED'; reason: string; failure: Failure }
  | { type: 'GATE_APPROVED' }
  | { type: 'GATE_REJECTED'; reason: string }
  /** A gate inside a phase was approved: a retried phase does not ask again. */
  | { type: 'APPROVED_WITHIN'; gate: GateWithin; wave?: number }
  | { type: 'OPERATOR_RETRY' }
  | { type: 'OPERATOR_SKIP'; hosts: string[] }
  | { type: 'OPERATOR_ROLLBACK'; reason: string }
  | { type: 'ROLLBACK_SUCCEEDED' }
  | { type: 'ROLLBACK_FAILED'; reason: string; failure: Failure }
  | { type: 'CANCELLED' };

export interface UpgradeContext {
  gates: GateName[];
  failure?: string;
  /** The hosts and step of the last failure, for the operator. */
  failed?: Failure;
  /** The phase to re-enter when the operator retries or skips. */
  failedIn?: PhaseName;
  /** Gates inside phases already approved (a wave's gate per wave). */
  approvedWithin: { gate: GateWithin; wave?: number }[];
}

export type UpgradeAction =
  | { type: 'runPhase'; params: { phase: PhaseName } }
  | { type: 'openGate'; params: { gate: GateBetween } }
  | { type: 'awaitOperator'; params: { rollingBack: boolean } }
  | { type: 'runRollback'; params: Record<string, never> };

/** The machine's states, which are the keys of its config: a snapshot's `value` is typed by them. */
export type StateName = PhaseName | GateBetween | 'awaitingOperator' | 'rollingBack' | 'rollbackAwaitingOperator' | FinalState;
type FinalState = 'completed' | 'rejected' | 'failed' | 'rolledBack';
export interface StateMeta {
  publicPhase: PublicPhase;
}

const machineSetup = setup({
  types: {
    context: {} as UpgradeContext,
    events: {} as UpgradeEvent,
    input: {} as { gates: GateName[] },
    tags: {} as 'rollback',
    meta: {} as StateMeta,
  },
  actions: {
    // Effects are performed by the workflow; the machine only names them.
    runPhase: (_, _params: { phase: PhaseName }) => {},
    openGate: (_, _params: { gate: GateBetween }) => {},
    awaitOperator: (_, _params: { rollingBack: boolean }) => {},
    runRollback: () => {},
    recordFailure: assign(({ context, event }, params: { phase?: PhaseName }) => ({
      failure: 'reason' in event ? event.reason : context.failure,
      ...('failure' in event ? { failed: event.failure } : {}),
      failedIn: params.phase ?? context.failedIn,
    })),
    recordApproval: assign(({ context, event }) =>
      event.type === 'APPROVED_WITHIN' ? { approvedWithin: [...context.approvedWithin, { gate: event.gate, ...(event.wave !== undefined ? { wave: event.wave } : {}) }] } : {},
    ),
  },
  guards: {
    gateEnabled: ({ context }, params: { gate: GateName }) => context.gates.includes(params.gate),
    failedIn: ({ context }, params: { phase: PhaseName }) => context.failedIn === params.phase,
  },
});

const recordFailure = (phase?: PhaseName) => ({ type: 'recordFailure' as const, params: phase ? { phase } : {} });
const meta = (publicPhase: PublicPhase) => ({ publicPhase });

/** Where the run goes once the phase at `index` has succeeded: the next phase, through its gate when the plan has it. */
function afterPhase(index: number) {
  const next = PROCEDURE[index + 1];
  if (!next) return 'completed' as const;
  if (!next.gateBefore) return next.phase;
  if (next.gateBefore.always) return next.gateBefore.gate;
  return [{ guard: { type: 'gateEnabled' as const, params: { gate: next.gateBefore.gate } }, target: next.gateBefore.gate }, { target: next.phase }];
}

/** A rejection before any host changed ends the run untouched; after, it rolls back. */
const onRejected = (index: number) => ({ target: hostsChangedBefore(index) ? 'rollingBack' : 'rejected', actions: recordFailure() });

function phaseState(row: (typeof PROCEDURE)[number], index: number) {
  return {
    meta: meta(row.publicPhase),
    entry: { type: 'runPhase' as const, params: { phase: row.phase } },
    on: {
      PHASE_SUCCEEDED: afterPhase(index),
      PHASE_FAILED: row.changesHosts ? { target: 'awaitingOperator', actions: recordFailure(row.phase) } : { target: 'failed', actions: recordFailure() },
      // Preflight asks people to confirm prerequisites; other phases open the gates they hold.
      ...(row.gatesWithin || row.formerGatesWithin || !row.changesHosts ? { GATE_REJECTED: onRejected(row.changesHosts ? index + 1 : index) } : {}),
    },
  };
}

function gateState(gate: GateBetween, next: PhaseName, index: number) {
  return {
    meta: meta('awaiting-approval'),
    entry: { type: 'openGate' as const, params: { gate } },
    on: { GATE_APPROVED: next, GATE_REJECTED: onRejected(index) },
  };
}

/** Each phase's state, after the state of the gate before it: in the procedure's order. */
function procedureStates() {
  return Object.fromEntries(
    PROCEDURE.flatMap((row, index) => [
      ...(row.gateBefore ? [[row.gateBefore.gate, gateState(row.gateBefore.gate, row.phase, index)] as const] : []),
      [row.phase, phaseState(row, index)] as const,
    ]),
  );
}

const backToFailedPhase = PROCEDURE.filter((row) => row.changesHosts).map((row) => ({
  guard: { type: 'failedIn' as const, params: { phase: row.phase } },
  target: row.phase,
}));

const operatorAndRollbackStates = {
  awaitingOperator: {
    meta: meta('awaiting-operator'),
    entry: { type: 'awaitOperator' as const, params: { rollingBack: false } },
    on: { OPERATOR_RETRY: backToFailedPhase, OPERATOR_SKIP: backToFailedPhase, OPERATOR_ROLLBACK: { target: 'rollingBack', actions: recordFailure() } },
  },
  rollingBack: {
    meta: meta('rolling-back'),
    tags: ['rollback' as const],
    entry: { type: 'runRollback' as const, params: {} },
    on: { CANCELLED: {}, ROLLBACK_SUCCEEDED: 'rolledBack', ROLLBACK_FAILED: { target: 'rollbackAwaitingOperator', actions: recordFailure() } },
  },
  rollbackAwaitingOperator: {
    meta: meta('awaiting-operator'),
    tags: ['rollback' as const],
    entry: { type: 'awaitOperator' as const, params: { rollingBack: true } },
    on: { CANCELLED: {}, OPERATOR_RETRY: 'rollingBack', OPERATOR_SKIP: 'rollingBack', OPERATOR_ROLLBACK: 'rollingBack' },
  },
  completed: { type: 'final' as const, meta: meta('completed') },
  rejected: { type: 'final' as const, meta: meta('rejected') },
  failed: { type: 'final' as const, meta: meta('failed') },
  rolledBack: { type: 'final' as const, meta: meta('rolled-back') },
};

export const upgradeMachine = machineSetup.createMachine({
  id: 'upgradeFleet',
  context: ({ input }) => ({ gates: input.gates, approvedWithin: [] }),
  initial: 'preflight',
  on: {
    // Cancelling a run (e.g. from the Web UI) rolls it back.
    CANCELLED: '.rollingBack',
    APPROVED_WITHIN: { actions: { type: 'recordApproval' } },
  },
  states: { ...procedureStates(), ...operatorAndRollbackStates } as Record<StateName, object>,
});

export type UpgradeSnapshot = SnapshotFrom<typeof upgradeMachine>;

/** The stable public name of the state the run is in, from the state's meta. */
export function publicPhase(snapshot: UpgradeSnapshot): PublicPhase {
  const [stateMeta] = Object.values(snapshot.getMeta());
  if (!stateMeta) throw new Error(`state ${String(snapshot.value)} has no public phase`);
  return stateMeta.publicPhase;
}

export function isApprovedWithin(context: UpgradeContext, gate: GateWithin, wave?: number): boolean {
  return context.approvedWithin.some((approval) => approval.gate === gate && approval.wave === wave);
}
