import { runCommand } from './commandRunner.cjs';
import { sharedSpawner } from './spawner';
import type { HostRunner } from './transport';

export interface LocalTransportOptions {
  /** Extra environment for every command (e.g. PATH with the lab's bin, CUTOVER_LAB_DIR). */
  env?: Record<string, string>;
  /**
   * Where commands are spawned from: the process's lean spawner (default), or this process itself, which costs a
   * fork of the whole worker per command (kept so `npm run bench` can measure the difference).
   */
  spawnFrom?: 'spawner' | 'worker';
}

/**
 * Runs commands with /bin/sh on this machine, each in its own process group so a timeout or cancellation kills
 * everything it started (an installer's children included). A command inherits the worker's environment without
 * its Temporal credentials and secrets (commandRunner.cjs, commandEnvironment).
 */
export function createLocalTransport(options: LocalTransportOptions = {}): HostRunner {
  const env = options.env ?? {};
  return {
    async run(host, command, { timeoutMs, signal, onOutput, journalFile, journalKey, journalOutput, withoutEnv }) {
      const journal = journalFile ? { journalFile, ...(journalKey ? { journalKey } : {}), ...(journalOutput === false ? { journalOutput } : {}) } : {};
      const request = { command, host: host.id, env, timeoutMs, ...journal, ...(withoutEnv?.length ? { withoutEnv } : {}) };
      if (options.spawnFrom !== 'worker') {
        return sharedSpawner().run(request, { ...(signal ? { signal } : {}), ...(onOutput ? { onOutput } : {}) });
      }
      const running = runCommand(request, onOutput);
      signal?.addEventListener('abort', running.kill, { once: true });
      if (signal?.aborted) running.kill();
      try {
        return await running.done;
      } finally {
        signal?.removeEventListener('abort', running.kill);
      }
    },
    // The shared spawner outlives any one transport; it lets itself go when idle.
    async close() {},
  };
}
