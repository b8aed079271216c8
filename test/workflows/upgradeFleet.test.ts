/** upgradeFleet on a real Temporal dev server, driving a real lab fleet through labhost. */
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { labOps, labStatus, hostIds, PROFILES } from '../../lab/lab';
import { approveSignal, approveUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { failedWorkflowTasks, freshLab, labPlan, labWorker, recordHistory, uniqueId, waitFor, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

describe('upgradeFleet', () => {
  it('upgrades the fleet in the seeds order once approved', async () => {
    const hosts = hostIds(PROFILES.appv!, 4);
    const lab = freshLab({ hosts: 4 });
    const { worker, taskQueue, close } = await labWorker(lab);
    const plan = labPlan(hosts);
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('happy'), args: [plan] });
      const atGate = await waitFor(async () => {
        const status = await handle.query(statusQuery);
        return status.pendingGate ? status : undefined;
      }, 'the approval gate');
      expect(atGate.phase).toBe('awaiting-approval');
      expect(atGate.pendingGate?.gate).toBe('beforeOffline');
      expect(Object.values(atGate.hosts).map((h) => h.state)).toEqual(['checked', 'checked', 'checked', 'checked']);
      // Nothing changed on any host before the approval.
      expect(labOps(lab).map((op) => op.op)).toEqual(['version', 'version', 'version', 'version']);

      const afterApproval = await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', comment: 'window open' }] });
      expect(afterApproval.decisions).toMatchObject([{ gate: 'beforeOffline', approver: 'alice', decision: 'approve', comment: 'window open' }]);

      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      await recordHistory(handle, 'completed');
      const final = await handle.query(statusQuery);
      expect(final.phase).toBe('completed');
      expect(final.hostCounts).toEqual({ online: 4 });
      expect(final.undoLog.map((u) => u.step)).toEqual(['drain', 'stop', 'backup', 'upgrade', 'start', 'upgrade', 'start', 'online']);
    });
    await close();

    const state = labStatus(lab);
    expect(state.database.schema).toBe('4.5');
    for (const host of state.hosts) {
      expect(host).toMatchObject({ version: '4.5', services: { AppVServer: 'running' }, online: true });
    }
    const ops = labOps(lab);
    expect(ops.filter((op) => op.result !== 'ok')).toEqual([]);
    const seqOf = (host: string, op: string) => ops.find((o) => o.host === host && o.op.startsWith(op))?.seq ?? Infinity;
    const schemaUpgrade = seqOf('appv-01', 'install 4.5 --upgrade-schema');
    const backup = seqOf('db', 'backup');
    for (const host of hosts) expect(seqOf(host, 'stop')).toBeLessThan(schemaUpgrade);
    expect(backup).toBeLessThan(schemaUpgrade);
    for (const host of hosts.slice(1)) expect(seqOf(host, 'install')).toBeGreaterThan(schemaUpgrade);
  });

  it('fails non-retryably with a readable message when the plan is invalid (as a UI start would send)', async () => {
    const lab = freshLab({ hosts: 2 });
    const { worker, taskQueue, close } = await labWorker(lab);
    const plan = labPlan(hostIds(PROFILES.appv!, 2));
    const broken = { ...plan, hosts: plan.hosts.map((h) => ({ ...h, roles: ['management-server'] })), surprise: true };
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start('upgradeFleet', { taskQueue, workflowId: uniqueId('invalid'), args: [broken] });
      const error = await handle.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const cause = (error as WorkflowFailedError).cause;
      expect(cause?.message).toContain('The upgrade plan is invalid');
      expect(cause?.message).toContain('surprise');
      expect(cause?.message).toContain('db-owner');
      expect((cause as { nonRetryable?: boolean }).nonRetryable).toBe(true);
      await recordHistory(handle, 'invalid-plan');

      // Names every JavaScript object has end as InvalidPlan too, with their path, never as a failing workflow task.
      const prototypeNamed = [
        { ...plan, target: 'constructor' },
        { ...plan, roles: { ...plan.roles, toString: plan.roles['management-server'] } },
        // As a JSON payload arrives: JSON.parse makes "__proto__" an own key.
        JSON.parse(JSON.stringify(plan).replace('"upgradePaths":{', '"upgradePaths":{"__proto__":["4.1"],')) as unknown,
      ];
      for (const input of prototypeNamed) {
        const run = await temporal.client.workflow.start('upgradeFleet', { taskQueue, workflowId: uniqueId('prototype'), args: [input] });
        const failed = await run.result().catch((e: unknown) => e);
        expect((failed as WorkflowFailedError).cause).toMatchObject({ type: 'InvalidPlan', message: expect.stringMatching(/reserved name|no upgrade path leads to constructor/) });
        expect(await failedWorkflowTasks(run)).toEqual([]);
      }
    });
    await close();
    expect(labOps(lab)).toEqual([]);
  });

  it('stops in preflight, before anything changes, when the worker lacks a secret the ssh hosts need', async () => {
    const lab = freshLab({ hosts: 2 });
    const { worker, taskQueue, close } = await labWorker(lab);
    const plan = labPlan(hostIds(PROFILES.appv!, 2));
    const key = 'env:CUTOVER_TEST_KEY_NOWHERE';
    const viaSsh = { ...plan, hosts: plan.hosts.map((h) => ({ ...h, transport: { kind: 'ssh' as const, address: `${h.id}.example.internal`, port: 22, user: 'svc', key } })) };
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('ssh'), args: [viaSsh] });
      const error = await handle.result().catch((e: unknown) => e);
      // No retry can make a secret appear: one attempt, and the reference (never a value) in the message.
      expect((error as WorkflowFailedError).cause?.message).toContain(
        'appv-01: version failed (exit -1) after 1 attempt(s) (secret env:CUTOVER_TEST_KEY_NOWHERE: the variable CUTOVER_TEST_KEY_NOWHERE is not set on this worker)',
      );
    });
    await close();
    expect(labOps(lab)).toEqual([]);
  });

  it('accepts the approval as a plain signal, as the Web UI sends it', async () => {
    const lab = freshLab({ hosts: 2 });
    const { worker, taskQueue, close } = await labWorker(lab);
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, {
        taskQueue,
        workflowId: uniqueId('signal'),
        args: [labPlan(hostIds(PROFILES.appv!, 2))],
      });
      await waitFor(async () => ((await handle.query(statusQuery)).pendingGate ? true : undefined), 'the gate');
      await handle.signal(approveSignal, { approver: 'bob' });
      expect((await handle.result()).outcome).toBe('completed');
    });
    await close();
    expect(labStatus(lab).hosts.every((h) => h.version === '4.5')).toBe(true);
  });
});
