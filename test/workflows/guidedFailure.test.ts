/**
 * Guided failure and rollback by compensation, on a real Temporal server against a real lab: whatever fails, the
 * fleet ends either upgraded or back at the source version with the database identical to the backup.
 */
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { PROFILES, hostIds, labFault, labOps, labStatus, type LabStatus } from '../../lab/lab';
import type { RunStatus } from '../../core/status';
import { rejectUpdate, retryUpdate, rollbackSignal, rollbackUpdate, skipUpdate, statusQuery } from '../../workflows/messages';
import { approvedRun, atGate, atGuidedFailure, freshLab, labPlan, quickRetries, recordHistory, useTemporalClient, waitFor } from '../helpers';

const temporal = useTemporalClient();

const HOSTS = hostIds(PROFILES.appv!, 4);

/** What a user checks after a rollback: every host back at the source, running and online, the database as backed up. */
function expectRolledBack(lab: LabStatus, checksumBefore: string) {
  expect(lab.database).toEqual({ schema: '4.1-SP1', checksum: checksumBefore });
  for (const host of lab.hosts) {
    expect(host, host.id).toMatchObject({ version: '4.1-SP1', services: { AppVServer: 'running' }, online: true });
  }
}

async function waitForStatus(handle: WorkflowHandle, ready: (status: RunStatus) => boolean): Promise<RunStatus> {
  return waitFor(async () => {
    const status = await handle.query(statusQuery);
    return ready(status) ? status : undefined;
  }, 'the status expected');
}

describe('a permanent failure, then rollback from guided failure', () => {
  const faults: [string, string, string][] = [
    ['drain', 'appv-02', 'drain'],
    ['take offline', 'appv-03', 'stop'],
    ['back up', 'db', 'backup'],
    ['upgrade the DB owner', 'appv-01', 'install'],
    ['upgrade the remaining hosts', 'appv-03', 'install'],
    ['start services', 'appv-02', 'start'],
    ['verify', 'appv-04', 'verify'],
    ['bring online', 'appv-03', 'online'],
  ];
  it.each(faults)('fails at "%s" (%s %s) and rolls the whole fleet back', async (_phase, host, op) => {
    const lab = freshLab({ hosts: 4 });
    const checksumBefore = labStatus(lab).database.checksum;
    labFault(lab, host, op, 'always');
    await approvedRun(temporal.client, quickRetries(labPlan(HOSTS)), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.phase).toBe('awaiting-operator');
      expect(failed.awaitingOperator?.options).toContain('rollback');
      expect(failed.awaitingOperator?.hosts.map((h) => h.host)).toEqual([host === 'db' ? 'appv-01' : host]);
      expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('injected permanent failure');
      // The broken step is repaired before rolling back: the undo of a failed start is a start, too.
      labFault(lab, host, op, 'clear');
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'olga', comment: 'abort' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('rolled-back');
      if (host === 'appv-03' && op === 'install') await recordHistory(handle, 'rolled-back');
    });
    expectRolledBack(labStatus(lab), checksumBefore);
    const ops = labOps(lab);
    const restore = ops.find((o) => o.host === 'db' && o.op.startsWith('restore'));
    if (restore) {
      // A restore ran with every service stopped (the lab refuses otherwise): it succeeded.
      expect(restore.result).toBe('ok');
    }
  });
});

describe('guided failure', () => {
  it('retry runs the failed step again on the failed host only, and the run completes', async () => {
    const lab = freshLab({ hosts: 4 });
    labFault(lab, 'appv-03', 'install', 'always');
    await approvedRun(temporal.client, quickRetries(labPlan(HOSTS)), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator).toMatchObject({ step: 'upgrade', hosts: [{ host: 'appv-03' }] });
      expect(failed.hosts['appv-03']).toMatchObject({ state: 'failed', step: 'upgrade' });
      labFault(lab, 'appv-03', 'install', 'clear');
      await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
      expect((await handle.result()).outcome).toBe('completed');
      const final = await handle.query(statusQuery);
      expect(final.decisions.map((d) => d.decision)).toEqual(['approve', 'retry']);
      await recordHistory(handle, 'retried');
    });
    const state = labStatus(lab);
    expect(state.hosts.every((h) => h.version === '4.5' && h.services.AppVServer === 'running' && h.online)).toBe(true);
    const installs = (host: string) => labOps(lab).filter((o) => o.host === host && o.op.startsWith('install') && o.result === 'ok');
    expect(installs('appv-02')).toHaveLength(1);
    expect(installs('appv-04')).toHaveLength(1);
    expect(installs('appv-03')).toHaveLength(1);
  });

  it('skip goes on without a host the plan lets go, and refuses the DB owner', async () => {
    const lab = freshLab({ hosts: 4 });
    labFault(lab, 'appv-03', 'install', 'always');
    await approvedRun(temporal.client, quickRetries(labPlan(HOSTS)), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.skippable).toEqual(['appv-03']);
      const refusedOwner = await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', host: 'appv-01' }] }).catch((e: unknown) => e);
      expect(refusedOwner).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((refusedOwner as WorkflowUpdateFailedError).cause?.message).toContain('not a failed host');
      await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', host: 'appv-03', comment: 'fix by hand' }] });
      expect((await handle.result()).outcome).toBe('completed');
      const final = await handle.query(statusQuery);
      expect(final.hosts['appv-03']?.state).toBe('skipped');
      expect(final.hostCounts).toEqual({ online: 3, skipped: 1 });
    });
    const state = labStatus(lab);
    expect(state.hosts.filter((h) => h.version === '4.5').map((h) => h.id)).toEqual(['appv-01', 'appv-02', 'appv-04']);
  });

  it('a skip decides only for the hosts it names: the others still wait, and nothing runs again until a retry', async () => {
    const hosts = hostIds(PROFILES.appv!, 5);
    const lab = freshLab({ hosts: 5 });
    for (const host of ['appv-03', 'appv-04', 'appv-05']) labFault(lab, host, 'install', 'always');
    const installs = (host: string) => labOps(lab).filter((o) => o.host === host && o.op.startsWith('install'));
    await approvedRun(temporal.client, quickRetries(labPlan(hosts)), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-03', 'appv-04', 'appv-05']);
      const triedBefore = { 'appv-04': installs('appv-04').length, 'appv-05': installs('appv-05').length };

      await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', host: 'appv-03' }] });
      const stillWaiting = await waitForStatus(handle, (s) => s.awaitingOperator?.hosts.length === 2);
      expect(stillWaiting.awaitingOperator).toMatchObject({ step: 'upgrade', skippable: ['appv-04', 'appv-05'], options: ['retry', 'skip', 'rollback'] });
      expect(stillWaiting.hosts['appv-03']?.state).toBe('skipped');
      const refused = await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', hosts: ['appv-04', 'appv-03'] }] }).catch((e: unknown) => e);
      expect((refused as WorkflowUpdateFailedError).cause?.message).toBe('appv-03 is not a failed host of this step');

      await handle.executeUpdate(skipUpdate, { args: [{ operator: 'piotr', hosts: ['appv-04'], comment: 'replaced next week' }] });
      const lastOne = await waitForStatus(handle, (s) => s.awaitingOperator?.hosts.length === 1);
      expect(lastOne.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-05']);
      // Skipping appv-03 and appv-04 ran no installer anywhere.
      expect({ 'appv-04': installs('appv-04').length, 'appv-05': installs('appv-05').length }).toEqual(triedBefore);

      labFault(lab, 'appv-05', 'install', 'clear');
      await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
      expect((await handle.result()).outcome).toBe('completed');
      const final = await handle.query(statusQuery);
      expect(final.decisions.filter((d) => d.gate === 'guided-failure').map((d) => [d.approver, d.decision, d.host])).toEqual([
        ['olga', 'skip', 'appv-03'],
        ['piotr', 'skip', 'appv-04'],
        ['olga', 'retry', undefined],
      ]);
      expect(final.hostCounts).toEqual({ online: 3, skipped: 2 });
      await recordHistory(handle, 'skip-several');
    });
    expect(installs('appv-04').length).toBe(2);
    expect(installs('appv-05').at(-1)?.result).toBe('ok');
    expect(labStatus(lab).hosts.filter((h) => h.version === '4.5').map((h) => h.id)).toEqual(['appv-01', 'appv-02', 'appv-05']);
  });

  it('never offers to skip the DB-owning host', async () => {
    const lab = freshLab({ hosts: 3 });
    labFault(lab, 'appv-01', 'install', 'always');
    await approvedRun(temporal.client, quickRetries(labPlan(hostIds(PROFILES.appv!, 3))), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.skippable).toEqual([]);
      expect(failed.awaitingOperator?.options).toEqual(['retry', 'rollback']);
      const refused = await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', host: 'appv-01' }] }).catch((e: unknown) => e);
      expect((refused as WorkflowUpdateFailedError).cause?.message).toContain('cannot be skipped');
      // The rollback reinstalls the source version on the owner (its install may have been cut off half-way).
      labFault(lab, 'appv-01', 'install', 'clear');
      await handle.signal(rollbackSignal, { operator: 'olga' });
      expect((await handle.result()).outcome).toBe('rolled-back');
    });
  });

  it('an unattended failure rolls back when the operator timeout expires', async () => {
    const lab = freshLab({ hosts: 3 });
    const checksumBefore = labStatus(lab).database.checksum;
    labFault(lab, 'appv-02', 'start', 'always');
    const plan = quickRetries(labPlan(hostIds(PROFILES.appv!, 3)));
    await approvedRun(temporal.client, { ...plan, execution: { ...plan.execution, operatorTimeout: '2s' } }, lab, async (handle) => {
      await atGuidedFailure(handle);
      labFault(lab, 'appv-02', 'start', 'clear');
      const result = await handle.result();
      expect(result.outcome).toBe('rolled-back');
      expect(result.decisions.at(-1)).toMatchObject({ gate: 'guided-failure', approver: 'timer', decision: 'rollback' });
    });
    expectRolledBack(labStatus(lab), checksumBefore);
  });

  it('a failing undo goes to the operator, and rollback finishes once it is retried', async () => {
    const lab = freshLab({ hosts: 3 });
    const checksumBefore = labStatus(lab).database.checksum;
    labFault(lab, 'appv-03', 'verify', 'always');
    labFault(lab, 'db', 'restore', { times: 2 });
    await approvedRun(temporal.client, quickRetries(labPlan(hostIds(PROFILES.appv!, 3))), lab, async (handle) => {
      await atGuidedFailure(handle);
      labFault(lab, 'appv-03', 'verify', 'clear');
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'olga' }] });
      const undoFailed = await atGuidedFailure(handle);
      expect(undoFailed.awaitingOperator).toMatchObject({ rollingBack: true });
      expect(undoFailed.awaitingOperator?.reason).toContain('restore');
      await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
    });
    expectRolledBack(labStatus(lab), checksumBefore);
  });
});

describe('rollback from gates and cancellation', () => {
  it('rejection at the gate before online rolls the upgraded fleet back', async () => {
    const lab = freshLab({ hosts: 3 });
    const checksumBefore = labStatus(lab).database.checksum;
    const plan = labPlan(hostIds(PROFILES.appv!, 3));
    await approvedRun(temporal.client, { ...plan, gates: { ...plan.gates, beforeOnline: { instructions: 'check', approvers: [], quorum: 1 } } }, lab, async (handle) => {
      await atGate(handle, 'beforeOnline');
      expect(labStatus(lab).database.schema).toBe('4.5');
      await handle.executeUpdate(rejectUpdate, { args: [{ approver: 'bob', comment: 'smoke test failed' }] });
      const result = await handle.result();
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toContain('smoke test failed');
    });
    expectRolledBack(labStatus(lab), checksumBefore);
  });

  it('cancelling the run (as from the Web UI) rolls it back before it ends', async () => {
    const lab = freshLab({ hosts: 3 });
    const checksumBefore = labStatus(lab).database.checksum;
    labFault(lab, 'appv-02', 'install', 'always');
    await approvedRun(temporal.client, quickRetries(labPlan(hostIds(PROFILES.appv!, 3))), lab, async (handle) => {
      await atGuidedFailure(handle);
      labFault(lab, 'appv-02', 'install', 'clear');
      await handle.cancel();
      const error = await handle.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect((await handle.query(statusQuery)).phase).toBe('rolled-back');
      await recordHistory(handle, 'cancelled');
    });
    expectRolledBack(labStatus(lab), checksumBefore);
  });
});
