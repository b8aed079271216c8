/**
 * The App-V 4.5 procedure, end to end on a real Temporal server against the appv lab: package validation details
 * kept in the run's record, and the optional rehearsal of the database upgrade on a copy of the backup, behind its
 * own gate, before production.
 */
import { execFileSync } from 'node:child_process';
import type { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { LABHOST, PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveUpdate, rejectUpdate, skipUpdate, statusQuery } from '../../workflows/messages';
import { approvedRun, atGate, examplePlan, freshLab, labPlan, quickRetries, recordHistory, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();
const HOSTS = hostIds(PROFILES.appv!, 3);

/** The lab plan with the rehearsal: the schema upgrade tried on a copy of this run's backup first. */
function withRehearsal(plan: UpgradePlan): UpgradePlan {
  return {
    ...plan,
    database: { ...plan.database, rehearse: { run: 'labhost db rehearse {{backup}} {{target}}', timeout: '10m', retry: plan.database.verify.retry, required: true, record: true } },
    gates: { ...plan.gates, beforeRehearsal: { instructions: 'Rehearse the database upgrade on the test server?', approvers: ['dba'], quorum: 1 } },
  };
}

/**
 * Every kind of App-V host the seed names, mixed versions: the Management Web Service upgrades the data store,
 * then a Management Server at 4.1 SP1, one at 4.1, and a computer with only the Management Console.
 */
function mixedFleet(): UpgradePlan {
  return {
    ...labPlan([]),
    hosts: [
      { id: 'appv-ws-01', roles: ['management-web-service', 'db-owner'] },
      { id: 'appv-01', roles: ['management-server'] },
      { id: 'appv-02', roles: ['management-server'] },
      { id: 'appv-console-01', roles: ['console'] },
    ],
    gates: { ...examplePlan().gates, beforeOnline: { instructions: 'Users back in?', approvers: [], quorum: 1 } },
  };
}

describe('App-V 4.5 management servers', () => {
  it('upgrades every kind of host in the seed’s order, and rolls each back to the version it started at', async () => {
    const lab = freshLab({ hosts: 2, webService: true, consoles: 1, versions: { 'appv-02': '4.1' } });
    await approvedRun(temporal.client, mixedFleet(), lab, async (handle) => {
      const atOnline = await atGate(handle, 'beforeOnline');
      expect(atOnline.versions).toEqual({ 'appv-ws-01': '4.1-SP1', 'appv-01': '4.1-SP1', 'appv-02': '4.1', 'appv-console-01': '4.1-SP1' });
      expect(labStatus(lab).hosts.every((h) => h.version === '4.5')).toBe(true);
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', comment: 'rehearsing the rollback' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
      expect((await handle.query(statusQuery)).versions?.['appv-02']).toBe('4.1');
      await recordHistory(handle, 'per-host-versions');
    });
    const ops = labOps(lab);
    const seq = (host: string, op: string) => ops.find((o) => o.host === host && o.op.startsWith(op) && o.result === 'ok')?.seq ?? NaN;
    const schemaUpgrade = ops.find((o) => o.op.endsWith('--upgrade-schema'));
    expect(schemaUpgrade?.host).toBe('appv-ws-01');
    // Every server sharing the database is offline before the schema changes; the console has no service to stop.
    for (const host of ['appv-ws-01', 'appv-01', 'appv-02']) expect(seq(host, 'stop')).toBeLessThan(schemaUpgrade!.seq);
    expect(ops.filter((o) => o.host === 'appv-console-01').map((o) => o.op.split(' ')[0])).toEqual(['version', 'install', 'verify', 'install', 'verify']);
    expect(ops.filter((o) => o.host === 'appv-ws-01' && o.op === 'drain')).toEqual([]);
    for (const host of ['appv-01', 'appv-02', 'appv-console-01']) expect(seq(host, 'install 4.5')).toBeGreaterThan(schemaUpgrade!.seq);
    // Each host is back at the version it started at, running, against the restored database.
    const state = labStatus(lab);
    expect(Object.fromEntries(state.hosts.map((h) => [h.id, h.version]))).toEqual({ 'appv-01': '4.1-SP1', 'appv-02': '4.1', 'appv-ws-01': '4.1-SP1', 'appv-console-01': '4.1-SP1' });
    expect(state.hosts.every((h) => Object.values(h.services).every((s) => s === 'running'))).toBe(true);
    expect(state.database.schema).toBe('4.1-SP1');
    expect(ops.some((o) => o.host === 'appv-02' && o.op === 'verify 4.1' && o.result === 'ok')).toBe(true);
  });

  it('goes on without a host that failed preflight only once someone confirms it is offline or decommissioned', async () => {
    const lab = freshLab({ hosts: 3 });
    labFault(lab, 'appv-03', 'version', 'always');
    await approvedRun(temporal.client, quickRetries(labPlan(HOSTS)), lab, async (handle) => {
      const gate = (await atGate(handle, 'offline-confirmation')).pendingGate;
      expect(gate?.instructions).toContain('Preflight failed on 1 host(s): appv-03 (version failed (exit 1) after 2 attempt(s))');
      expect(gate?.instructions).toContain('Approve only to confirm each is offline or decommissioned');
      const skip = await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', host: 'appv-03' }] }).catch((e: Error) => e);
      expect(String((skip as Error & { cause?: Error }).cause?.message)).toContain(
        'a host that failed preflight is left out by approving gate offline-confirmation, the confirmation that it is offline or decommissioned',
      );
      // The operator takes it offline by hand, then confirms (the lab would refuse the schema upgrade otherwise).
      for (const op of ['drain', 'stop']) execFileSync(LABHOST, ['appv-03', op], { env: { ...process.env, CUTOVER_LAB_DIR: lab } });
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'olga', comment: 'appv-03 is offline until it is replaced' }] });
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.decisions[0]).toMatchObject({ gate: 'offline-confirmation', approver: 'olga', decision: 'approve', comment: 'appv-03 is offline until it is replaced' });
      expect((await handle.query(statusQuery)).hosts['appv-03']?.state).toBe('skipped');
      await recordHistory(handle, 'offline-confirmation');
    }, { gates: [] });
    expect(labOps(lab).filter((o) => o.host === 'appv-03').map((o) => o.op)).toEqual(['version', 'version', 'drain', 'stop']);
    expect(labStatus(lab).hosts.map((h) => h.version)).toEqual(['4.5', '4.5', '4.1-SP1']);
  });

  it('keeps every server’s package validation details in the run’s record', async () => {
    const lab = freshLab({ hosts: 3 });
    await approvedRun(temporal.client, labPlan(HOSTS), lab, async (handle) => {
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.records.map((r) => [r.step, r.host])).toEqual([
        ['upgrade', 'appv-01'],
        ['upgrade', 'appv-02'],
        ['upgrade', 'appv-03'],
      ]);
      for (const record of result.records) expect(record.output).toContain(`package validation: AppVServer validated for 4.5 on ${record.host}`);
    });
  });

  it('rehearses on a fresh backup’s copy, behind its own gate, before the outage; production is backed up after the stop', async () => {
    const lab = freshLab({ hosts: 3 });
    await approvedRun(temporal.client, withRehearsal(labPlan(HOSTS)), lab, async (handle) => {
      const gate = await atGate(handle, 'beforeRehearsal');
      expect(gate.backup).toBeUndefined();
      expect(labOps(lab).every((o) => o.op === 'version')).toBe(true);
      const refused = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] }).catch((e: Error) => e);
      expect(String((refused as Error & { cause?: Error }).cause?.message)).toContain('alice may not decide gate beforeRehearsal');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dba' }] });
      await atGate(handle, 'beforeOffline');
      expect(labStatus(lab).database.schema).toBe('4.1-SP1');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.records.find((r) => r.step === 'rehearse')?.output).toContain('schema 4.1-SP1 -> 4.5');
      await recordHistory(handle, 'rehearsal-before-offline');
    }, { gates: [] });
    const ops = labOps(lab);
    const seq = (match: (o: (typeof ops)[number]) => boolean) => ops.find(match)?.seq ?? NaN;
    const rehearsalBackup = ops.find((o) => o.host === 'db' && o.op.startsWith('backup'));
    expect(rehearsalBackup?.op).toMatch(/-rehearsal$/);
    const rehearsal = seq((o) => o.host === 'db' && o.op.startsWith('rehearse'));
    expect(rehearsalBackup!.seq).toBeLessThan(rehearsal);
    expect(ops.find((o) => o.op.startsWith('rehearse'))?.op).toBe(`rehearse ${rehearsalBackup!.op.slice('backup '.length)} 4.5`);
    expect(rehearsal).toBeLessThan(seq((o) => o.op === 'drain'));
    // The production backup is a second one, taken once every server has stopped.
    const productionBackup = seq((o) => o.host === 'db' && o.op.startsWith('backup') && !o.op.endsWith('-rehearsal'));
    expect(productionBackup).toBeGreaterThan(Math.max(...ops.filter((o) => o.op === 'stop').map((o) => o.seq)));
    expect(productionBackup).toBeLessThan(seq((o) => o.op.endsWith('--upgrade-schema')));
  });

  it('a failed rehearsal ends the run with nothing touched', async () => {
    const lab = freshLab({ hosts: 3 });
    const before = labStatus(lab);
    labFault(lab, 'db', 'rehearse', 'always');
    await approvedRun(temporal.client, quickRetries(withRehearsal(labPlan(HOSTS))), lab, async (handle) => {
      await atGate(handle, 'beforeRehearsal');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dba' }] });
      const error = await handle.result().catch((e: unknown) => e);
      expect((error as WorkflowFailedError).cause?.message).toContain('the rehearsal failed, nothing was changed: database rehearse on appv-01 failed');
    }, { gates: [] });
    expect(labOps(lab).filter((o) => o.host !== 'db').every((o) => o.op === 'version')).toBe(true);
    expect(labStatus(lab).hosts).toEqual(before.hosts);
    expect(labStatus(lab).database).toEqual(before.database);
  });

  it('a rejected rehearsal gate ends the run with nothing touched, not even a backup', async () => {
    const lab = freshLab({ hosts: 3 });
    await approvedRun(temporal.client, withRehearsal(labPlan(HOSTS)), lab, async (handle) => {
      await atGate(handle, 'beforeRehearsal');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'dba', comment: 'no test server tonight' }] });
      expect((await handle.result()).outcome).toBe('rejected');
    }, { gates: [] });
    expect(labOps(lab).every((o) => o.op === 'version')).toBe(true);
    expect(labStatus(lab).backups).toEqual([]);
  });
});
