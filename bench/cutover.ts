/**
 * Cutover's side: a headless dev server (fresh port, temp database file) and a worker in its own process
 * (`node bin/cutover.js worker`), both started and polling before the clock starts; then one timed upgradeFleet
 * run with the beforeOffline gate approved as soon as it opens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { cutoverDataConverter } from '../codec/dataConverter';
import { CODEC_ENV_PREFIX } from '../core/codecKeys';
import type { UpgradePlan } from '../core/plan';
import type { RunResult } from '../core/status';
import { PROJECT_ROOT } from '../projectRoot';
import { type DevServer, freePort, startDevServer } from '../stack/devServer';
import { PhaseAttribute, approveUpdate, statusQuery, WORKFLOW_TYPE } from '../workflows/messages';
import { alive, defer, stopProcess, track } from './cleanup';
import { type Breakdown, type RunHistory, breakdown, collectHistories } from './histories';
import { type TreeMemory, TreeSampler, cpuSeconds, memoryOf, spawnerSeconds } from './procs';

const NAMESPACE = 'default';
/** How often the bench tries to approve while the run is still in preflight. */
const APPROVE_POLL_MS = 50;

export interface CutoverStack {
  address: string;
  client: Client;
  taskQueue: string;
  server: DevServer;
  worker: ChildProcess;
  /** Starts another worker process on the same task queue (after a kill) and waits until it polls. */
  startWorker(): Promise<ChildProcess>;
  stop(): Promise<void>;
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function waitForPollers(client: Client, taskQueue: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // TaskQueueType: 1 = workflow tasks, 2 = activity tasks.
  for (;;) {
    const counts = await Promise.all(
      [1, 2].map(async (taskQueueType) => {
        const response = await client.workflowService.describeTaskQueue({ namespace: NAMESPACE, taskQueue: { name: taskQueue }, taskQueueType });
        return response.pollers?.length ?? 0;
      }),
    );
    if (counts.every((n) => n > 0)) return;
    if (Date.now() > deadline) throw new Error(`no worker polled task queue ${taskQueue} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fresh AES-256 key in a file of the bench's temp dir, as CUTOVER_CODEC_KEYS names it. */
function benchCodecKeys(dir: string): { CUTOVER_CODEC_KEYS: string } {
  const file = join(dir, 'codec.key');
  writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  return { CUTOVER_CODEC_KEYS: `bench=file:${file}` };
}

function spawnWorker(env: NodeJS.ProcessEnv, logFile: string, nodeArgs: string[], checkout = PROJECT_ROOT): Promise<ChildProcess> {
  const cli = join(checkout, 'bin', 'cutover.js');
  const child = track(spawn(process.execPath, [...nodeArgs, cli, 'worker'], { cwd: checkout, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not start within 180 s; see ${logFile}`));
    }, 180_000);
    child.stdout?.on('data', (data: Buffer) => {
      if (data.toString().includes('polling task queue')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited (${signal ?? `code ${code}`}) before polling:\n${tail(logFile)}`));
    });
  });
}

export async function startCutoverStack(options: {
  binary: string;
  dir: string;
  labDir: string;
  taskQueue: string;
  /** Where the worker spawns host commands from: its spawner processes (the default), or itself. */
  spawnFrom?: 'spawner' | 'worker';
  /** Encrypted payloads: a fresh key in the temp dir, in CUTOVER_CODEC_KEYS for the worker and the client. */
  encrypted?: boolean;
  /** Node's own options for the worker process (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  workerNodeArgs?: string[];
  /** The checkout whose `bin/cutover.js worker` runs (default: this one); another has its own node_modules and build. */
  checkout?: string;
}): Promise<CutoverStack> {
  const server = await startDevServer({
    binary: options.binary,
    port: await freePort(),
    // A database of its own per leg (named by its task queue): no leg starts on another's histories.
    dbFile: join(options.dir, `temporal-${options.taskQueue}.db`),
    logFile: join(options.dir, `temporal-${options.taskQueue}.log`),
  });
  track(server.process);
  const releaseServer = defer('dev server', () => server.stop());
  const codecEnv = options.encrypted ? benchCodecKeys(options.dir) : {};
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: NAMESPACE, dataConverter: cutoverDataConverter(codecEnv) });
  const releaseClient = defer('client connection', () => connection.close());
  const workers: ChildProcess[] = [];
  const releaseWorkers = defer('workers', async () => {
    await Promise.all(workers.map((w) => stopProcess(w)));
  });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: NAMESPACE,
    CUTOVER_TASK_QUEUE: options.taskQueue,
    CUTOVER_LAB: '1',
    CUTOVER_LAB_DIR: options.labDir,
    CUTOVER_STATE_DIR: options.dir,
    CUTOVER_SPAWN_FROM: options.spawnFrom ?? 'spawner',
  };
  // Encrypted only in the encrypted leg, whatever the shell running the bench has set.
  for (const name of Object.keys(env)) if (name.startsWith(CODEC_ENV_PREFIX)) delete env[name];
  Object.assign(env, codecEnv);
  delete env.TEMPORAL_PROFILE;
  delete env.TEMPORAL_API_KEY;
  const startWorker = async () => {
    const worker = await spawnWorker(env, join(options.dir, 'worker.log'), options.workerNodeArgs ?? [], options.checkout);
    workers.push(worker);
    await waitForPollers(client, options.taskQueue);
    return worker;
  };
  let worker: ChildProcess;
  try {
    worker = await startWorker();
  } catch (error) {
    await releaseWorkers();
    await releaseClient();
    await releaseServer();
    throw error;
  }
  return {
    address: server.address,
    client,
    taskQueue: options.taskQueue,
    server,
    worker,
    startWorker,
    async stop() {
      await releaseWorkers();
      await releaseClient();
      await releaseServer();
    },
  };
}

/**
 * Approves beforeOffline as soon as it is pending. Whether it is pending is read from the server alone
 * (DescribeWorkflowExecution: the CutoverPhase search attribute the workflow sets to "awaiting-approval"), so
 * the polling costs the worker nothing; a query or a refused update would each run a workflow task in the worker,
 * which competes with the batch under way and can add a workflow task to the history. A refused update
 * ("no gate is pending") is tried again. Should the workflow not set the attribute, the update is tried whenever
 * the run is idle: no workflow task, activity or child workflow pending.
 */
export async function approveWhenOpen(handle: WorkflowHandle, closed: () => boolean, timeoutMs = 30 * 60_000): Promise<{ polls: number; refused: number }> {
  const deadline = Date.now() + timeoutMs;
  let polls = 0;
  let refused = 0;
  for (;;) {
    polls++;
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') throw new Error(`the run ${handle.workflowId} ended (${description.status.name}) before its beforeOffline gate opened`);
    const phase = description.typedSearchAttributes.get(PhaseAttribute);
    const { pendingActivities, pendingChildren, pendingWorkflowTask } = description.raw;
    const idle = !pendingWorkflowTask && !pendingActivities?.length && !pendingChildren?.length;
    if (phase === 'awaiting-approval' || (phase === undefined && idle)) {
      try {
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'bench', gate: 'beforeOffline', comment: 'npm run bench' }] });
        return { polls, refused };
      } catch (error) {
        if (!(error instanceof WorkflowUpdateFailedError) || closed()) throw error;
        refused++;
      }
    }
    if (Date.now() > deadline) throw new Error(`the beforeOffline gate did not open within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, APPROVE_POLL_MS));
  }
}

/**
 * Never resolves; rejects if the run stops for an operator (a step failed for good), so the benchmark fails with
 * the reason instead of waiting forever. Reads the CutoverPhase search attribute from the server every 2 s.
 */
async function stuckWatch(handle: WorkflowHandle, closed: () => boolean): Promise<never> {
  for (;;) {
    await new Promise((r) => setTimeout(r, 2_000));
    if (closed()) return new Promise<never>(() => {});
    const phase = (await handle.describe()).typedSearchAttributes.get(PhaseAttribute);
    if (phase === 'awaiting-operator') {
      const status = await handle.query(statusQuery);
      await handle.terminate('npm run bench: a step failed');
      throw new Error(`the benchmark run ${handle.workflowId} stopped for an operator: ${status.awaitingOperator?.reason ?? status.failure ?? 'a step failed'}`);
    }
  }
}

export interface CutoverResult {
  wallMs: number;
  workflowId: string;
  outcome: string;
  /** DescribeWorkflowExecution calls until the gate was seen open, and approveGate updates refused. */
  approval: { polls: number; refused: number };
  memory: TreeMemory & { workerHwmKiB: number };
  cpu: { workerSeconds: number; serverSeconds: number; spawnersSeconds?: number };
  breakdown: Breakdown;
  histories: { workflowId: string; runId: string; type: string; events: number; bytes: number }[];
}

/** Starts the run and waits for it; `during` gets the handle while the run is under way (the kill scenario). */
export async function timeCutover(
  stack: CutoverStack,
  plan: UpgradePlan,
  during?: (handle: WorkflowHandle) => Promise<void>,
): Promise<{ result: CutoverResult; runs: RunHistory[] }> {
  const workerPid = stack.worker.pid as number;
  const serverPid = stack.server.process.pid as number;
  const workflowId = `${plan.fleet}-${Date.now().toString(36)}`;
  const sampler = new TreeSampler(workerPid).start();
  const cpuBefore = { worker: cpuSeconds(workerPid) ?? 0, server: cpuSeconds(serverPid) ?? 0, spawners: spawnerSeconds(workerPid) };
  let closed = false;
  const started = performance.now();
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, { taskQueue: stack.taskQueue, workflowId, args: [plan] });
  const result = handle.result() as Promise<RunResult>;
  void result.then(
    () => (closed = true),
    () => (closed = true),
  );
  let approval: CutoverResult['approval'];
  let wallMs: number;
  let outcome: RunResult;
  try {
    approval = await approveWhenOpen(handle, () => closed);
    if (during) await during(handle);
    outcome = await Promise.race([result, stuckWatch(handle, () => closed)]);
    wallMs = performance.now() - started;
  } catch (error) {
    sampler.stop();
    throw error;
  }
  const memory = sampler.stop();
  // The worker that ran (the last one started, after a kill) is still alive here.
  const lastWorker = alive(stack.worker) ? workerPid : undefined;
  const cpu = {
    workerSeconds: lastWorker ? (cpuSeconds(workerPid) ?? 0) - cpuBefore.worker : NaN,
    serverSeconds: (cpuSeconds(serverPid) ?? 0) - cpuBefore.server,
    // Spawners alive at the end (one let go or restarted during the run is missed).
    spawnersSeconds: lastWorker ? [...spawnerSeconds(workerPid)].reduce((sum, [pid, now]) => sum + now - (cpuBefore.spawners.get(pid) ?? 0), 0) : NaN,
  };
  const workerHwmKiB = lastWorker ? (memoryOf(workerPid)?.hwmKiB ?? 0) : NaN;
  if (outcome.outcome !== 'completed') throw new Error(`the benchmark run ${workflowId} ended ${outcome.outcome}: ${outcome.reason ?? ''}`);
  const runs = await collectHistories(stack.client, workflowId, handle.firstExecutionRunId);
  return {
    result: {
      wallMs,
      workflowId,
      outcome: outcome.outcome,
      approval,
      memory: { ...memory, workerHwmKiB },
      cpu,
      breakdown: breakdown(runs),
      histories: runs.map(({ workflowId: id, runId, type, events, bytes }) => ({ workflowId: id, runId, type, events, bytes })),
    },
    runs,
  };
}
