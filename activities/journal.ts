/**
 * The journal of a batch on this machine: the spawner appends a line when a host's command starts and one when it
 * ends (done or failed), before the worker hears of it. Heartbeats reach the server at most once a second, so after `kill -9` of a
 * worker they can miss the last hosts to finish; the journal does not. A retry of the batch on this machine skips
 * every host it shows done, and waits for commands a killed worker's spawner is still finishing.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** Who runs a started command: its spawner (pid, token) and, in newer journals, its process group and deadline. */
export interface Runner {
  pid: number;
  token?: string;
  pgid?: number;
  /** When the spawner would have killed the command (its timeout): a group alive after this is what it left behind. */
  until?: number;
}

type JournalEntry =
  | ({ host: string; event: 'start' } & Runner)
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
  running: Map<string, Runner>;
  /** Hosts whose command failed and has not succeeded since, with the last failure. */
  failed: Map<string, JournaledFailure>;
}

/** One file per activity (workflow run + activity id): every attempt of the same batch reads and extends it. */
export function journalFile(dir: string, activity: { workflowId: string; runId: string; activityId: string }): string {
  const key = createHash('sha256').update(`${activity.workflowId}\n${activity.runId}\n${activity.activityId}`).digest('hex').slice(0, 32);
  return join(dir, `${key}.jsonl`);
}

/**
 * Whether a started command may still run: the spawner that journaled it lives (it journals the end), or, with the
 * spawner gone (killed with the worker's whole process tree), the command's process group lives and is within its
 * timeout. A retry waits for either rather than start the command a second time.
 */
function stillRunning(runner: Runner): boolean {
  return spawnerAlive(runner) || (runner.pgid !== undefined && Date.now() < (runner.until ?? 0) && groupAlive(runner.pgid));
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the spawner that journaled a start still runs: its pid, and (where /proc tells) its token, not a pid reused. */
function spawnerAlive({ pid, token }: Runner): boolean {
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

const Entry = z.discriminatedUnion('event', [
  z.object({ host: z.string(), event: z.literal('start'), pid: z.int(), token: z.string().optional(), pgid: z.int().optional(), until: z.number().optional() }),
  z.object({ host: z.string(), event: z.literal('done'), outputTail: z.string() }),
  z.object({ host: z.string(), event: z.literal('failed'), exitCode: z.int().optional(), outputTail: z.string().optional() }),
]);

function parseEntry(line: string): JournalEntry | undefined {
  try {
    const parsed = Entry.safeParse(JSON.parse(line));
    return parsed.success ? (parsed.data as JournalEntry) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The journal's state. A line that is not an entry (cut off by a crash or a full disk, or corrupted) is skipped and
 * `warn` is told: that host's command did not get to succeed as far as the journal knows.
 */
export function readJournal(file: string, warn: (message: string) => void = () => {}): JournalState {
  const state: JournalState = { done: new Map(), running: new Map(), failed: new Map() };
  if (!existsSync(file)) return state;
  const lines = readFileSync(file, 'utf8').split('\n');
  for (const [index, line] of lines.entries()) {
    if (!line) continue;
    const entry = parseEntry(line);
    if (!entry) {
      warn(`journal ${file}: line ${index + 1} is not a journal entry, skipped: ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    if (entry.event === 'done') state.done.set(entry.host, entry.outputTail);
    if (entry.event === 'failed') {
      const times = (state.failed.get(entry.host)?.times ?? 0) + 1;
      state.failed.set(entry.host, { times, exitCode: entry.exitCode ?? -1, outputTail: entry.outputTail ?? '' });
    }
    if (entry.event === 'start' && !state.done.has(entry.host)) {
      const { host: _host, event: _event, ...runner } = entry;
      state.running.set(entry.host, runner);
    } else state.running.delete(entry.host);
  }
  for (const host of state.done.keys()) state.failed.delete(host);
  for (const [host, runner] of state.running) if (!stillRunning(runner)) state.running.delete(host);
  return state;
}

/** Waits until no command of this batch is still running in another (orphaned) spawner, or its process group. */
export async function settledJournal(file: string, options: { pollMs?: number; signal?: AbortSignal; warn?: (message: string) => void } = {}): Promise<JournalState> {
  let warned = false;
  // Told once per wait, not once per poll.
  const warn = (message: string) => {
    if (!warned) options.warn?.(message);
    warned = true;
  };
  for (;;) {
    const state = readJournal(file, warn);
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
