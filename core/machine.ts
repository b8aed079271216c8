/**
 * The run's phase logic as an xstate machine. Pure: it never awaits anything. The workflow feeds it events
 * (phase finished, gate decided) with `transition()` and turns the actions it returns into activities and waits.
 */
import { assign, setup } from 'xstate';
import type { GateName } from './plan';
import type { PhaseName } from './planner';

export type UpgradeEvent =
  | { type: 'PHASE_SUCCEEDED' }
  | { type: 'PHASE_FAILED'; reason: string }
  | { type: 'GATE_APPROVED' }
  | { type: 'GATE_REJECTED'; reason: string }
  | { type: 'OPERATOR_RETRY' }
  | { type: 'OPERATOR_SKIP'; hosts: string[] }
  | { type: 'OPERATOR_ROLLBACK'; reason: string }
  | { type: 'ROLLBACK_SUCCEEDED' }
  | { type: 'ROLLBACK_FAILED'; reason: string }
  | { type: 'CANCELLED' };

export interface UpgradeContext {
  gates: GateName[];
  failure?: string;
  /** The phase state to re-enter when the operator retries or skips. */
  failedIn?: PhaseState;
}

export type UpgradeAction =
  | { type: 'runPhase'; params: { phase: PhaseName } }
  | { type: 'openGate'; params: { gate: GateName } }
  | { type: 'awaitOperator'; params: { rollingBack: boolean } }
  | { type: 'runRollback'; params: Record<string, never> };

/** Phase states the operator can send the run back into. */
const PHASE_STATES = ['draining', 'stopping', 'backingUp', 'upgradingOwner', 'upgradingRest', 'verifying', 'bringingOnline'] as const;
type PhaseState = (typeof PHASE_STATES)[number];

/** A phase state; on success it goes to `next`, through `gate` first when the plan enables that gate. */
const phase = (
  state: PhaseState,
  name: PhaseName,
  next: string,
  gateBefore?: { gate: GateName; state: string },
  more: { GATE_REJECTED?: { target: string; actions: { type: 'recordFailure'; params: Record<string, never> } } } = {},
) => ({
  entry: { type: 'runPhase' as const, params: { phase: name } },
  on: {
    ...more,
    PHASE_SUCCEEDED: gateBefore
      ? [{ guard: { type: 'gateEnabled' as const, params: { gate: gateBefore.gate } }, target: gateBefore.state }, { target: next }]
      : next,
    PHASE_FAILED: { target: 'awaitingOperator', actions: { type: 'recordFailure' as const, params: { state } } },
  },
});

const gate = (name: GateName, next: string, onReject: string) => ({
  entry: { type: 'openGate' as const, params: { gate: name } },
  on: {
    GATE_APPROVED: next,
    GATE_REJECTED: { target: onReject, actions: { type: 'recordFailure' as const, params: {} } },
  },
});

const backToFailedPhase = PHASE_STATES.map((state) => ({ guard: { type: 'failedIn' as const, params: { state } }, target: state }));

export const upgradeMachine = setup({
  types: {
    context: {} as UpgradeContext,
    events: {} as UpgradeEvent,
    input: {} as { gates: GateName[] },
  },
  actions: {
    // Effects are performed by the workflow; the machine only names them.
    runPhase: (_, _params: { phase: PhaseName }) => {},
    openGate: (_, _params: { gate: GateName }) => {},
    awaitOperator: (_, _params: { rollingBack: boolean }) => {},
    runRollback: () => {},
    recordFailure: assign(({ context, event }, params: { state?: PhaseState }) => ({
      failure: 'reason' in event ? event.reason : context.failure,
      failedIn: params.state ?? context.failedIn,
    })),
  },
  guards: {
    gateEnabled: ({ context }, params: { gate: GateName }) => context.gates.includes(params.gate),
    failedIn: ({ context }, params: { state: PhaseState }) => context.failedIn === params.state,
  },
}).createMachine({
  id: 'upgradeFleet',
  context: ({ input }) => ({ gates: input.gates }),
  initial: 'preflight',
  // Cancelling a run (e.g. from the Web UI) rolls it back.
  on: { CANCELLED: '.rollingBack' },
  states: {
    preflight: {
      entry: { type: 'runPhase', params: { phase: 'preflight' } },
      on: {
        PHASE_SUCCEEDED: 'approvalBeforeOffline',
        // Nothing has changed yet: a fleet that fails preflight is not touched at all.
        PHASE_FAILED: { target: 'failed', actions: { type: 'recordFailure', params: {} } },
        // A prerequisite someone would not confirm.
        GATE_REJECTED: { target: 'rejected', actions: { type: 'recordFailure', params: {} } },
      },
    },
    approvalBeforeOffline: gate('beforeOffline', 'draining', 'rejected'),
    draining: phase('draining', 'drain', 'stopping'),
    stopping: phase('stopping', 'stop', 'backingUp'),
    // The optional rehearsal's gate opens inside this phase, after the backup; rejecting it rolls back.
    backingUp: phase('backingUp', 'backup', 'upgradingOwner', { gate: 'beforeSchemaUpgrade', state: 'approvalBeforeSchemaUpgrade' }, {
      GATE_REJECTED: { target: 'rollingBack', actions: { type: 'recordFailure' as const, params: {} } },
    }),
    approvalBeforeSchemaUpgrade: gate('beforeSchemaUpgrade', 'upgradingOwner', 'rollingBack'),
    upgradingOwner: phase('upgradingOwner', 'upgradeOwner', 'upgradingRest'),
    // The optional gate before each wave of remaining hosts opens inside this phase; rejecting it rolls back.
    upgradingRest: phase('upgradingRest', 'upgradeRest', 'verifying', undefined, {
      GATE_REJECTED: { target: 'rollingBack', actions: { type: 'recordFailure' as const, params: {} } },
    }),
    verifying: phase('verifying', 'verify', 'bringingOnline', { gate: 'beforeOnline', state: 'approvalBeforeOnline' }),
    approvalBeforeOnline: gate('beforeOnline', 'bringingOnline', 'rollingBack'),
    bringingOnline: phase('bringingOnline', 'online', 'completed'),
    awaitingOperator: {
      entry: { type: 'awaitOperator', params: { rollingBack: false } },
      on: {
        OPERATOR_RETRY: backToFailedPhase,
        OPERATOR_SKIP: backToFailedPhase,
        OPERATOR_ROLLBACK: { target: 'rollingBack', actions: { type: 'recordFailure', params: {} } },
      },
    },
    rollingBack: {
      entry: { type: 'runRollback', params: {} },
      on: {
        CANCELLED: {},
        ROLLBACK_SUCCEEDED: 'rolledBack',
        ROLLBACK_FAILED: { target: 'rollbackAwaitingOperator', actions: { type: 'recordFailure', params: {} } },
      },
    },
    rollbackAwaitingOperator: {
      entry: { type: 'awaitOperator', params: { rollingBack: true } },
      on: { CANCELLED: {}, OPERATOR_RETRY: 'rollingBack', OPERATOR_SKIP: 'rollingBack', OPERATOR_ROLLBACK: 'rollingBack' },
    },
    completed: { type: 'final' },
    rejected: { type: 'final' },
    failed: { type: 'final' },
    rolledBack: { type: 'final' },
  },
});

export type MachineState =
  | 'preflight'
  | 'approvalBeforeOffline'
  | PhaseState
  | 'approvalBeforeSchemaUpgrade'
  | 'approvalBeforeOnline'
  | 'awaitingOperator'
  | 'rollingBack'
  | 'rollbackAwaitingOperator'
  | 'completed'
  | 'rejected'
  | 'failed'
  | 'rolledBack';

/** Stable public names for the status query and search attribute; internal state names may change. */
export const PUBLIC_PHASE: Record<MachineState, string> = {
  preflight: 'preflight',
  approvalBeforeOffline: 'awaiting-approval',
  draining: 'draining',
  stopping: 'taking-offline',
  backingUp: 'backing-up',
  approvalBeforeSchemaUpgrade: 'awaiting-approval',
  upgradingOwner: 'upgrading-db-owner',
  upgradingRest: 'upgrading-hosts',
  verifying: 'verifying',
  approvalBeforeOnline: 'awaiting-approval',
  bringingOnline: 'bringing-online',
  awaitingOperator: 'awaiting-operator',
  rollingBack: 'rolling-back',
  rollbackAwaitingOperator: 'awaiting-operator',
  completed: 'completed',
  rejected: 'rejected',
  failed: 'failed',
  rolledBack: 'rolled-back',
};
