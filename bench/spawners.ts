/**
 * The spawners alone: the run's commands through this checkout's spawner processes (transport/spawner.ts), the Go
 * spawner's or the Node spawner's, as the
 * floor runs them through xargs: stage by stage, `parallel` at a time, each journaled as a batch's command is, and
 * nothing else (no Temporal, no activity, no workflow). It tells what the spawn path costs by itself, between the
 * floor and the whole run.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SpawnerPool, type SpawnerProgram } from '../transport/spawner';
import type { FloorResult } from './floor';
import type { Stage } from './plan';

/** The command's own timeout: the bench's commands end in milliseconds. */
const COMMAND_TIMEOUT_MS = 60_000;

async function runStage(pool: SpawnerPool, stage: Stage, parallel: number, env: Record<string, string>, journalFile: string): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    for (let i = next++; i < stage.commands.length && !failed; i = next++) {
      const { host, command } = stage.commands[i] as Stage['commands'][number];
      const result = await pool.run({ command, host, env, timeoutMs: COMMAND_TIMEOUT_MS, journalFile });
      if (result.exitCode !== 0) {
        failed = true;
        throw new Error(`${host} ${stage.step}: \`${command}\` exited ${result.exitCode}: ${result.outputTail.trim().slice(-500)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, stage.commands.length) }, lane));
}

export async function runSpawners(list: Stage[], parallel: number, env: Record<string, string>, dir: string, program: SpawnerProgram): Promise<FloorResult> {
  const pool = new SpawnerPool(undefined, program);
  try {
    // Started and answering before the clock starts, as a worker's are when it polls: one command on each.
    await Promise.all(Array.from({ length: pool.size }, () => pool.run({ command: 'true', host: 'warm-up', env, timeoutMs: COMMAND_TIMEOUT_MS })));
    const started = performance.now();
    const stages: FloorResult['stages'] = [];
    for (const [i, stage] of list.entries()) {
      const t = performance.now();
      await runStage(pool, stage, parallel, env, join(dir, 'journals', `stage-${i}.jsonl`));
      stages.push({ step: stage.step, commands: stage.commands.length, ms: performance.now() - t });
    }
    return { wallMs: performance.now() - started, stages };
  } finally {
    // A spawner never keeps its parent alive (transport/spawner.ts): this timer does, until they have exited.
    const keepAlive = setInterval(() => {}, 1_000);
    await pool.close().finally(() => clearInterval(keepAlive));
  }
}
