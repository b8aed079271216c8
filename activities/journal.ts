/**
 * The journal of a batch on this machine: the spawner appends a line when a host's command starts and one when it
 * ends (done or failed), before the worker hears of it. Heartbeats reach the server at most once a second, so after `kill -9` of a
 * worker they can miss the last hosts to finish; the journal does not. A retry of the batch on this machine skips
 * every host it shows done, and waits for commands a killed worker's spawner is still finishing.
 */
import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { lock } from 'proper-lockfile';
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
 * Reads a journal as it grows: each refresh parses only the lines appended since the last, so an attempt can look
 * again before each host it starts at no more than the cost of the new lines. A line that is not an entry (cut off
 * by a crash or a full disk, or corrupted) is skipped and `warn` is told: as far as the journal knows, that host's
 * command did not get to succeed.
 */
export class JournalReader {
  /** As journaled: `running` still lists starts whose spawner may be gone (see `state()`). */
  private readonly raw: JournalState = { done: new Map(), running: new Map(), failed: new Map() };
  private offset = 0;
  private lineNo = 0;
  private partial = '';

  constructor(
    private readonly file: string,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /** The state with only the commands that may still run counted as running. */
  state(): JournalState {
    this.refresh();
    const running = new Map([...this.raw.running].filter(([, runner]) => stillRunning(runner)));
    return { done: new Map(this.raw.done), running, failed: new Map([...this.raw.failed].filter(([host]) => !this.raw.done.has(host))) };
  }

  /** One host's state: cheaper than `state()` for a batch of many hosts. */
  host(host: string): { done?: string; running: boolean; failed?: JournaledFailure } {
    this.refresh();
    const done = this.raw.done.get(host);
    const runner = this.raw.running.get(host);
    const failed = done === undefined ? this.raw.failed.get(host) : undefined;
    return { ...(done !== undefined ? { done } : {}), running: runner !== undefined && stillRunning(runner), ...(failed ? { failed } : {}) };
  }

  private refresh(): void {
    let text: string;
    try {
      const fd = openSync(this.file, 'r');
      try {
        const size = fstatSync(fd).size;
        const buffer = Buffer.alloc(Math.max(0, size - this.offset));
        const read = buffer.length > 0 ? readSync(fd, buffer, 0, buffer.length, this.offset) : 0;
        this.offset += read;
        text = this.partial + buffer.subarray(0, read).toString('utf8');
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const lines = text.split('\n');
    // The last piece has no line end yet: a write under way, or one cut off (read again with what follows).
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.apply(line);
  }

  private apply(line: string): void {
    this.lineNo++;
    if (!line) return;
    const entry = parseEntry(line);
    if (!entry) {
      this.warn(`journal ${this.file}: line ${this.lineNo} is not a journal entry, skipped: ${JSON.stringify(line.slice(0, 80))}`);
      return;
    }
    const state = this.raw;
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

  /** A last line without its line end, once no writer will finish it: skipped with a warning like any other. */
  flushPartial(): void {
    if (this.partial) this.apply(this.partial);
    this.partial = '';
  }
}

/** The journal's state, read once (see JournalReader). */
export function readJournal(file: string, warn: (message: string) => void = () => {}): JournalState {
  const reader = new JournalReader(file, warn);
  reader.state();
  reader.flushPartial();
  return reader.state();
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

/** A claim not refreshed for this long belongs to an attempt whose worker is gone (proper-lockfile's minimum). */
const CLAIM_STALE_MS = 5_000;
const CLAIM_POLL_MS = 100;

export interface BatchClaim {
  /** Aborts if another attempt took the claim (this one's refresh stalled past the stale time): start no more hosts. */
  lost: AbortSignal;
  /**
   * Whether this attempt still holds the claim, asked right before each host starts: the owner file names the
   * attempt that took the claim last, so one that took it over is seen at once, not at proper-lockfile's next
   * refresh (up to half the stale time later). A claim found lost aborts `lost`.
   */
  held(): boolean;
  release(): Promise<void>;
}

/**
 * Claims a batch on this machine for one attempt, and waits while another attempt of the same batch holds it: two
 * attempts that overlap (the server gave up on one after a heartbeat timeout, but its worker goes on) never start one
 * host together. The waiting attempt then reads the journal, which shows what the other did. One claim per attempt,
 * not per host: a host's claim cost the worker about 1 ms of CPU per host-step (docs/benchmarks.md). The claim lives
 * while the attempt that holds it does (proper-lockfile refreshes it); one left by a killed worker goes stale within
 * 5 s, and what its spawner may still run is in the journal.
 */
export async function claimBatch(journal: string, options: { signal: AbortSignal; warn: (message: string) => void }): Promise<BatchClaim> {
  mkdirSync(dirname(journal), { recursive: true });
  const lost = new AbortController();
  const onCompromised = (error: Error) => {
    options.warn(`the claim of batch journal ${journal} was lost: ${error.message}`);
    lost.abort(error);
  };
  for (;;) {
    options.signal.throwIfAborted();
    try {
      // proper-lockfile's lock is the directory `${journal}.claim.lock`; the journal itself need not exist yet.
      const release = await lock(`${journal}.claim`, { realpath: false, stale: CLAIM_STALE_MS, onCompromised });
      return { lost: lost.signal, held: ownership(`${journal}.claim.owner`, lost), release: () => release().catch((error: Error) => options.warn(`cannot release the claim of ${journal}: ${error.message}`)) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
      await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
    }
  }
}

/** Writes this attempt's token as the claim's owner; the check reads it back (a few microseconds per host). */
function ownership(ownerFile: string, lost: AbortController): () => boolean {
  const token = randomUUID();
  writeFileSync(ownerFile, token);
  return () => {
    if (lost.signal.aborted) return false;
    let owner: string | undefined;
    try {
      owner = readFileSync(ownerFile, 'utf8');
    } catch {
      // Unreadable (a full or failing disk): proper-lockfile's refresh still tells a lost claim.
      return true;
    }
    if (owner !== token) lost.abort(new Error('another attempt of this batch took the claim over'));
    return !lost.signal.aborted;
  };
}

export function removeJournal(file: string): void {
  rmSync(file, { force: true });
  rmSync(`${file}.claim.owner`, { force: true });
  // Journals of older workers kept a claim per host in this directory.
  rmSync(`${file}.claims`, { recursive: true, force: true });
}

/** Journals of batches that never finished (a run abandoned mid-batch) are dropped after a week. */
export function pruneJournals(dir: string, maxAgeMs = 7 * 86_400_000): void {
  mkdirSync(dir, { recursive: true });
  const cutoff = Date.now() - maxAgeMs;
  for (const name of readdirSync(dir)) {
    const file = join(dir, name);
    if (statSync(file).mtimeMs < cutoff) rmSync(file, { recursive: true, force: true });
  }
}
