/**
 * The fault matrix, the cheap way: a fault at every step of both procedures in one run each (each fails once and
 * its retry fixes it), a hang that the step's timeout ends, and the end state each time: fully upgraded, and no
 * host-step that completed ran again (the lab's operation log). Fail-always at each step, with the operator rolling
 * back, is guidedFailure.test.ts; kill -9 of the worker mid-batch and mid-backup are resume.test.ts and
 * databaseTasks.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { LABHOST, PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { retryUpdate } from '../../workflows/messages';
import { approvedRun, atGuidedFailure, examplePlan, freshLab, labPlan, quickRetries, uniqueId, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

/** Each operation that succeeded ran once on each host: completed host-steps never ran again. */
function expectEachOnce(lab: string, hosts: string[], ops: string[]): void {
  const log = labOps(lab);
  for (const host of hosts) {
    for (const op of ops) {
      expect(log.filter((o) => o.host === host && o.op.split(' ')[0] === op && o.result === 'ok'), `${host} ${op}`).toHaveLength(1);
    }
  }
}

describe('fail once at every step (the retry fixes it)', () => {
  it('App-V: version, drain, stop, checksum, backup, the backup read back, the owner upgrade, a remaining host upgrade, start, verify, database verify, online', async () => {
    const hosts = hostIds(PROFILES.appv!, 3);
    const lab = freshLab({ hosts: 3 });
    const faults: [string, string][] = [
      ['appv-01', 'version'],
      ['appv-02', 'drain'],
      ['appv-03', 'stop'],
      ['db', 'checksum'],
      ['db', 'backup'],
      ['db', 'verify-backup'],
      ['appv-01', 'install'],
      ['appv-02', 'install'],
      ['appv-03', 'start'],
      ['appv-01', 'verify'],
      ['db', 'verify'],
      ['appv-02', 'online'],
    ];
    for (const [host, op] of faults) labFault(lab, host, op, { times: 1 });
    await approvedRun(temporal.client, quickRetries(labPlan(hosts)), lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
    });
    // Every fault fired, once.
    expect(labOps(lab).filter((o) => o.result === 'fault').map((o) => `${o.host} ${o.op.split(' ')[0]}`)).toEqual(expect.arrayContaining(faults.map((f) => f.join(' '))));
    expect(labOps(lab).filter((o) => o.result === 'fault')).toHaveLength(faults.length);
    expectEachOnce(lab, hosts, ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']);
    expectEachOnce(lab, ['db'], ['checksum', 'backup', 'verify-backup', 'verify']);
    const state = labStatus(lab);
    expect(state.database.schema).toBe('4.5');
    expect(state.hosts.every((h) => h.version === '4.5' && h.services.AppVServer === 'running' && h.online)).toBe(true);
  });

  it('Dynamics GP web components: the same steps, the web host first', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 5 });
    execFileSync(LABHOST, ['tenant', 'upgrade', '18.0'], { env: { ...process.env, CUTOVER_LAB_DIR: lab } });
    const plan: UpgradePlan = { ...examplePlan('gp-web-lab.yaml'), fleet: uniqueId('gp').slice(0, 40) };
    const hosts = plan.hosts.map((h) => h.id);
    const faults: [string, string][] = [
      ['gp-web-01', 'version'],
      ['gp-session-01', 'drain'],
      ['gp-session-02', 'stop'],
      // A new-database plan takes no backup: the old configuration database is never changed.
      ['gp-web-01', 'install'],
      ['gp-session-03', 'install'],
      ['gp-session-04', 'start'],
      ['gp-web-01', 'verify'],
      ['db', 'verify'],
      ['gp-session-02', 'online'],
    ];
    for (const [host, op] of faults) labFault(lab, host, op, { times: 1 });
    const gates = { gates: ['prerequisite:gp-utilities-upgraded', 'prerequisite:desktop-client-verified', 'beforeOffline'], approver: 'gp-admin' };
    await approvedRun(temporal.client, quickRetries(plan), lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
    }, gates);
    expect(labOps(lab).filter((o) => o.result === 'fault')).toHaveLength(faults.length);
    expectEachOnce(lab, hosts, ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']);
    expectEachOnce(lab, ['db'], ['verify']);
    const state = labStatus(lab);
    // The old configuration database as it was; the new one at 18.0, and every host on it.
    expect(state.database.schema).toBe('16.0');
    expect(state.newDatabases?.GPCONFIGURATION?.schema).toBe('18.0');
    expect(state.hosts.every((h) => h.version === '18.0' && h.online && h.database === 'GPCONFIGURATION')).toBe(true);
  });
});

it('a hang is ended by the step timeout, reaches the operator, and a retry completes the run with the step run once', async () => {
  const hosts = hostIds(PROFILES.appv!, 2);
  const lab = freshLab({ hosts: 2 });
  labFault(lab, 'appv-02', 'drain', 'hang');
  const plan = quickRetries(labPlan(hosts));
  const role = plan.roles['management-server']!;
  const short = { ...plan, roles: { ...plan.roles, 'management-server': { ...role, steps: { ...role.steps, drain: { ...role.steps.drain!, timeout: '1s' } } } } };
  await approvedRun(temporal.client, short, lab, async (handle) => {
    const failed = await atGuidedFailure(handle);
    expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('killed after 1000 ms timeout');
    labFault(lab, 'appv-02', 'drain', 'clear');
    await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
    expect((await handle.result()).outcome).toBe('completed');
  });
  expectEachOnce(lab, hosts, ['drain', 'install', 'online']);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
});
