/**
 * The worker's side of the spawner: lean child processes that spawn the host commands, journal them and answer over
 * IPC, so the worker itself never forks. Two programs speak the same messages and write the same journal:
 * - the Go spawner (goSpawner/), which `npm install` builds where Go is installed: it starts a command with a
 *   vfork-like clone, about 0.2 ms of its CPU;
 * - the Node spawner (commandRunner.cjs), where it is not: Node forks the whole ~40 MB spawner for each command,
 *   about 1.1 ms.
 * A worker keeps one spawner per core; each is started on first use (or warmed at worker start), let go after a
 * while idle, and restarted if it dies.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { env as workerEnv } from 'node:process';
import { goSpawnerProgram } from '../build/layout.cjs';
import { UserError } from '../core/errors';
import { PROJECT_ROOT } from '../projectRoot';
import { type CommandRequest, type CommandResult, commandEnvironment } from './commandRunner.cjs';

/**
 * The spawner's code, from the checkout, never the build's copy: \`npm run build\` replaces .cutover/build while a
 * worker runs, and a spawner the worker forks again after an idle spell must find its file.
 */
const COMMAND_RUNNER = join(PROJECT_ROOT, 'transport', 'commandRunner.cjs');
const IDLE_MS = 30_000;

/** Which program a spawner runs: the Go spawner's binary, or the Node spawner. */
export type SpawnerProgram = { kind: 'go'; path: string } | { kind: 'node' };

/**
 * The Go spawner when it is built from its sources as they are, else the Node spawner. CUTOVER_SPAWNER=node or go
 * chooses (the benchmark compares them); go when it is not built is refused, with what to do.
 */
export function spawnerProgram(env: NodeJS.ProcessEnv = workerEnv): SpawnerProgram {
  const chosen = env.CUTOVER_SPAWNER;
  if (chosen !== undefined && chosen !== 'go' && chosen !== 'node') throw new UserError(`CUTOVER_SPAWNER is "${chosen}": it takes go or node (unset: go where it is built).`);
  const path = goSpawnerProgram(PROJECT_ROOT);
  const built = path !== undefined && existsSync(path);
  if (chosen === 'go' && !built) {
    throw new UserError(`CUTOVER_SPAWNER=go, but the Go spawner is not built from transport/goSpawner as it is now: run \`npm run build\` with Go installed (its output says why it did not build), or unset CUTOVER_SPAWNER.`);
  }
  return chosen !== 'node' && built ? { kind: 'go', path } : { kind: 'node' };
}

interface Pending {
  resolve(result: CommandResult): void;
  reject(error: Error): void;
  onOutput?: (chunk: string) => void;
}

type SpawnerMessage =
  | { type: 'result'; id: number; result: CommandResult }
  | { type: 'error'; id: number; message: string }
  | { type: 'output'; id: number; chunk: string };

type Channel = { ref(): void; unref(): void };

/** One spawner process and the commands it was sent and has not answered. */
interface Process {
  child: ChildProcess;
  pending: Map<number, Pending>;
}

export class Spawner {
  private current: Process | undefined;
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly program: SpawnerProgram = spawnerProgram()) {}

  /** The spawner's process id, while one runs. */
  get pid(): number | undefined {
    return this.current?.child.pid;
  }

  /** Commands sent and not yet answered. */
  get load(): number {
    return this.current?.pending.size ?? 0;
  }

  /** Starts the process now, so the first command does not wait for a Node start. */
  warm(): void {
    const process = this.start();
    if (process.pending.size === 0) this.idle(process.child);
  }

  run(request: CommandRequest, options: { signal?: AbortSignal; onOutput?: (chunk: string) => void } = {}): Promise<CommandResult> {
    const { child, pending } = this.start();
    const id = this.nextId++;
    clearTimeout(this.idleTimer);
    return new Promise<CommandResult>((resolve, reject) => {
      const abort = () => child.connected && child.send({ type: 'kill', id });
      options.signal?.addEventListener('abort', abort, { once: true });
      const settle = <T>(then: (value: T) => void) => (value: T) => {
        options.signal?.removeEventListener('abort', abort);
        if (pending.size === 0) this.idle(child);
        then(value);
      };
      pending.set(id, { resolve: settle(resolve), reject: settle(reject), ...(options.onOutput ? { onOutput: options.onOutput } : {}) });
      channel(child)?.ref();
      child.send({ type: 'run', id, ...request, streamOutput: options.onOutput !== undefined });
      if (options.signal?.aborted) abort();
    });
  }

  /** Lets the spawner finish what it runs and exit; a later run starts a new one. */
  async close(): Promise<void> {
    const child = this.current?.child;
    clearTimeout(this.idleTimer);
    if (!child?.connected) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.disconnect();
    await exited;
  }

  /** The token tells this spawner from a later process that gets its pid (activities/journal.ts). */
  private launch(token: string): ChildProcess {
    // Not the worker's Temporal credentials: the spawner never needs them, and its commands must not inherit them.
    const options = { env: commandEnvironment(workerEnv), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[] };
    if (this.program.kind === 'go') return spawn(this.program.path, [token], options);
    // Not the worker's own flags (tsx's loader): the spawner stays plain, small Node.
    return fork(COMMAND_RUNNER, [token], { ...options, execArgv: [] });
  }

  /** Nothing under way: the channel keeps nobody alive, and the spawner goes after a while. */
  private idle(child: ChildProcess): void {
    channel(child)?.unref();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.current?.child === child && this.load === 0 && child.connected) {
        // Forgotten first: a command arriving now goes to a new spawner, not to one about to exit.
        this.current = undefined;
        child.disconnect();
      }
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  /** The process is gone, or never came: each command it was sent fails with the reason. */
  private lose(process: Process, reason: string): void {
    if (this.current === process) this.current = undefined;
    for (const [id, pending] of process.pending) {
      process.pending.delete(id);
      pending.reject(new Error(reason));
    }
  }

  private start(): Process {
    if (this.current?.child.connected) return this.current;
    const child = this.launch(randomUUID());
    const process: Process = { child, pending: new Map() };
    child.on('message', (message: SpawnerMessage) => {
      const pending = process.pending.get(message.id);
      if (!pending) return;
      if (message.type === 'output') return pending.onOutput?.(message.chunk);
      process.pending.delete(message.id);
      if (message.type === 'result') pending.resolve(message.result);
      else pending.reject(new Error(message.message));
    });
    child.on('error', (error) => {
      // A failed send (the spawner just died) is answered by its exit below. A program that never started (the Go
      // spawner's binary removed since the worker started) has no exit to wait for: its commands fail now.
      if (child.pid === undefined) this.lose(process, `the command spawner did not start (${this.program.kind === 'go' ? this.program.path : COMMAND_RUNNER}): ${error.message}`);
    });
    child.on('exit', (code, signal) => this.lose(process, `the command spawner exited (${signal ?? `code ${code}`}) while the command ran`));
    // The spawner must never keep the worker alive by itself, nor die with it: a killed worker's spawner finishes
    // its commands and journals them.
    child.unref();
    channel(child)?.unref();
    this.current = process;
    return process;
  }
}

function channel(child: ChildProcess): Channel | undefined {
  return (child as unknown as { channel?: Channel }).channel;
}

/** A spawner per core; each command goes to the least busy. */
export class SpawnerPool {
  private readonly spawners: Spawner[];

  constructor(size = Math.min(4, availableParallelism()), readonly program: SpawnerProgram = spawnerProgram()) {
    this.spawners = Array.from({ length: Math.max(1, size) }, () => new Spawner(program));
  }

  /** How many spawners the pool keeps: as many commands sent at once go one to each. */
  get size(): number {
    return this.spawners.length;
  }

  get pids(): number[] {
    return this.spawners.flatMap((spawner) => (spawner.pid ? [spawner.pid] : []));
  }

  run(...args: Parameters<Spawner['run']>): Promise<CommandResult> {
    const least = this.spawners.reduce((best, spawner) => (spawner.load < best.load ? spawner : best));
    return least.run(...args);
  }

  warm(): void {
    for (const spawner of this.spawners) spawner.warm();
  }

  async close(): Promise<void> {
    await Promise.all(this.spawners.map((spawner) => spawner.close()));
  }
}

let shared: SpawnerPool | undefined;
/** The spawners of this process, shared by every local transport in it. */
export function sharedSpawner(): SpawnerPool {
  shared ??= new SpawnerPool();
  return shared;
}
