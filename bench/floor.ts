/**
 * The bare floor: the run's commands with nothing around them. One `xargs -P <parallel>` per step over all its
 * hosts (a database task is an xargs of one line), in the workflow's order, each command through /bin/sh -c as
 * Cutover's local transport and Ansible's shell module run it.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { track } from './cleanup';
import type { Stage } from './plan';

export interface FloorResult {
  wallMs: number;
  stages: { step: string; commands: number; ms: number }[];
}

function runXargs(lines: string[], parallel: number, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = track(spawn('xargs', ['-P', String(parallel), '-d', '\n', '-n', '1', '/bin/sh', '-c'], { env, stdio: ['pipe', 'ignore', 'pipe'], detached: true }), {
      group: true,
    });
    let stderr = '';
    child.stderr?.on('data', (data: Buffer) => (stderr = (stderr + data.toString()).slice(-2_000)));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`xargs exited ${signal ?? code} (a command failed):\n${stderr.trim()}`));
    });
    child.stdin?.end(lines.join('\n') + '\n');
  });
}

export async function runFloor(list: Stage[], parallel: number, env: NodeJS.ProcessEnv): Promise<FloorResult> {
  const started = performance.now();
  const stages: FloorResult['stages'] = [];
  for (const stage of list) {
    const t = performance.now();
    await runXargs(
      stage.commands.map((c) => c.command),
      parallel,
      env,
    );
    stages.push({ step: `${stage.step}${stage.wave !== undefined ? ` (wave ${stage.wave})` : ''}`, commands: stage.commands.length, ms: performance.now() - t });
  }
  return { wallMs: performance.now() - started, stages };
}
