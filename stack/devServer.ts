/**
 * Starts `temporal server start-dev` and waits until it answers. The SDK's ephemeral server allows the binary
 * 5 s to come up, too short on 2 busy cores, so Cutover starts it itself and waits for readiness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';
import { Connection } from '@temporalio/client';

export const SEARCH_ATTRIBUTES = { CutoverPhase: 'Keyword', CutoverFleet: 'Keyword' } as const;

export interface DevServerOptions {
  binary: string;
  port: number;
  /** The Web UI port, or undefined for a headless server. */
  uiPort?: number;
  /** A SQLite file so runs survive a restart; in memory when absent. */
  dbFile?: string;
  logFile?: string;
  namespace?: string;
  readyTimeoutMs?: number;
  /** The codec server the Web UI decodes payloads with (`cutover codec-server`, or the stack's own). */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function waitForServer(address: string, timeoutMs: number, exited?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const why = exited?.();
    if (why) throw new Error(why);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`the Temporal dev server at ${address} did not become ready within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

export async function serverAnswers(address: string): Promise<boolean> {
  try {
    await waitForServer(address, 1_500);
    return true;
  } catch {
    return false;
  }
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(options.port), '--log-level', 'warn'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.namespace && options.namespace !== 'default') args.push('--namespace', options.namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  const output = options.logFile ? openSync(options.logFile, 'a') : 'ignore';
  const child = spawn(options.binary, args, { stdio: ['ignore', output, output] });
  let exit: string | undefined;
  child.once('exit', (code, signal) => {
    exit = `the Temporal dev server exited (${signal ?? `code ${code}`})${options.logFile ? `; see ${options.logFile}` : ''}`;
  });
  const address = `127.0.0.1:${options.port}`;
  try {
    await waitForServer(address, options.readyTimeoutMs ?? 60_000, () => exit);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    address,
    ...(options.uiPort ? { uiUrl: `http://localhost:${options.uiPort}` } : {}),
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
