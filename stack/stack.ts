/**
 * The embedded default stack: the Temporal dev server with its Web UI (SQLite file in .cutover/, so runs
 * survive a restart), a worker process and the lab. `cutover dev` brings it up; `npm start` also runs the demo.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { AesGcmCodec } from '../codec/codec';
import { loadCodecKeys } from '../codec/keys';
import { type CodecServer, startCodecServer } from '../codec/server';
import { UserError } from '../core/errors';
import { type ServerTarget, connectClient, serverTarget, taskQueue as defaultTaskQueue } from '../client/connection';
import { pollerIdentities } from '../client/pollers';
import { labDir, labUp } from '../lab/lab';
import { PROJECT_ROOT } from '../projectRoot';
import { serverAnswers, startDevServer, type DevServer } from './devServer';
import { ensureTemporal } from './temporalBinary';

/** Where the embedded stack keeps the dev server's database and logs (git-ignored). */
export const STATE_DIR = process.env.CUTOVER_STATE_DIR ?? join(PROJECT_ROOT, '.cutover');
export const CLI = join(PROJECT_ROOT, 'bin', 'cutover.js');

export interface Stack {
  address: string;
  namespace: string;
  taskQueue: string;
  uiUrl?: string;
  /** The codec server the Web UI uses, when encryption is on (CUTOVER_CODEC_KEYS). */
  codecUrl?: string;
  labDir: string;
  stop(): Promise<void>;
}

function isLocal(address: string): boolean {
  return /^(localhost|127\.0\.0\.1|\[::1\]):\d+$/.test(address);
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

/** How long the worker may take to poll: bundling the workflow code takes most of it on a slow machine. */
const WORKER_START_TIMEOUT_MS = 90_000;

function exitText(worker: ChildProcess): string | undefined {
  if (worker.exitCode === null && worker.signalCode === null) return undefined;
  return worker.signalCode ?? `code ${worker.exitCode}`;
}

/** Whether the server lists this worker among the pollers of both the workflow and the activity tasks. */
async function pollsEveryKind(client: Client, queue: string, identity: string): Promise<boolean> {
  const kinds = await Promise.all((['workflow', 'activity'] as const).map((kind) => pollerIdentities(client, queue, kind)));
  return kinds.every((identities) => identities.includes(identity));
}

/**
 * Resolves once the server has seen the worker process poll the queue. It is told apart from a worker that stopped
 * a moment ago (still listed) by its identity, the worker's default: pid@host.
 */
async function untilPolling(client: Client, worker: ChildProcess, queue: string, logFile: string): Promise<void> {
  const identity = `${worker.pid}@${hostname()}`;
  const deadline = Date.now() + WORKER_START_TIMEOUT_MS;
  for (;;) {
    const exited = exitText(worker);
    if (exited) throw new Error(`the worker exited (${exited}):\n${logTail(logFile)}`);
    if (await pollsEveryKind(client, queue, identity)) return;
    if (Date.now() > deadline) throw new Error(`the worker did not poll task queue "${queue}" within ${WORKER_START_TIMEOUT_MS / 1000} s; see its log, ${logFile}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function startWorker(target: ServerTarget, queue: string, env: NodeJS.ProcessEnv, logFile: string): Promise<ChildProcess> {
  const client = await connectClient(target);
  const child = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  try {
    await untilPolling(client, child, queue, logFile);
    return child;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    await client.connection.close();
  }
}

/**
 * With encryption on, the codec server the local Web UI decodes with: on loopback, answering the UI's origin only
 * (the dev server's UI has no login whose token it could forward). CUTOVER_CODEC_PORT, or any free port.
 */
async function localCodecServer(uiPort: number, log: (line: string) => void): Promise<CodecServer | undefined> {
  const keys = loadCodecKeys();
  if (!keys) return undefined;
  const origins = [`http://localhost:${uiPort}`, `http://127.0.0.1:${uiPort}`];
  const codec = await startCodecServer({ host: '127.0.0.1', port: process.env.CUTOVER_CODEC_PORT ?? '0', origins, localUi: true }, new AesGcmCodec(keys));
  log(`payloads are encrypted (key ${keys[0]?.id} encrypts); the Web UI decodes them with the codec server at ${codec.url}`);
  return codec;
}

export async function upStack(log: (line: string) => void): Promise<Stack> {
  mkdirSync(STATE_DIR, { recursive: true });
  const target = serverTarget();
  let server: DevServer | undefined;
  let codec: CodecServer | undefined;
  let uiUrl: string | undefined;
  if (await serverAnswers(target.address)) {
    log(`using the Temporal server already running at ${target.address}`);
    if (loadCodecKeys()) log('payloads are encrypted: point its Web UI at `cutover codec-server` to read them (README, Encryption)');
  } else if (isLocal(target.address)) {
    const binary = await ensureTemporal(log);
    const uiPort = Number(process.env.CUTOVER_UI_PORT ?? 8233);
    codec = await localCodecServer(uiPort, log);
    log(`starting the Temporal dev server at ${target.address} (Web UI on port ${uiPort}, data in ${join(STATE_DIR, 'temporal.db')})`);
    server = await startDevServer({
      ...(codec ? { uiCodecEndpoint: codec.url } : {}),
      binary,
      port: Number(target.address.split(':').pop()),
      uiPort,
      dbFile: join(STATE_DIR, 'temporal.db'),
      logFile: join(STATE_DIR, 'temporal.log'),
      namespace: target.namespace,
    }).catch(async (error: unknown) => {
      await codec?.close();
      throw error;
    });
    uiUrl = server.uiUrl;
  } else {
    throw new UserError(`Cannot reach the Temporal server at ${target.address}, and only a local address can be started here. Check TEMPORAL_ADDRESS or your temporal.toml profile.`);
  }
  uiUrl ??= process.env.CUTOVER_UI_URL ?? (isLocal(target.address) ? 'http://localhost:8233' : undefined);

  const lab = labDir();
  if (!existsSync(join(lab, 'lab.json'))) {
    labUp(lab, { profile: 'appv', hosts: 4 });
    log(`lab: 4 App-V management servers at ${lab}`);
  }

  const queue = defaultTaskQueue();
  log(`starting a worker on task queue "${queue}" (log: ${join(STATE_DIR, 'worker.log')})`);
  let worker: ChildProcess;
  try {
    // CUTOVER_LAB=1: the worker drives the lab, so labhost goes on its commands' PATH.
    const env = { ...process.env, TEMPORAL_ADDRESS: target.address, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: lab };
    worker = await startWorker(target, queue, env, join(STATE_DIR, 'worker.log'));
  } catch (error) {
    await server?.stop();
    await codec?.close();
    throw error;
  }

  return {
    address: target.address,
    namespace: target.namespace,
    taskQueue: queue,
    ...(uiUrl ? { uiUrl } : {}),
    ...(codec ? { codecUrl: codec.url } : {}),
    labDir: lab,
    async stop() {
      if (worker.exitCode === null && worker.signalCode === null) {
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.kill('SIGTERM');
        const timer = setTimeout(() => worker.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      await server?.stop();
      await codec?.close();
    },
  };
}

export function uiRunUrl(stack: Stack, workflowId: string): string | undefined {
  return stack.uiUrl ? `${stack.uiUrl}/namespaces/${stack.namespace}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}

/** Resolves on Ctrl-C / SIGTERM. */
export function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
