/**
 * One host count, side by side: the floor, Cutover and Ansible, one after another, each on a fresh lab fleet
 * (the same directory, so the same CUTOVER_LAB_DIR) with the same commands and the same parallelism.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { labUp } from '../lab/lab';
import { runAnsible } from './ansible';
import { removeTempDir, tempDir } from './cleanup';
import { startCutoverStack, timeCutover } from './cutover';
import { saveHistories } from './histories';
import { runFloor } from './floor';
import { runSpawners } from './spawners';
import { spawnerProgram } from '../transport/spawner';
import { checkLab, labEnv } from './lab';
import { LAB_PROFILE, benchPlan, hostStepCount, stages, type StepsKind } from './plan';
import type { HostCountResult } from './report';

/**
 * `spawn-in-worker`: Cutover again, its worker spawning every command itself instead of through its spawners.
 * `cutover-encrypted`: Cutover again, with every payload encrypted (CUTOVER_CODEC_KEYS).
 * `cutover-base`: with --base, the `cutover` leg again by another checkout's worker, right after it.
 * `spawners`: the floor's commands through Cutover's spawner processes alone (bench/spawners.ts), the program a
 * worker would run (the Go spawner where it is built); `spawners-node`: the same through the Node spawner.
 */
export type Leg = 'cutover' | 'cutover-base' | 'cutover-encrypted' | 'spawn-in-worker' | 'ansible' | 'floor' | 'spawners' | 'spawners-node';

export interface CompareOptions {
  binary: string;
  hosts: number;
  parallel: number;
  steps: StepsKind;
  batchSize?: number;
  only: Leg[];
  /** Ansible is not run at or above this many hosts (the issue: 10,000 is Cutover and the floor only). */
  ansibleMaxHosts: number;
  /** Also save every workflow history as JSON in the (kept) temp dir. */
  keep?: boolean;
  /** Write V8 CPU profiles of each leg's worker process (its main thread and its workflow thread) here. */
  cpuProfileDir?: string;
  /** Another checkout (its own node_modules and build): its worker runs the same run right after this one's. */
  base?: string;
}

export async function compareAt(options: CompareOptions, log: (line: string) => void): Promise<HostCountResult> {
  const plan = benchPlan({ hosts: options.hosts, parallel: options.parallel, steps: options.steps, ...(options.batchSize ? { batchSize: options.batchSize } : {}) });
  const list = stages(plan);
  const dir = tempDir(`cutover-bench-${options.hosts}-`);
  const labDir = join(dir, 'lab');
  const env = labEnv(labDir);
  const freshLab = () => labUp(labDir, { profile: LAB_PROFILE.name, hosts: options.hosts });
  const afterwards = (who: string) => {
    if (options.steps !== 'lab') return;
    const check = checkLab(labDir, plan.target);
    log(`${who}: lab ${check}`);
    if (!check.startsWith('ok')) throw new Error(`${who} left the lab ${check}`);
  };
  const result: HostCountResult = {
    hosts: options.hosts,
    parallel: options.parallel,
    steps: options.steps,
    batchSize: plan.execution.batchSize,
    hostSteps: hostStepCount(plan),
    databaseCommands: list.filter((s) => s.step.startsWith('db ')).length,
    loadBefore: {},
    loadAfter: {},
  };
  try {
    if (options.only.includes('floor')) {
      freshLab();
      result.loadBefore.floor = loadavg()[0] as number;
      log(`${options.hosts} hosts: floor (xargs -P ${options.parallel}, ${list.length} steps)`);
      result.floor = await runFloor(list, options.parallel, env);
      result.loadAfter.floor = loadavg()[0] as number;
      afterwards('floor');
    }
    for (const leg of ['spawners', 'spawners-node'] as const) {
      if (!options.only.includes(leg)) continue;
      const program = leg === 'spawners-node' ? ({ kind: 'node' } as const) : spawnerProgram();
      freshLab();
      result.loadBefore[leg] = loadavg()[0] as number;
      log(`${options.hosts} hosts: the ${program.kind === 'go' ? 'Go' : 'Node'} spawners alone (${options.parallel} at a time, ${list.length} steps)`);
      const spawners = await runSpawners(list, options.parallel, { PATH: env.PATH ?? '', CUTOVER_LAB_DIR: labDir }, dir, program);
      if (leg === 'spawners') result.spawners = { ...spawners, program: program.kind };
      else result.spawnersNode = spawners;
      result.loadAfter[leg] = loadavg()[0] as number;
      afterwards(`the ${program.kind === 'go' ? 'Go' : 'Node'} spawners`);
    }
    const cutoverLeg = async (leg: 'cutover' | 'cutover-base' | 'cutover-encrypted' | 'spawn-in-worker') => {
      const spawnFrom = leg === 'spawn-in-worker' ? 'worker' : 'spawner';
      const encrypted = leg === 'cutover-encrypted';
      const checkout = leg === 'cutover-base' ? options.base : undefined;
      freshLab();
      log(`${options.hosts} hosts: starting a dev server and a worker process${checkout ? ` of ${checkout}` : ''} (spawning from its ${spawnFrom === 'worker' ? 'own process' : 'spawners'}${encrypted ? ', payloads encrypted' : ''})`);
      const workerNodeArgs = options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [];
      const stack = await startCutoverStack({ binary: options.binary, dir, labDir, taskQueue: `bench-${options.hosts}-${leg}`, spawnFrom, encrypted, workerNodeArgs, ...(checkout ? { checkout } : {}) });
      try {
        log(`${options.hosts} hosts: Cutover${checkout ? ` at ${checkout}` : ''} (worker ${stack.worker.pid} polling; timing starts)`);
        result.loadBefore[leg] = loadavg()[0] as number;
        const { result: cutover, runs } = await timeCutover(stack, plan);
        result.loadAfter[leg] = loadavg()[0] as number;
        if (options.keep && leg === 'cutover') saveHistories(runs, join(dir, 'histories'));
        return cutover;
      } finally {
        await stack.stop();
        afterwards('Cutover');
      }
    };
    if (options.only.includes('cutover')) result.cutover = await cutoverLeg('cutover');
    if (options.only.includes('cutover') && options.base) result.cutoverBase = await cutoverLeg('cutover-base');
    if (options.only.includes('cutover-encrypted')) result.cutoverEncrypted = await cutoverLeg('cutover-encrypted');
    if (options.only.includes('spawn-in-worker')) {
      if (options.hosts >= options.ansibleMaxHosts) result.spawnInWorkerSkipped = `skipped at ${options.hosts} hosts`;
      else result.cutoverSpawningInWorker = await cutoverLeg('spawn-in-worker');
    }
    if (options.only.includes('ansible')) {
      if (options.hosts >= options.ansibleMaxHosts) {
        result.ansibleSkipped = `skipped at ${options.hosts} hosts`;
      } else {
        freshLab();
        result.loadBefore.ansible = loadavg()[0] as number;
        log(`${options.hosts} hosts: Ansible (forks ${options.parallel})`);
        result.ansible = await runAnsible(plan, list, options.parallel, env, join(dir, 'ansible'));
        result.loadAfter.ansible = loadavg()[0] as number;
        afterwards('Ansible');
      }
    }
  } finally {
    removeTempDir(dir);
  }
  return result;
}
