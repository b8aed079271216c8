/**
 * The embedded default stack: the Temporal dev server with its Web UI (SQLite file in .cutover/, so runs
 * survive a restart), a worker process and the lab. `cutover dev` brings it up; `npm start` also runs the demo.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../core/errors';
import { serverTarget, taskQueue as defaultTaskQueue } from '../client/connection';
import { labDir, labUp } from '../lab/lab';
import { serverAnswers, startDevServer, type DevServer } from './devServer';
import { PROJECT_ROOT, ensureTemporal } from './temporalBinary';

/** Where the embedded stack keeps the dev server's database and logs (git-ignored). */
export const STATE_DIR = process.env.CUTOVER_STATE_DIR ?? join(PROJECT_ROOT, '.cutover');
export const CLI = join(PROJECT_ROOT, 'bin', 'cutover.js');

export interface Stack {
  address: string;
  namespace: string;
  taskQueue: string;
  uiUrl?: string;
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

async function startWorker(env: NodeJS.ProcessEnv, logFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the worker did not start within 90 s; see ${logFile}`));
    }, 90_000);
    child.stdout?.on('data', (data: Buffer) => {
      if (data.toString().includes('polling task queue')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited with code ${code}:\n${logTail(logFile)}`));
    });
  });
  return child;
}

export async function upStack(log: (line: string) => void): Promise<Stack> {
  mkdirSync(STATE_DIR, { recursive: true });
  const target = serverTarget();
  let server: DevServer | undefined;
  let uiUrl: string | undefined;
  if (await serverAnswers(target.address)) {
    log(`using the Temporal server already running at ${target.address}`);
  } else if (isLocal(target.address)) {
    const binary = await ensureTemporal(log);
    const uiPort = Number(process.env.CUTOVER_UI_PORT ?? 8233);
    log(`starting the Temporal dev server at ${target.address} (Web UI on port ${uiPort}, data in ${join(STATE_DIR, 'temporal.db')})`);
    server = await startDevServer({
      binary,
      port: Number(target.address.split(':').pop()),
      uiPort,
      dbFile: join(STATE_DIR, 'temporal.db'),
      logFile: join(STATE_DIR, 'temporal.log'),
      namespace: target.namespace,
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
    worker = await startWorker({ ...process.env, TEMPORAL_ADDRESS: target.address, CUTOVER_LAB_DIR: lab }, join(STATE_DIR, 'worker.log'));
  } catch (error) {
    await server?.stop();
    throw error;
  }

  return {
    address: target.address,
    namespace: target.namespace,
    taskQueue: queue,
    ...(uiUrl ? { uiUrl } : {}),
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
