/**
 * What deploy/cutover-worker.service promises: systemd accepts the unit, and stopping it signals the worker alone
 * (KillMode=process), which leaves the host commands under way running to their end; a new worker carries the run on
 * and no host-step runs twice.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

it('SIGTERM to the worker alone lets the install under way finish, and a new worker carries the run on', async () => {
  const lab = freshLab({ hosts: 3 });
  // Longer than a test would wait for a worker's shutdown grace would be better; 5 s is enough to be mid-command.
  labFault(lab, 'appv-03', 'install', { delaySeconds: 5 });
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
  const second = await workerProcess(env);
  try {
    expect((await handle.result()).outcome).toBe('completed');
  } finally {
    second.kill('SIGTERM');
  }
  await exited;
  for (const host of ['appv-01', 'appv-02', 'appv-03']) expect(ops(host, 'install').filter((o) => o.result === 'ok'), host).toHaveLength(1);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
});
