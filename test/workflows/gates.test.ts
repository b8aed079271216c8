/** Approval gates and failures on a real Temporal server, against a real lab. */
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveSignal, approveUpdate, rejectUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { atGate, freshLab, labPlan, labWorker, recordHistory, uniqueId, waitFor, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

const hosts = (n: number) => hostIds(PROFILES.appv!, n);

async function withRun(
  plan: ReturnType<typeof labPlan>,
  lab: string,
  body: (handle: Awaited<ReturnType<Client['workflow']['start']>>) => Promise<void>,
) {
  const { worker, taskQueue, close } = await labWorker(lab);
  try {
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
      await body(handle);
    });
  } finally {
    await close();
  }
}

const refusal = async (promise: Promise<unknown>) => {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  return (error as WorkflowUpdateFailedError).cause?.message;
};

describe('approval gates', () => {
  it('needs a quorum of distinct allowed approvers, and refuses others without changing anything', async () => {
    const lab = freshLab({ hosts: 2 });
    const plan = labPlan(hosts(2), {
      gates: { beforeOffline: { instructions: 'Two of the change board.', approvers: ['alice', 'bob', 'carol'], quorum: 2 } },
    });
    await withRun(plan, lab, async (handle) => {
      const gate = await atGate(handle, 'beforeOffline');
      expect(gate.pendingGate).toMatchObject({ approvers: ['alice', 'bob', 'carol'], quorum: 2, instructions: 'Two of the change board.' });

      expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'mallory' }] }))).toContain('mallory may not decide gate beforeOffline');
      expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'beforeOnline' }] }))).toContain('not pending');

      const afterAlice = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      expect(afterAlice.pendingGate?.approvedBy).toEqual(['alice']);
      expect(afterAlice.phase).toBe('awaiting-approval');
      expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] }))).toContain('already approved');
      // A refused signal is dropped too: the run still waits for a second distinct approver.
      await handle.signal(approveSignal, { approver: 'mallory' });
      const still = await handle.query(statusQuery);
      expect(still.pendingGate?.approvedBy).toEqual(['alice']);
      expect(labOps(lab).every((op) => op.op === 'version')).toBe(true);

      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'carol', comment: 'ok' }] });
      expect((await handle.result()).outcome).toBe('completed');
      const final = await handle.query(statusQuery);
      expect(final.decisions.map((d) => [d.approver, d.decision])).toEqual([
        ['alice', 'approve'],
        ['carol', 'approve'],
      ]);
    });
  });

  it('rejection before anything changed ends the run with every host untouched', async () => {
    const lab = freshLab({ hosts: 3 });
    const before = labStatus(lab);
    await withRun(labPlan(hosts(3)), lab, async (handle) => {
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'dave', comment: 'not tonight' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('rejected');
      expect(result.decisions).toMatchObject([{ gate: 'beforeOffline', approver: 'dave', decision: 'reject', comment: 'not tonight' }]);
      expect((await handle.query(statusQuery)).phase).toBe('rejected');
      await recordHistory(handle, 'rejected');
    });
    expect(labStatus(lab).hosts).toEqual(before.hosts);
    expect(labStatus(lab).database).toEqual(before.database);
    expect(labOps(lab).map((op) => op.op)).toEqual(['version', 'version', 'version']);
  });

  it('an expired gate counts as a rejection', async () => {
    const lab = freshLab({ hosts: 2 });
    await withRun(labPlan(hosts(2), { gates: { beforeOffline: { instructions: 'quick', approvers: [], quorum: 1, timeout: '2s' } } }), lab, async (handle) => {
      const gate = await atGate(handle, 'beforeOffline');
      expect(gate.pendingGate?.expiresAt).toBeDefined();
      const result = await handle.result();
      expect(result.outcome).toBe('rejected');
      expect(result.decisions).toMatchObject([{ gate: 'beforeOffline', approver: 'timer', decision: 'expired' }]);
    });
    expect(labOps(lab).every((op) => op.op === 'version')).toBe(true);
  });

  it('stops at every optional gate the plan names, in the seeds order', async () => {
    const lab = freshLab({ hosts: 3 });
    const plan = labPlan(hosts(3), {
      gates: {
        beforeOffline: { instructions: 'go offline', approvers: [], quorum: 1 },
        beforeSchemaUpgrade: { instructions: 'backup taken; upgrade schema?', approvers: [], quorum: 1 },
        beforeOnline: { instructions: 'verified; allow users back?', approvers: [], quorum: 1 },
      },
    });
    await withRun(plan, lab, async (handle) => {
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'erin' }] });
      const beforeSchema = await atGate(handle, 'beforeSchemaUpgrade');
      expect(beforeSchema.backup?.name).toMatch(/^lab-/);
      expect(labStatus(lab).database.schema).toBe('4.1-SP1');
      expect(labStatus(lab).hosts.every((h) => h.services.AppVServer === 'stopped')).toBe(true);
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'erin' }] });
      const beforeOnline = await atGate(handle, 'beforeOnline');
      expect(beforeOnline.hostCounts).toEqual({ verified: 3 });
      expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && !h.online)).toBe(true);
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'erin' }] });
      expect((await handle.result()).outcome).toBe('completed');
      await recordHistory(handle, 'all-gates');
    });
    expect(labStatus(lab).hosts.every((h) => h.online)).toBe(true);
  });
});

describe('gate before each batch', () => {
  it('asks before every wave of the remaining hosts; rejecting a later wave rolls everything back', async () => {
    const lab = freshLab({ hosts: 5 });
    const checksumBefore = labStatus(lab).database.checksum;
    const plan = labPlan(hosts(5));
    const waved = {
      ...plan,
      execution: { ...plan.execution, batchSize: 2 },
      gates: { ...plan.gates, beforeEachBatch: { instructions: 'Check the last wave first.', approvers: [], quorum: 1 } },
    };
    await withRun(waved, lab, async (handle) => {
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      await atGate(handle, 'beforeEachBatch');
      // The owner went first and alone; no remaining host has been touched yet.
      expect(labStatus(lab).hosts.map((h) => h.version)).toEqual(['4.5', '4.1-SP1', '4.1-SP1', '4.1-SP1', '4.1-SP1']);
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'beforeEachBatch' }] });
      await waitFor(async () => ((await handle.query(statusQuery)).hostCounts.started === 3 ? true : undefined), 'the first wave');
      await atGate(handle, 'beforeEachBatch');
      expect(labStatus(lab).hosts.map((h) => h.version)).toEqual(['4.5', '4.5', '4.5', '4.1-SP1', '4.1-SP1']);
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', comment: 'wave 1 users report errors' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('rolled-back');
      expect(result.decisions.map((d: { gate: string; decision: string }) => `${d.gate}:${d.decision}`)).toEqual(['beforeOffline:approve', 'beforeEachBatch:approve', 'beforeEachBatch:reject']);
    });
    const state = labStatus(lab);
    expect(state.database).toEqual({ schema: '4.1-SP1', checksum: checksumBefore });
    expect(state.hosts.every((h) => h.version === '4.1-SP1' && h.services.AppVServer === 'running' && h.online)).toBe(true);
  });
});

describe('host step failures', () => {
  it('transient failures pass through the retry policy without the operator', async () => {
    const lab = freshLab({ hosts: 3 });
    labFault(lab, 'appv-02', 'install', { times: 2 });
    await withRun(labPlan(hosts(3)), lab, async (handle) => {
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      expect((await handle.result()).outcome).toBe('completed');
    });
    const ops = labOps(lab);
    expect(ops.filter((o) => o.host === 'appv-02' && o.op.startsWith('install')).map((o) => o.result)).toEqual(['fault', 'fault', 'ok']);
    // The batch retry skipped the host that had already succeeded.
    expect(ops.filter((o) => o.host === 'appv-03' && o.op.startsWith('install'))).toHaveLength(1);
  });

  it('preflight refuses a host whose version the upgrade path does not allow, before anything changes', async () => {
    const lab = freshLab({ hosts: 3, versions: { 'appv-02': '4.0' } });
    await withRun(labPlan(hosts(3)), lab, async (handle) => {
      const error = await handle.result().catch((e: unknown) => e);
      expect((error as WorkflowFailedError).cause?.message).toContain('appv-02 is at 4.0');
      expect((error as WorkflowFailedError).cause?.message).toContain('upgrade it to 4.1 or 4.1-SP1 first');
    });
    expect(labOps(lab).every((op) => op.op === 'version')).toBe(true);
  });
});
