/**
 * What deploy/cutover-worker.service promises: systemd accepts the unit, and stopping it signals the worker alone
 * (KillMode=process), which starts no more hosts, lets the host commands under way run to their end, and hands the
 * batch over with their outcomes in its last heartbeat; a new worker, on another machine as far as it can tell (a
 * state directory, so a journal, of its own), carries the run on and no host-step runs twice.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { expect, inject, it } from 'vitest';
import { PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveUpdate } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { ROOT, atGate, freshLab, labPlan, uniqueId, useTemporalClient, waitFor, workerProcess } from '../helpers';

const temporal = useTemporalClient();
const UNIT = join(ROOT, 'deploy', 'cutover-worker.service');
const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

it.skipIf(!hasSystemdAnalyze)('the systemd unit passes systemd-analyze verify without a complaint', () => {
  const verify = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  expect(verify.stderr).toBe('');
  expect(verify.status).toBe(0);
  expect(readFileSync(UNIT, 'utf8')).toMatch(/^KillMode=process$/m);
});

/** The install batch's activity in the run's history: the attempt that closed it, and the failure before that attempt. */
async function installBatch(handle: WorkflowHandle) {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes && payloadText(e.userMetadata?.summary?.data).startsWith('upgrade on appv-02'));
  const started = events.find((e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled?.eventId?.toString());
  const closed = events.find((e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === scheduled?.eventId?.toString());
  const attributes = started?.activityTaskStartedEventAttributes;
  return { attempt: attributes?.attempt, lastFailure: attributes?.lastFailure?.applicationFailureInfo?.type, closedAt: closed?.eventTime ? tsToMs(closed.eventTime) : Infinity };
}

const payloadText = (data: Uint8Array | null | undefined) => (data ? String(JSON.parse(Buffer.from(data).toString('utf8'))) : '');

/** The install under way when SIGTERM comes, and how soon the next worker must have finished the batch after it. */
const INSTALL_DELAY_S = 5;
const HANDED_OVER_WITHIN_MS = INSTALL_DELAY_S * 1000 + 3_000;

it('SIGTERM to the worker alone hands the batch over once the install under way has finished, to a worker with a journal of its own, which runs no host-step twice', async () => {
  const lab = freshLab({ hosts: 3 });
  labFault(lab, 'appv-03', 'install', { delaySeconds: INSTALL_DELAY_S });
  const taskQueue = uniqueId('sigterm');
  const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: lab, CUTOVER_STATE_DIR: mkdtempSync(join(tmpdir(), 'cutover-state-')) };
  const first = await workerProcess(env);
  const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('sigterm'), args: [labPlan(hostIds(PROFILES.appv!, 3))] });
  await atGate(handle, 'beforeOffline');
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
  const ops = (host: string, op: string) => labOps(lab).filter((o) => o.host === host && o.op.startsWith(op));
  // appv-03's install is under way (the lab logged its delay): what `systemctl stop` does with KillMode=process.
  await waitFor(async () => (ops('appv-03', 'install').some((o) => o.result === 'fault') ? true : undefined), "appv-03's install to start");
  const exited = new Promise((resolve) => first.once('exit', resolve));
  first.kill('SIGTERM');
  // Another machine: the stopping worker's journal is not this one's, so only the handed-over heartbeat tells it.
  const second = await workerProcess({ ...env, CUTOVER_STATE_DIR: mkdtempSync(join(tmpdir(), 'cutover-state-')) });
  const polling = Date.now();
  try {
    expect((await handle.result()).outcome).toBe('completed');
  } finally {
    second.kill('SIGTERM');
  }
  await exited;
  // Handed over: the batch failed retryably on the stopping worker once appv-03's install had ended (not after a
  // heartbeat timeout, nor finished by it), and the new worker's attempt finished the rest.
  const batch = await installBatch(handle);
  expect(batch).toMatchObject({ attempt: 2, lastFailure: 'WorkerShutdown' });
  expect(batch.closedAt - polling).toBeLessThan(HANDED_OVER_WITHIN_MS);
  for (const host of ['appv-01', 'appv-02', 'appv-03']) {
    for (const step of ['drain', 'stop', 'install', 'start', 'verify', 'online']) {
      expect(ops(host, step).filter((o) => o.result === 'ok'), `${host} ${step}`).toHaveLength(1);
    }
  }
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
});
