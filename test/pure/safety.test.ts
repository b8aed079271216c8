/** Rules that keep a run recoverable: what the plan must say for a rollback to work, and what may be skipped. */
import { describe, expect, it } from 'vitest';
import { refuseOperatorAction, skippableHosts } from '../../core/operator';
import { validatePlan } from '../../core/plan';
import type { AwaitingOperator } from '../../core/status';
import { rawExample, validExample } from './fixtures';

const problems = (mutate: (raw: ReturnType<typeof rawExample>) => void) => {
  const raw = rawExample();
  mutate(raw);
  const result = validatePlan(raw);
  return result.ok ? [] : result.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
};

describe('plans a rollback could not undo are refused', () => {
  it.each(['drain', 'stop', 'upgrade', 'online'])('a %s step without an undo', (step) => {
    expect(problems((raw) => delete raw.roles['management-server'].steps[step].undo)).toEqual([
      `roles.management-server.steps.${step}.undo: a ${step} step needs an undo: rollback replays it`,
    ]);
  });

  it("the owner's own upgrade without an undo", () => {
    expect(problems((raw) => delete raw.roles['db-owner'].steps.upgrade.undo)).toEqual(['roles.db-owner.steps.upgrade.undo: a upgrade step needs an undo: rollback replays it']);
  });

  it('an undo that names {{version}} (which means the target while the undo is recorded)', () => {
    expect(problems((raw) => (raw.roles['management-server'].steps.upgrade.undo = 'labhost {{host}} install {{version}}'))).toEqual([
      'roles.management-server.steps.upgrade.undo: an undo names versions with {{source}} or {{target}}, not {{version}}',
    ]);
  });
});

describe('timeouts and retry policies Temporal and Node accept', () => {
  it('refuses a zero or overlong duration', () => {
    expect(problems((raw) => (raw.roles['management-server'].steps.stop.timeout = '0s'))).toEqual([
      'roles.management-server.steps.stop.timeout: a duration must be more than 0 and at most 24d',
    ]);
    expect(problems((raw) => (raw.execution.operatorTimeout = '30d'))).toEqual(['execution.operatorTimeout: a duration must be more than 0 and at most 24d']);
  });

  it('refuses a maxInterval shorter than the initialInterval', () => {
    expect(problems((raw) => (raw.roles['management-server'].steps.stop.retry = { initialInterval: '2m' }))).toEqual([
      'roles.management-server.steps.stop.retry.maxInterval: maxInterval must be at least initialInterval',
    ]);
  });
});

describe('skip', () => {
  const plan = validExample();

  it('is never offered at drain or stop (a server left running would share the database during the upgrade or restore)', () => {
    for (const step of ['drain', 'stop', 'rollback-drain', 'rollback-stop'] as const) expect(skippableHosts(plan, step, ['appv-03']), step).toEqual([]);
  });

  it('is offered for a failed non-owner host of a role that allows it, never for the owner or a database task', () => {
    expect(skippableHosts(plan, 'upgrade', ['appv-01', 'appv-03'])).toEqual(['appv-03']);
    expect(skippableHosts(plan, undefined, ['appv-03'])).toEqual([]);
    expect(skippableHosts(plan, 'verify', ['appv-03'])).toEqual([]);
    expect(skippableHosts(validExample((raw) => (raw.roles['management-server'].steps.verify.required = false)), 'verify', ['appv-03'])).toEqual(['appv-03']);
    expect(skippableHosts(validExample((raw) => (raw.roles['management-server'].allowSkip = false)), 'upgrade', ['appv-03'])).toEqual([]);
  });

  it('refusals say why', () => {
    const waiting: AwaitingOperator = {
      phase: 'upgrading-hosts',
      step: 'upgrade',
      rollingBack: false,
      reason: 'x',
      hosts: [{ host: 'appv-03', error: 'e', outputTail: '' }],
      options: ['retry', 'skip', 'rollback'],
      skippable: ['appv-03'],
    };
    expect(refuseOperatorAction(undefined, 'retry', { operator: 'olga' })).toBe('the run is not waiting for an operator');
    expect(refuseOperatorAction(waiting, 'retry', { operator: ' ' })).toBe('an operator name is required');
    expect(refuseOperatorAction(waiting, 'skip', { operator: 'olga' })).toContain('name the host to skip');
    expect(refuseOperatorAction(waiting, 'skip', { operator: 'olga', host: 'appv-02' })).toBe('appv-02 is not a failed host of this step');
    expect(refuseOperatorAction({ ...waiting, skippable: [] }, 'skip', { operator: 'olga', host: 'appv-03' })).toContain('cannot be skipped');
    expect(refuseOperatorAction(waiting, 'skip', { operator: 'olga', host: 'appv-03' })).toBeUndefined();
    expect(refuseOperatorAction(waiting, 'rollback', { operator: 'olga' })).toBeUndefined();
  });
});
