/** The phase machine, driven with xstate's pure transition functions the way the workflow drives it. */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition } from 'xstate';
import {
  type StateMeta,
  type StateName,
  type UpgradeAction,
  type UpgradeEvent,
  isApprovedWithin,
  publicPhase,
  upgradeMachine,
} from '../../core/machine';
import type { GateName } from '../../core/plan';
import { PHASES, PROCEDURE, type PhaseName } from '../../core/procedure';

type Snapshot = ReturnType<typeof initialTransition<typeof upgradeMachine>>[0];

const ALL_GATES: GateName[] = ['beforeOffline', 'beforeSchemaUpgrade', 'beforeOnline'];
const NO_HOSTS = { hosts: [] };

/** The runPhase / openGate actions a transition asks for, without xstate's internals. */
function work(actions: readonly { type: string; params?: unknown }[]): UpgradeAction[] {
  return actions
    .filter((a): a is UpgradeAction => a.type === 'runPhase' || a.type === 'openGate')
    .map((a) => ({ type: a.type, params: a.params }) as UpgradeAction);
}

interface Step {
  state: StateName;
  work: UpgradeAction[];
}

/**
 * Runs the machine from its start, answering each requested phase with success and each gate with approval,
 * until it stops or reaches `until`. Returns every state entered with the work it asked for, and the last snapshot.
 */
function drive(gates: GateName[], until?: StateName): { steps: Step[]; snapshot: Snapshot } {
  let [snapshot, actions] = initialTransition(upgradeMachine, { gates });
  const steps: Step[] = [{ state: snapshot.value as StateName, work: work(actions) }];
  while (snapshot.status === 'active' && snapshot.value !== until) {
    const requested = work(actions).at(-1);
    if (!requested) throw new Error(`state ${String(snapshot.value)} asked for no work`);
    const event: UpgradeEvent = requested.type === 'runPhase' ? { type: 'PHASE_SUCCEEDED' } : { type: 'GATE_APPROVED' };
    [snapshot, actions] = transition(upgradeMachine, snapshot, event);
    steps.push({ state: snapshot.value as StateName, work: work(actions) });
    if (steps.length > 50) throw new Error('the machine does not terminate');
  }
  return { steps, snapshot };
}

describe('upgradeMachine', () => {
  it('starts in preflight and asks to run the preflight phase', () => {
    const [snapshot, actions] = initialTransition(upgradeMachine, { gates: ['beforeOffline'] });
    expect(snapshot.value).toBe('preflight');
    expect(snapshot.status).toBe('active');
    expect(snapshot.context).toEqual({ gates: ['beforeOffline'], approvedWithin: [] });
    expect(work(actions)).toEqual([{ type: 'runPhase', params: { phase: 'preflight' } }]);
  });

  it('opens the beforeOffline gate once preflight succeeds', () => {
    const [start] = initialTransition(upgradeMachine, { gates: ['beforeOffline'] });
    const [next, actions] = transition(upgradeMachine, start, { type: 'PHASE_SUCCEEDED' });
    expect(next.value).toBe('beforeOffline');
    expect(work(actions)).toEqual([{ type: 'openGate', params: { gate: 'beforeOffline' } }]);
  });

  it('runs the happy path in order with only the beforeOffline gate', () => {
    const { steps, snapshot } = drive(['beforeOffline']);
    expect(steps.map((s) => s.state)).toEqual([
      'preflight',
      'beforeOffline',
      'drain',
      'stop',
      'backup',
      'upgradeOwner',
      'upgradeRest',
      'verify',
      'online',
      'completed',
    ]);
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.failure).toBeUndefined();
  });

  it('visits the optional gates after the backup and after verification', () => {
    expect(drive(ALL_GATES).steps.map((s) => s.state)).toEqual([
      'preflight',
      'beforeOffline',
      'drain',
      'stop',
      'backup',
      'beforeSchemaUpgrade',
      'upgradeOwner',
      'upgradeRest',
      'verify',
      'beforeOnline',
      'online',
      'completed',
    ]);
  });

  it('visits only the gates that are enabled', () => {
    const states = drive(['beforeOffline', 'beforeOnline']).steps.map((s) => s.state);
    expect(states).not.toContain('beforeSchemaUpgrade');
    expect(states.indexOf('beforeOnline')).toBe(states.indexOf('verify') + 1);
  });

  it('asks for exactly the right work on entering each state', () => {
    const { steps } = drive(ALL_GATES);
    for (const { state, work: requested } of steps) {
      const phase = (PHASES as readonly string[]).includes(state) ? (state as PhaseName) : undefined;
      if (phase) expect(requested, state).toEqual([{ type: 'runPhase', params: { phase } }]);
      else if (state === 'completed') expect(requested).toEqual([]);
    }
    const gatesOpened = steps.flatMap((s) => s.work.filter((a) => a.type === 'openGate').map((a) => [s.state, a.params]));
    expect(gatesOpened).toEqual([
      ['beforeOffline', { gate: 'beforeOffline' }],
      ['beforeSchemaUpgrade', { gate: 'beforeSchemaUpgrade' }],
      ['beforeOnline', { gate: 'beforeOnline' }],
    ]);
  });

  it('ends in rejected when the beforeOffline gate is rejected', () => {
    const { snapshot } = drive(['beforeOffline'], 'beforeOffline');
    const [next, actions] = transition(upgradeMachine, snapshot, { type: 'GATE_REJECTED', reason: 'window moved' });
    expect(next.value).toBe('rejected');
    expect(next.status).toBe('done');
    expect(next.context.failure).toBe('window moved');
    expect(work(actions)).toEqual([]);
  });

  it.each([
    ['beforeSchemaUpgrade', 'backup looks wrong'],
    ['beforeOnline', 'smoke test failed'],
  ] as const)('rolls back when %s is rejected, since the fleet is already offline', (state, reason) => {
    const { snapshot } = drive(ALL_GATES, state);
    const [next, actions] = transition(upgradeMachine, snapshot, { type: 'GATE_REJECTED', reason });
    expect(next.value).toBe('rollingBack');
    expect(next.context.failure).toBe(reason);
    expect(actions.map((a) => a.type)).toContain('runRollback');
  });

  it('fails without touching anything when preflight fails', () => {
    const { snapshot } = drive(ALL_GATES, 'preflight');
    const [next] = transition(upgradeMachine, snapshot, { type: 'PHASE_FAILED', reason: 'appv-02 is at 4.0', failure: NO_HOSTS });
    expect(next.value).toBe('failed');
    expect(next.status).toBe('done');
    expect(next.context.failure).toBe('appv-02 is at 4.0');
  });

  const CHANGING_PHASES = PHASES.filter((phase) => phase !== 'preflight');

  it.each(CHANGING_PHASES)('waits for the operator when a phase fails in %s, and retry re-enters it', (state) => {
    const { snapshot } = drive(ALL_GATES, state);
    const [waiting, actions] = transition(upgradeMachine, snapshot, { type: 'PHASE_FAILED', reason: `${state} broke`, failure: NO_HOSTS });
    expect(waiting.value).toBe('awaitingOperator');
    expect(waiting.context.failure).toBe(`${state} broke`);
    expect(actions.find((a) => a.type === 'awaitOperator')?.params).toEqual({ rollingBack: false });
    const [retried, again] = transition(upgradeMachine, waiting, { type: 'OPERATOR_RETRY' });
    expect(retried.value).toBe(state);
    expect(work(again)).toEqual([{ type: 'runPhase', params: { phase: state } }]);
    const [skipped] = transition(upgradeMachine, waiting, { type: 'OPERATOR_SKIP', hosts: ['appv-03'] });
    expect(skipped.value).toBe(state);
    const [rolling] = transition(upgradeMachine, waiting, { type: 'OPERATOR_ROLLBACK', reason: 'abort' });
    expect(rolling.value).toBe('rollingBack');
  });

  it('a failing rollback goes to the operator, and ends rolled back once it succeeds', () => {
    const { snapshot } = drive(ALL_GATES, 'upgradeRest');
    const [waiting] = transition(upgradeMachine, snapshot, { type: 'PHASE_FAILED', reason: 'install failed', failure: NO_HOSTS });
    const [rolling] = transition(upgradeMachine, waiting, { type: 'OPERATOR_ROLLBACK', reason: 'abort' });
    const [undoFailed, actions] = transition(upgradeMachine, rolling, { type: 'ROLLBACK_FAILED', reason: 'restore failed', failure: NO_HOSTS });
    expect(undoFailed.value).toBe('rollbackAwaitingOperator');
    expect(actions.find((a) => a.type === 'awaitOperator')?.params).toEqual({ rollingBack: true });
    const [again] = transition(upgradeMachine, undoFailed, { type: 'OPERATOR_RETRY' });
    expect(again.value).toBe('rollingBack');
    const [done] = transition(upgradeMachine, again, { type: 'ROLLBACK_SUCCEEDED' });
    expect(done.value).toBe('rolledBack');
    expect(done.status).toBe('done');
  });

  it('cancellation rolls back from any active state, and is ignored once rolling back', () => {
    for (const state of ['beforeOffline', 'drain', 'upgradeRest', 'beforeOnline'] as StateName[]) {
      const { snapshot } = drive(ALL_GATES, state);
      const [next] = transition(upgradeMachine, snapshot, { type: 'CANCELLED' });
      expect(next.value, state).toBe('rollingBack');
      const [still, actions] = transition(upgradeMachine, next, { type: 'CANCELLED' });
      expect(still.value).toBe('rollingBack');
      expect(actions.map((a) => a.type)).not.toContain('runRollback');
    }
  });

  it('ignores events that do not belong to the current state', () => {
    const { snapshot: inPhase } = drive(['beforeOffline'], 'drain');
    expect(transition(upgradeMachine, inPhase, { type: 'GATE_APPROVED' })[0].value).toBe('drain');
    const { snapshot: atGate } = drive(['beforeOffline'], 'beforeOffline');
    expect(transition(upgradeMachine, atGate, { type: 'PHASE_SUCCEEDED' })[0].value).toBe('beforeOffline');
  });

  it('has a public phase name for every state, in its meta', () => {
    const publicOf = (state: StateName) => (upgradeMachine.root.states[state]?.meta as StateMeta | undefined)?.publicPhase;
    for (const state of Object.keys(upgradeMachine.root.states) as StateName[]) expect(publicOf(state), state).toMatch(/^[a-z][a-z-]*$/);
    expect(publicOf('beforeSchemaUpgrade')).toBe('awaiting-approval');
    expect(publicOf('stop')).toBe('taking-offline');
    for (const row of PROCEDURE) expect(publicOf(row.phase)).toBe(row.publicPhase);
    const { snapshot } = drive(ALL_GATES, 'upgradeRest');
    expect(publicPhase(snapshot)).toBe('upgrading-hosts');
  });

  it('tags the rollback states, which the workflow runs where cancellation cannot reach', () => {
    const tagged = Object.entries(upgradeMachine.root.states).filter(([, node]) => node.tags.includes('rollback')).map(([name]) => name);
    expect(tagged.sort()).toEqual(['rollbackAwaitingOperator', 'rollingBack']);
  });

  it('carries the failed hosts with the failure into the context, for the operator', () => {
    const failure = { step: 'upgrade', hosts: [{ host: 'appv-03', error: 'upgrade failed (exit 1) after 3 attempt(s)', outputTail: 'FAULT' }] };
    const { snapshot } = drive(ALL_GATES, 'upgradeRest');
    const [waiting] = transition(upgradeMachine, snapshot, { type: 'PHASE_FAILED', reason: 'upgrade failed on 1 host(s)', failure });
    expect(waiting.context).toMatchObject({ failure: 'upgrade failed on 1 host(s)', failed: failure, failedIn: 'upgradeRest' });
  });

  it('remembers gates approved inside a phase, without leaving it', () => {
    const { snapshot } = drive(ALL_GATES, 'upgradeRest');
    const [approved, actions] = transition(upgradeMachine, snapshot, { type: 'APPROVED_WITHIN', gate: 'beforeEachBatch', wave: 2 });
    expect(approved.value).toBe('upgradeRest');
    expect(work(actions)).toEqual([]);
    expect(isApprovedWithin(approved.context, 'beforeEachBatch', 2)).toBe(true);
    expect(isApprovedWithin(approved.context, 'beforeEachBatch', 1)).toBe(false);
    expect(isApprovedWithin(approved.context, 'beforeRehearsal')).toBe(false);
  });

  it('a rejected gate inside the backup or the remaining hosts rolls back; a rejected confirmation in preflight touches nothing', () => {
    for (const [state, expected] of [['backup', 'rollingBack'], ['upgradeRest', 'rollingBack'], ['preflight', 'rejected']] as const) {
      const { snapshot } = drive(ALL_GATES, state);
      expect(transition(upgradeMachine, snapshot, { type: 'GATE_REJECTED', reason: 'no' })[0].value, state).toBe(expected);
    }
  });
});
