/**
 * One database task at a time per database, on this machine: across attempts of one task, across tasks of one run
 * and across runs. A task holds the database's lock while it runs, and first waits for whatever an earlier holder
 * left running: a worker killed with `kill -9` loses its lock (it goes stale), but its spawner goes on with the
 * command and journals its end in the database's journal, which the next holder reads before it decides.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';
import type { Transport } from '../core/plan';
import { type JournalState, settledJournal } from './journal';

/** A lock not refreshed for this long belongs to a process that is gone (proper-lockfile refreshes it every half). */
const STALE_MS = 10_000;
const POLL_MS = 250;

/**
 * The database's journal: one per database host as the plan reaches it (its id and transport). Every task of the
 * database journals there, each under its activity's key.
 */
export function databaseJournalFile(dir: string, task: { host: string; transport: Transport }): string {
  const key = createHash('sha256').update(`${task.host}\n${JSON.stringify(task.transport)}`).digest('hex').slice(0, 32);
  return join(dir, `db-${key}.jsonl`);
}

/** What the journal files one activity's command under: the same for every attempt of it. */
export function activityKey(activity: { workflowId: string; runId: string; activityId: string }): string {
  return `${activity.workflowId}/${activity.runId}/${activity.activityId}`;
}

export interface HeldDatabase {
  /** The journal once nothing an earlier holder started runs any more. */
  settled: JournalState;
  release(): Promise<void>;
}

/**
 * Takes the database's lock, waiting while another live task holds it, then waits for every command the journal
 * shows under way (an orphaned spawner's, or its process group). Gives up when `signal` aborts.
 */
export async function holdDatabase(file: string, options: { signal: AbortSignal; warn: (message: string) => void }): Promise<HeldDatabase> {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, '', { flag: 'a' });
  let release: (() => Promise<void>) | undefined;
  while (!release) {
    options.signal.throwIfAborted();
    try {
      release = await lock(file, {
        stale: STALE_MS,
        realpath: false,
        // A lock refresh that failed (a blocked event loop, a full disk) must not throw from a timer: the command
        // under way goes on, and the journal still tells the next holder.
        onCompromised: (error) => options.warn(`the lock of ${file} was lost: ${error.message}`),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
  const settled = await settledJournal(file, { signal: options.signal, warn: options.warn });
  const held = release;
  return { settled, release: () => held().catch((error: Error) => options.warn(`cannot release ${file}: ${error.message}`)) };
}
