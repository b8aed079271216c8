/**
 * The App-V 4.5 procedure, end to end on a real Temporal server against the appv lab: package validation details
 * kept in the run's record, and the optional rehearsal of the database upgrade on a copy of the backup, behind its
 * own gate, before production.
 */
import { describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveUpdate, rejectUpdate, rollbackUpdate } from '../../workflows/messages';
import { approvedRun, atGate, atGuidedFailure, freshLab, labPlan, quickRetries, recordHistory, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();
const HOSTS = hostIds(PROFILES.appv!, 3);

/** The lab plan with the rehearsal: the schema upgrade tried on a copy of this run's backup first. */
function withRehearsal(plan: UpgradePlan): UpgradePlan {
  return {
    ...plan,
    database: { ...plan.database, rehearse: { run: 'labhost db rehearse {{backup}} {{target}}', timeout: '10m', retry: plan.database.backup.retry, required: true, record: true } },
    gates: { ...plan.gates, beforeRehearsal: { instructions: 'Rehearse the database upgrade on the test server?', approvers: ['dba'], quorum: 1 } },
  };
}

describe('App-V 4.5 management servers', () => {
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

  it('rehearses the database upgrade on a copy of the backup, behind its own gate, before production', async () => {
    const lab = freshLab({ hosts: 3 });
    await approvedRun(temporal.client, withRehearsal(labPlan(HOSTS)), lab, async (handle) => {
      const gate = await atGate(handle, 'beforeRehearsal');
      expect(gate.backup?.name).toBeDefined();
      expect(labStatus(lab).database.schema).toBe('4.1-SP1');
      const refused = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] }).catch((e: Error) => e);
      expect(String((refused as Error & { cause?: Error }).cause?.message)).toContain('alice may not decide gate beforeRehearsal');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dba' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.records.find((r) => r.step === 'rehearse')?.output).toContain('schema 4.1-SP1 -> 4.5');
      await recordHistory(handle, 'rehearsal');
    });
    const ops = labOps(lab);
    const rehearsal = ops.find((o) => o.host === 'db' && o.op.startsWith('rehearse'))?.seq ?? Infinity;
    const backup = ops.find((o) => o.host === 'db' && o.op.startsWith('backup'))?.seq ?? Infinity;
    const schemaUpgrade = ops.find((o) => o.op.endsWith('--upgrade-schema'))?.seq ?? -1;
    expect(backup).toBeLessThan(rehearsal);
    expect(rehearsal).toBeLessThan(schemaUpgrade);
  });

  it('a failed rehearsal stops before production is touched; rolling back leaves the database as it was', async () => {
    const lab = freshLab({ hosts: 3 });
    const before = labStatus(lab).database;
    labFault(lab, 'db', 'rehearse', 'always');
    await approvedRun(temporal.client, quickRetries(withRehearsal(labPlan(HOSTS))), lab, async (handle) => {
      await atGate(handle, 'beforeRehearsal');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'dba' }] });
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.phase).toBe('backing-up');
      expect(failed.awaitingOperator?.reason).toContain('database rehearse');
      expect(labStatus(lab).database.schema).toBe('4.1-SP1');
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'dba' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
    });
    expect(labStatus(lab).database).toEqual(before);
  });

  it('rejecting the rehearsal rolls the (offline) fleet back', async () => {
    const lab = freshLab({ hosts: 3 });
    const before = labStatus(lab).database;
    await approvedRun(temporal.client, withRehearsal(labPlan(HOSTS)), lab, async (handle) => {
      await atGate(handle, 'beforeRehearsal');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'dba', comment: 'no test server tonight' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
    });
    const state = labStatus(lab);
    expect(state.database).toEqual(before);
    expect(state.hosts.every((h) => h.version === '4.1-SP1' && h.services.AppVServer === 'running' && h.online)).toBe(true);
  });
});
