/**
 * Everything the benchmark starts (dev servers, workers, ansible-playbook, xargs, temp dirs) is registered here,
 * so it is stopped and removed on success, on failure and on Ctrl-C alike.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Undo = () => Promise<void> | void;

const undos: { label: string; undo: Undo }[] = [];
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let keepDirs = false;

/** Keeps temp dirs for inspection (`--keep`); processes are still stopped. */
export function keepTempDirs(keep: boolean): void {
  keepDirs = keep;
}

/** Registers an undo; calling the returned function runs it now (once) and unregisters it. */
export function defer(label: string, undo: Undo): () => Promise<void> {
  const entry = { label, undo };
  undos.push(entry);
  return async () => {
    const index = undos.indexOf(entry);
    if (index < 0) return;
    undos.splice(index, 1);
    await entry.undo();
  };
}

const groups = new Set<ChildProcess>();

/**
 * A child process killed with SIGKILL if the benchmark exits while it still runs. `group`: the child was spawned
 * detached (its own process group), and the whole group is killed, e.g. ansible-playbook and its forks.
 */
export function track(child: ChildProcess, options: { group?: boolean } = {}): ChildProcess {
  children.add(child);
  if (options.group) groups.add(child);
  child.once('exit', () => {
    children.delete(child);
    groups.delete(child);
  });
  return child;
}

function kill(child: ChildProcess): void {
  try {
    if (groups.has(child) && child.pid) process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // already gone
  }
}

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  if (keepDirs) return;
  dirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export function keptDirs(): string[] {
  return keepDirs ? [...dirs] : [];
}

/** Runs every registered undo, newest first; failures are reported, not thrown, so the rest still run. */
export async function cleanupAll(): Promise<void> {
  while (undos.length > 0) {
    const entry = undos.pop() as (typeof undos)[number];
    try {
      await entry.undo();
    } catch (error) {
      console.error(`bench: cleanup "${entry.label}" failed: ${(error as Error).message}`);
    }
  }
  cleanupSync();
}

/** The last resort on process exit: nothing asynchronous can run any more. */
function cleanupSync(): void {
  for (const child of children) if (alive(child)) kill(child);
  if (keepDirs) return;
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    } catch (error) {
      console.error(`bench: could not remove ${dir}: ${(error as Error).message}`);
    }
  }
}

let installed = false;
let stopping = false;

/** Whether Ctrl-C / SIGTERM is stopping the benchmark (errors of operations cut off by it are not news). */
export function interrupted(): boolean {
  return stopping;
}

/** Ctrl-C / SIGTERM: stop everything, then exit 130; a crash still kills children and removes temp dirs. */
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      cleanupSync();
      process.exit(130);
    }
    stopping = true;
    console.error(`\nbench: ${signal}: stopping what the benchmark started (again to force)`);
    void cleanupAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupSync);
}
