/**
 * Crashes: a worker killed with SIGKILL in the middle of a batch, and the Temporal dev server stopped and started
 * again on its database file. The run resumes, and the lab's operation log shows no completed step ran twice.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { NativeConnection } from '@temporalio/worker';
import { expect, it, inject } from 'vitest';
import type { RetryPolicy, UpgradePlan } from '../../core/plan';
import { PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { freePort, startDevServer } from '../../stack/devServer';
import { HEARTBEAT_TIMEOUT_MS } from '../../workflows/activities';
import { approveUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { createCutoverWorker } from '../../worker/worker';
import { atGate, freshLab, labPlan, recordHistory, uniqueId, waitFor, workerProcess, workflowBundle, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

/** The plan's retry of the upgrade steps (the DB owner's and the others'). */
function withUpgradeRetry(plan: UpgradePlan, retry: Partial<RetryPolicy>): UpgradePlan {
  const roles = Object.fromEntries(
    Object.entries(plan.roles).map(([name, role]) => {
      const upgrade = role.steps.upgrade;
      return [name, { ...role, steps: { ...role.steps, ...(upgrade ? { upgrade: { ...upgrade, retry: { ...upgrade.retry, ...retry } } } : {}) } }];
    }),
  );
  return { ...plan, roles };
}

/**
 * Starts a run on five lab hosts with two worker processes on its task queue, kills the one running the batch of
 * remaining hosts with SIGKILL (appv-04's install under way), and waits for the run to end. Returns the lab, how long
 * after the kill the other worker finished the batch (its retry waits for appv-04's install in the journal), and the
 * outcome. With the second worker polling from the start, that is the heartbeat timeout's doing, not a worker's start.
 */
async function killWorkerMidUpgrade(tweak: (plan: UpgradePlan) => UpgradePlan = (plan) => plan) {
  const hosts = hostIds(PROFILES.appv!, 5);
  const lab = freshLab({ hosts: 5 });
  // appv-04's install is slow, so the kill lands while the batch of remaining hosts is under way.
  labFault(lab, 'appv-04', 'install', { delaySeconds: 6 });
  const plan = tweak(labPlan(hosts));
  const taskQueue = uniqueId('resume');
  const state = mkdtempSync(join(tmpdir(), 'cutover-state-'));
  const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: lab, CUTOVER_STATE_DIR: state };
  const workers = await Promise.all([workerProcess(env), workerProcess(env)]);
  const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('kill9'), args: [plan] });
  await atGate(handle, 'beforeOffline');
  await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });

  const installed = (host: string) => labOps(lab).filter((op) => op.host === host && op.op.startsWith('install') && op.result === 'ok');
  await waitFor(async () => (['appv-02', 'appv-03', 'appv-05'].every((h) => installed(h).length === 1) ? true : undefined), 'the fast installs');
  expect(installed('appv-04')).toHaveLength(0);
  // Killed at once: the last heartbeat may not list the hosts that just finished, and appv-04's install is under way.
  // The worker's spawner outlives it, finishes that install and journals it; the next attempt trusts the journal.
  const running = await batchWorker(handle);
  const first = workers.find((worker) => worker.pid === running);
  const second = workers.find((worker) => worker !== first);
  if (!first || !second) {
    for (const worker of workers) worker.kill('SIGKILL');
    throw new Error(`neither worker process runs the batch (its worker's pid: ${running})`);
  }
  first.kill('SIGKILL');
  const killedAt = Date.now();
  let phase: string;
  try {
    // The run either completes or waits for an operator (a host reported failed): either way it has decided.
    phase = await waitFor(async () => {
      const { phase } = await handle.query(statusQuery);
      return phase === 'completed' || phase === 'awaiting-operator' ? phase : undefined;
    }, 'the run to complete or wait for an operator', 90_000);
    if (phase === 'completed') expect((await handle.result()).outcome).toBe('completed');
    else await handle.terminate('the test is over');
  } finally {
    second.kill('SIGTERM');
  }
  return { lab, hosts, phase, installed, resumedAfterMs: (await batchClosedAt(handle)) - killedAt, handle };
}

/** The process id of the worker running the upgrade batch, from its identity (pid@host, the SDK's default). */
async function batchWorker(handle: WorkflowHandle): Promise<number | undefined> {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  const identity = pending.find((activity) => activity.activityType?.name === 'runHostStep')?.lastWorkerIdentity;
  return identity ? Number(identity.split('@')[0]) : undefined;
}

/** When the remaining hosts' upgrade batch closed, by the server's clock (the same machine's). */
async function batchClosedAt(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const batch = events.find((e) => e.activityTaskScheduledEventAttributes && payloadText(e.userMetadata?.summary?.data).startsWith('upgrade on appv-02'));
  const closed = events.find((e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === batch?.eventId?.toString());
  return closed?.eventTime ? tsToMs(closed.eventTime) : Infinity;
}

const payloadText = (data: Uint8Array | null | undefined) => (data ? String(JSON.parse(Buffer.from(data).toString('utf8'))) : '');

/** examples/appv-lab.yaml's `initialInterval` of the upgrade steps. */
const UPGRADE_RETRY_INTERVAL_MS = 2_000;
/**
 * The other worker retries the batch once the heartbeat timeout (5 s after the last heartbeat, at most 1 s before the
 * kill) notices the lost worker, after the upgrade's 2 s retry interval; the retry waits for appv-04's install (which
 * ends about 5.5 s after the kill, so before) and closes the batch. The margin covers the dev server's timers on a
 * loaded machine. Measured at a load average of 8-9 on 2 cores: 7.0 s and 7.8 s; with the 20 s timeout of runs from
 * before, 21.9 s.
 */
const RESUME_WITHIN_MS = HEARTBEAT_TIMEOUT_MS + UPGRADE_RETRY_INTERVAL_MS + 4_000;

it('a worker killed mid-batch is replaced, and no host-step that completed, or was under way, runs again', async () => {
  const { lab, hosts, phase, installed, resumedAfterMs, handle } = await killWorkerMidUpgrade();
  expect(phase).toBe('completed');
  await recordHistory(handle, 'short-heartbeat-after-lost-worker');
  // Noticed within the heartbeat timeout (plus the retry interval and a margin), not the 30 min step timeout.
  expect(resumedAfterMs, `the batch closed ${resumedAfterMs} ms after the kill`).toBeLessThan(RESUME_WITHIN_MS);

  const ops = labOps(lab);
  for (const host of hosts) {
    for (const step of ['drain', 'stop', 'start', 'verify', 'online']) {
      expect(ops.filter((op) => op.host === host && op.op.split(' ')[0] === step && op.result === 'ok'), `${host} ${step}`).toHaveLength(1);
    }
  }
  // Every install ran once: those the heartbeat or the journal recorded, and the one under way at the kill.
  for (const host of hosts) expect(installed(host), host).toHaveLength(1);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.services.AppVServer === 'running' && h.online)).toBe(true);
});

it("a worker killed mid-batch does not use up an installer's single attempt: the batch resumes and each install runs once", async () => {
  // The Windows templates' installers run once (maxAttempts: 1); losing the worker is no failed install.
  const { lab, hosts, phase, installed, resumedAfterMs } = await killWorkerMidUpgrade((plan) => withUpgradeRetry(plan, { maxAttempts: 1 }));
  expect(phase).toBe('completed');
  expect(resumedAfterMs, `the batch closed ${resumedAfterMs} ms after the kill`).toBeLessThan(RESUME_WITHIN_MS);
  for (const host of hosts) expect(installed(host), host).toHaveLength(1);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.services.AppVServer === 'running' && h.online)).toBe(true);
});

it('a run survives the dev server stopping and starting again on its database file in the middle of a batch, and runs no host-step twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-restart-'));
  const port = await freePort();
  const options = { binary: inject('temporalBinary'), port, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') };
  let server = await startDevServer(options);
  const hosts = hostIds(PROFILES.appv!, 3);
  const lab = freshLab({ hosts: 3 });
  // appv-02's install is slow, so the server goes away while the batch of remaining hosts runs.
  labFault(lab, 'appv-02', 'install', { delaySeconds: 3 });
  const taskQueue = uniqueId('restart');
  const workerConnection = await NativeConnection.connect({ address: server.address });
  const worker = await createCutoverWorker({ connection: workerConnection, taskQueue, workflowBundle: await workflowBundle(), lab: true, commandEnv: { CUTOVER_LAB_DIR: lab }, journalDir: join(dir, 'journal') });
  const connect = async () => new Client({ connection: await Connection.connect({ address: server.address }) });
  let stopping = Infinity;
  try {
    await worker.runUntil(async () => {
      let local = await connect();
      const workflowId = uniqueId('restart');
      const handle = await local.workflow.start(upgradeFleet, { taskQueue, workflowId, args: [labPlan(hosts)] });
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      await waitFor(async () => (labOps(lab).some((op) => op.host === 'appv-02' && op.result === 'fault') ? true : undefined), "appv-02's install to run");
      await local.connection.close();

      stopping = Date.now();
      await server.stop();
      server = await startDevServer(options);

      local = await connect();
      expect((await local.workflow.getHandle(workflowId).result()).outcome).toBe('completed');
      await local.connection.close();
    });
  } finally {
    await workerConnection.close();
    await server.stop();
  }
  const ops = labOps(lab);
  // The server went away while the batch ran: appv-02's install ended after.
  expect(Date.parse(ops.find((op) => op.host === 'appv-02' && op.op.startsWith('install') && op.result === 'ok')?.time ?? '')).toBeGreaterThan(stopping);
  for (const host of hosts) {
    for (const step of ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']) {
      expect(ops.filter((op) => op.host === host && op.op.split(' ')[0] === step && op.result === 'ok'), `${host} ${step}`).toHaveLength(1);
    }
  }
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
});
