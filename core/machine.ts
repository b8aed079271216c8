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
  | { type: 'GATE_REJECTED'; reason: string };

export interface UpgradeContext {
  gates: GateName[];
  failure?: string;
}

export type UpgradeAction =
  | { type: 'runPhase'; params: { phase: PhaseName } }
  | { type: 'openGate'; params: { gate: GateName } };

/** A phase state; on success it goes to `next`, through `gate` first when the plan enables that gate. */
const phase = (name: PhaseName, next: string, gateBefore?: { gate: GateName; state: string }) => ({
  entry: { type: 'runPhase' as const, params: { phase: name } },
  on: {
    PHASE_SUCCEEDED: gateBefore
      ? [{ guard: { type: 'gateEnabled' as const, params: { gate: gateBefore.gate } }, target: gateBefore.state }, { target: next }]
      : next,
    PHASE_FAILED: { target: 'failed', actions: 'recordFailure' as const },
  },
});

const gate = (name: GateName, next: string, onReject: string) => ({
  entry: { type: 'openGate' as const, params: { gate: name } },
  on: {
    GATE_APPROVED: next,
    GATE_REJECTED: { target: onReject, actions: 'recordFailure' as const },
  },
});

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
    recordFailure: assign({ failure: ({ event }) => ('reason' in event ? event.reason : undefined) }),
  },
  guards: {
    gateEnabled: ({ context }, params: { gate: GateName }) => context.gates.includes(params.gate),
  },
}).createMachine({
  id: 'upgradeFleet',
  context: ({ input }) => ({ gates: input.gates }),
  initial: 'preflight',
  states: {
    preflight: phase('preflight', 'approvalBeforeOffline'),
    approvalBeforeOffline: gate('beforeOffline', 'draining', 'rejected'),
    draining: phase('drain', 'stopping'),
    stopping: phase('stop', 'backingUp'),
    backingUp: phase('backup', 'upgradingOwner', { gate: 'beforeSchemaUpgrade', state: 'approvalBeforeSchemaUpgrade' }),
    approvalBeforeSchemaUpgrade: gate('beforeSchemaUpgrade', 'upgradingOwner', 'failed'),
    upgradingOwner: phase('upgradeOwner', 'upgradingRest'),
    upgradingRest: phase('upgradeRest', 'verifying'),
    verifying: phase('verify', 'bringingOnline', { gate: 'beforeOnline', state: 'approvalBeforeOnline' }),
    approvalBeforeOnline: gate('beforeOnline', 'bringingOnline', 'failed'),
    bringingOnline: phase('online', 'completed'),
    completed: { type: 'final' },
    rejected: { type: 'final' },
    failed: { type: 'final' },
  },
});

export type MachineState =
  | 'preflight'
  | 'approvalBeforeOffline'
  | 'draining'
  | 'stopping'
  | 'backingUp'
  | 'approvalBeforeSchemaUpgrade'
  | 'upgradingOwner'
  | 'upgradingRest'
  | 'verifying'
  | 'approvalBeforeOnline'
  | 'bringingOnline'
  | 'completed'
  | 'rejected'
  | 'failed';

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
  completed: 'completed',
  rejected: 'rejected',
  failed: 'failed',
};
