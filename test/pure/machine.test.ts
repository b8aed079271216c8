/** The phase machine, driven with xstate's pure transition functions the way the workflow drives it. */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import { type MachineState, PUBLIC_PHASE, type UpgradeAction, type UpgradeEvent, upgradeMachine } from '../../core/machine';
import type { GateName } from '../../core/plan';
import type { PhaseName } from '../../core/planner';

type Snapshot = ReturnType<typeof initialTransition<typeof upgradeMachine>>[0];

const ALL_GATES: GateName[] = ['beforeOffline', 'beforeSchemaUpgrade', 'beforeOnline'];

const PHASE_OF_STATE: Partial<Record<MachineState, PhaseName>> = {
  preflight: 'preflight',
  draining: 'drain',
  stopping: 'stop',
  backingUp: 'backup',
  upgradingOwner: 'upgradeOwner',
  upgradingRest: 'upgradeRest',
  verifying: 'verify',
  bringingOnline: 'online',
};

/** The runPhase / openGate actions a transition asks for, without xstate's internals. */
function work(actions: readonly { type: string; params?: unknown }[]): UpgradeAction[] {
  return actions
    .filter((a): a is UpgradeAction => a.type === 'runPhase' || a.type === 'openGate')
    .map((a) => ({ type: a.type, params: a.params }) as UpgradeAction);
}

interface Step {
  state: MachineState;
  work: UpgradeAction[];
}

/**
 * Runs the machine from its start, answering each requested phase with success and each gate with approval,
 * until it stops or reaches `until`. Returns every state entered with the work it asked for, and the last snapshot.
 */
function drive(gates: GateName[], until?: MachineState): { steps: Step[]; snapshot: Snapshot } {
  let [snapshot, actions] = initialTransition(upgradeMachine, { gates });
  const steps: Step[] = [{ state: snapshot.value as MachineState, work: work(actions) }];
  while (snapshot.status === 'active' && snapshot.value !== until) {
    const requested = work(actions).at(-1);
    if (!requested) throw new Error(`state ${String(snapshot.value)} asked for no work`);
    const event: UpgradeEvent = requested.type === 'runPhase' ? { type: 'PHASE_SUCCEEDED' } : { type: 'GATE_APPROVED' };
    [snapshot, actions] = transition(upgradeMachine, snapshot, event);
    steps.push({ state: snapshot.value as MachineState, work: work(actions) });
    if (steps.length > 50) throw new Error('the machine does not terminate');
  }
  return { steps, snapshot };
}

describe('upgradeMachine', () => {
  it('starts in preflight and asks to run the preflight phase', () => {
    const [snapshot, actions] = initialTransition(upgradeMachine, { gates: ['beforeOffline'] });
    expect(snapshot.value).toBe('preflight');
    expect(snapshot.status).toBe('active');
    expect(snapshot.context).toEqual({ gates: ['beforeOffline'] });
    expect(work(actions)).toEqual([{ type: 'runPhase', params: { phase: 'preflight' } }]);
  });

  it('opens the beforeOffline gate once preflight succeeds', () => {
    const [start] = initialTransition(upgradeMachine, { gates: ['beforeOffline'] });
    const [next, actions] = transition(upgradeMachine, start, { type: 'PHASE_SUCCEEDED' });
    expect(next.value).toBe('approvalBeforeOffline');
    expect(work(actions)).toEqual([{ type: 'openGate', params: { gate: 'beforeOffline' } }]);
  });

  it('runs the happy path in order with only the beforeOffline gate', () => {
    const { steps, snapshot } = drive(['beforeOffline']);
    expect(steps.map((s) => s.state)).toEqual([
      'preflight',
      'approvalBeforeOffline',
      'draining',
      'stopping',
      'backingUp',
      'upgradingOwner',
      'upgradingRest',
      'verifying',
      'bringingOnline',
      'completed',
    ]);
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.failure).toBeUndefined();
  });

  it('visits the optional gates after the backup and after verification', () => {
    expect(drive(ALL_GATES).steps.map((s) => s.state)).toEqual([
      'preflight',
      'approvalBeforeOffline',
      'draining',
      'stopping',
      'backingUp',
      'approvalBeforeSchemaUpgrade',
      'upgradingOwner',
      'upgradingRest',
      'verifying',
      'approvalBeforeOnline',
      'bringingOnline',
      'completed',
    ]);
  });

  it('visits only the gates that are enabled', () => {
    const states = drive(['beforeOffline', 'beforeOnline']).steps.map((s) => s.state);
    expect(states).not.toContain('approvalBeforeSchemaUpgrade');
    expect(states.indexOf('approvalBeforeOnline')).toBe(states.indexOf('verifying') + 1);
  });

  it('asks for exactly the right work on entering each state', () => {
    const { steps } = drive(ALL_GATES);
    for (const { state, work: requested } of steps) {
      const phase = PHASE_OF_STATE[state];
      if (phase) expect(requested, state).toEqual([{ type: 'runPhase', params: { phase } }]);
      else if (state === 'completed') expect(requested).toEqual([]);
    }
    const gatesOpened = steps.flatMap((s) => s.work.filter((a) => a.type === 'openGate').map((a) => [s.state, a.params]));
    expect(gatesOpened).toEqual([
      ['approvalBeforeOffline', { gate: 'beforeOffline' }],
      ['approvalBeforeSchemaUpgrade', { gate: 'beforeSchemaUpgrade' }],
      ['approvalBeforeOnline', { gate: 'beforeOnline' }],
    ]);
  });

  it('ends in rejected when the beforeOffline gate is rejected', () => {
    const { snapshot } = drive(['beforeOffline'], 'approvalBeforeOffline');
    const [next, actions] = transition(upgradeMachine, snapshot, { type: 'GATE_REJECTED', reason: 'window moved' });
    expect(next.value).toBe('rejected');
    expect(next.status).toBe('done');
    expect(next.context.failure).toBe('window moved');
    expect(work(actions)).toEqual([]);
  });

  it.each([
    ['approvalBeforeSchemaUpgrade', 'backup looks wrong'],
    ['approvalBeforeOnline', 'smoke test failed'],
  ] as const)('fails when %s is rejected, since the fleet is already offline', (state, reason) => {
    const { snapshot } = drive(ALL_GATES, state);
    const [next] = transition(upgradeMachine, snapshot, { type: 'GATE_REJECTED', reason });
    expect(next.value).toBe('failed');
    expect(next.status).toBe('done');
    expect(next.context.failure).toBe(reason);
  });

  it.each(Object.keys(PHASE_OF_STATE) as MachineState[])('fails with the reason when a phase fails in %s', (state) => {
    const { snapshot } = drive(ALL_GATES, state);
    expect(snapshot.value).toBe(state);
    const [next, actions] = transition(upgradeMachine, snapshot, { type: 'PHASE_FAILED', reason: `${state} broke` });
    expect(next.value).toBe('failed');
    expect(next.status).toBe('done');
    expect(next.context.failure).toBe(`${state} broke`);
    expect(work(actions)).toEqual([]);
  });

  it('ignores events that do not belong to the current state', () => {
    const { snapshot: inPhase } = drive(['beforeOffline'], 'draining');
    expect(transition(upgradeMachine, inPhase, { type: 'GATE_APPROVED' })[0].value).toBe('draining');
    const { snapshot: atGate } = drive(['beforeOffline'], 'approvalBeforeOffline');
    expect(transition(upgradeMachine, atGate, { type: 'PHASE_SUCCEEDED' })[0].value).toBe('approvalBeforeOffline');
  });

  it('has a public phase name for every state', () => {
    const states = Object.keys(upgradeMachine.root.states).sort();
    expect(Object.keys(PUBLIC_PHASE).sort()).toEqual(states);
    for (const state of states) expect(PUBLIC_PHASE[state as MachineState]).toMatch(/^[a-z][a-z-]*$/);
    expect(PUBLIC_PHASE.approvalBeforeSchemaUpgrade).toBe('awaiting-approval');
  });
});
