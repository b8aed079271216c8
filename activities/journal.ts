/**
 * The journal of a batch on this machine: the spawner appends a line when a host's command starts and one when it
 * ends (done or failed), before the worker hears of it. Heartbeats reach the server at most once a second, so after `kill -9` of a
 * worker they can miss the last hosts to finish; the journal does not. A retry of the batch on this machine skips
 * every host it shows done, and waits for commands a killed worker's spawner is still finishing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

type JournalEntry =
  | { host: string; event: 'start'; pid: number; token?: string }
  | { host: string; event: 'done'; outputTail: string }
  // Journals written before failures kept their exit status and output have neither.
  | { host: string; event: 'failed'; exitCode?: number; outputTail?: string };

export interface JournaledFailure {
  /** How many times the host's command failed in this batch on this machine. */
  times: number;
  exitCode: number;
  outputTail: string;
}

export interface JournalState {
  /** Hosts whose command succeeded, with its output tail. */
  done: Map<string, string>;
  /** Hosts whose command started and has not finished, where the spawner running it still lives. */
  running: Map<string, { pid: number; token?: string }>;
  /** Hosts whose command failed and has not succeeded since, with the last failure. */
  failed: Map<string, JournaledFailure>;
}

/** One file per activity (workflow run + activity id): every attempt of the same batch reads and extends it. */
export function journalFile(dir: string, activity: { workflowId: string; runId: string; activityId: string }): string {
  const key = createHash('sha256').update(`${activity.workflowId}\n${activity.runId}\n${activity.activityId}`).digest('hex').slice(0, 32);
  return join(dir, `${key}.jsonl`);
}

/** Whether the spawner that journaled a start still runs: its pid, and (where /proc tells) its token, not a pid reused. */
function alive({ pid, token }: { pid: number; token?: string }): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (!token) return true;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(token);
  } catch {
    return existsSync(`/proc/${pid}`) ? false : true;
  }
}

export function readJournal(file: string): JournalState {
  const state: JournalState = { done: new Map(), running: new Map(), failed: new Map() };
  if (!existsSync(file)) return state;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    let entry: JournalEntry;
    try {
      entry = JSON.parse(line) as JournalEntry;
    } catch {
      continue; // a line cut off by a crash: that host's command did not get to succeed
    }
    if (entry.event === 'done') state.done.set(entry.host, entry.outputTail);
    if (entry.event === 'failed') {
      const times = (state.failed.get(entry.host)?.times ?? 0) + 1;
      state.failed.set(entry.host, { times, exitCode: entry.exitCode ?? -1, outputTail: entry.outputTail ?? '' });
    }
    if (entry.event === 'start' && !state.done.has(entry.host)) state.running.set(entry.host, { pid: entry.pid, ...(entry.token ? { token: entry.token } : {}) });
    else state.running.delete(entry.host);
  }
  for (const host of state.done.keys()) state.failed.delete(host);
  for (const [host, spawner] of state.running) if (!alive(spawner)) state.running.delete(host);
  return state;
}

/** Waits until no command of this batch is still running in another (orphaned) spawner. */
export async function settledJournal(file: string, options: { pollMs?: number; signal?: AbortSignal } = {}): Promise<JournalState> {
  for (;;) {
    const state = readJournal(file);
    if (state.running.size === 0 || options.signal?.aborted) return state;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
  }
}

export function removeJournal(file: string): void {
  rmSync(file, { force: true });
}

/** Journals of batches that never finished (a run abandoned mid-batch) are dropped after a week. */
export function pruneJournals(dir: string, maxAgeMs = 7 * 86_400_000): void {
  mkdirSync(dir, { recursive: true });
  const cutoff = Date.now() - maxAgeMs;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).mtimeMs < cutoff) rmSync(file, { force: true });
  }
}
