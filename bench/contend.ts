/**
 * `--contend N`: N CPU-bound processes competing with the run for the whole invocation, so a short heartbeat
 * timeout is tried on a loaded machine (issue 18: no false heartbeat timeouts with two of them on 2 cores).
 */
import { spawn } from 'node:child_process';
import { stopProcess, track } from './cleanup';

/** What each contender runs: a busy loop that never yields, at the default priority, like the run's own processes. */
export const CONTENDER_COMMAND = "node -e 'for(;;){}'";

/** Starts `count` busy loops; the returned function stops them (cleanupAll does too, on failure or Ctrl-C). */
export function startContenders(count: number): () => Promise<void> {
  const children = Array.from({ length: count }, () => track(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' })));
  return async () => {
    await Promise.all(children.map((child) => stopProcess(child, 1_000)));
  };
}
