/**
 * `npm run bench -- --cli`: how long each `cutover` command takes from process start to exit, side by side with
 * `node -e 0` and the `temporal` CLI against the same dev server, and how long a worker process takes from its start
 * until the server lists it polling, and what it holds then. Each is measured with the build (.cutover/build), with
 * the sources through tsx (CUTOVER_NO_BUILD=1), and, with --base DIR, from another checkout (e.g. a worktree at
 * main), all in one invocation, interleaved round by round so the machine's load falls on every column alike.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { hostname } from 'node:os';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { PROJECT_ROOT } from '../projectRoot';
import { PhaseAttribute, WORKFLOW_TYPE } from '../workflows/messages';
import { removeTempDir, tempDir } from './cleanup';
import { type CutoverStack, startCutoverStack } from './cutover';
import { benchPlan } from './plan';
import { descendants, memoryOf } from './procs';

export interface CliBenchOptions {
  binary: string;
  /** Timed runs of each command (the median is reported). */
  runs: number;
  /** Another checkout whose bin/cutover.js is measured beside this one (its own node_modules). */
  base?: string;
}

/** One way of running `cutover`: which bin/cutover.js, with which environment. */
interface Variant {
  name: string;
  bin: string;
  /** The checkout it belongs to: its own example plan is the one it validates. */
  root: string;
  env: NodeJS.ProcessEnv;
}

export interface CliRow {
  what: string;
  /** Median wall milliseconds per variant name (or "reference" for the rows that are not cutover). */
  medianMs: Record<string, number>;
  samples: Record<string, number[]>;
}

export interface WorkerStart {
  variant: string;
  /** Process start to both the workflow and the activity task queue listing this process as a poller. */
  startMs: number[];
  /** VmRSS of the worker process alone, 3 s after it polled; and of its descendants (the spawners). */
  idleRssMiB: number[];
  spawnersRssMiB: number[];
  /** VmRSS of the worker process alone once it has stayed idle for SETTLED_MS after polling (the first run only). */
  settledRssMiB: number[];
}

/**
 * How long an idle worker is left before its memory is read again: V8 gives back the garbage of the worker's start
 * only once the process has been idle a while (about 138 MiB 20 s after the start, against 183 MiB at 3 s).
 */
const SETTLED_MS = 30_000;

export interface CliBenchResult {
  runs: number;
  rows: CliRow[];
  workers: WorkerStart[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** Wall time of one process from spawn to exit; fails on a non-zero exit, with its stderr. */
function timeProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const ms = performance.now() - started;
      if (code === 0) resolve(ms);
      else reject(new Error(`${file} ${args.join(' ')} exited with ${code}:\n${stderr}`));
    });
  });
}

async function untilAtGate(handle: WorkflowHandle): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await handle.describe()).typedSearchAttributes.get(PhaseAttribute) !== 'awaiting-approval') {
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} did not reach its beforeOffline gate within 60 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A 2-host run of no-op steps, waiting at beforeOffline: what `status` reads and `approve` decides. */
async function runAtGate(stack: CutoverStack, fleet: string): Promise<WorkflowHandle> {
  const plan = { ...benchPlan({ hosts: 2, parallel: 10, steps: 'noop' }), fleet };
  const handle = await stack.client.workflow.start(WORKFLOW_TYPE, { taskQueue: stack.taskQueue, workflowId: `cutover-${fleet}`, args: [plan] });
  await untilAtGate(handle);
  return handle;
}

async function pollersOf(client: Client, taskQueue: string, pid: number): Promise<boolean> {
  const identity = `${pid}@${hostname()}`;
  const listed = await Promise.all(
    [1, 2].map(async (taskQueueType) => {
      const response = await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType });
      return (response.pollers ?? []).some((poller) => poller.identity === identity);
    }),
  );
  return listed.every(Boolean);
}

/** Starts `cutover worker` on a fresh task queue, times it until it polls, reads its memory when idle, stops it. */
async function timeWorkerStart(stack: CutoverStack, variant: Variant, dir: string, round: number): Promise<{ startMs: number; idleRssMiB: number; spawnersRssMiB: number; settledRssMiB?: number }> {
  const taskQueue = `cli-bench-worker-${variant.name.replace(/\W+/g, '-')}-${round}`;
  const env = { ...variant.env, CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: join(dir, 'lab'), CUTOVER_STATE_DIR: dir };
  const started = performance.now();
  const child = spawn(process.execPath, [variant.bin, 'worker'], { env, stdio: 'ignore' });
  try {
    const deadline = Date.now() + 120_000;
    while (!(await pollersOf(stack.client, taskQueue, child.pid as number))) {
      if (child.exitCode !== null) throw new Error(`the ${variant.name} worker exited with ${child.exitCode} before polling`);
      if (Date.now() > deadline) throw new Error(`the ${variant.name} worker did not poll within 120 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const startMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, 3_000));
    const mib = (pid: number) => (memoryOf(pid)?.rssKiB ?? 0) / 1024;
    const idle = { startMs, idleRssMiB: mib(child.pid as number), spawnersRssMiB: descendants(child.pid as number).filter((pid) => pid !== child.pid).reduce((sum, pid) => sum + mib(pid), 0) };
    if (round > 0) return idle;
    await new Promise((r) => setTimeout(r, SETTLED_MS - 3_000));
    return { ...idle, settledRssMiB: mib(child.pid as number) };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  }
}

function variants(options: CliBenchOptions, address: string): Variant[] {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default' };
  delete env.TEMPORAL_PROFILE;
  delete env.CUTOVER_NO_BUILD;
  const bin = join(PROJECT_ROOT, 'bin', 'cutover.js');
  return [
    { name: 'compiled', bin, root: PROJECT_ROOT, env },
    { name: 'sources through tsx', bin, root: PROJECT_ROOT, env: { ...env, CUTOVER_NO_BUILD: '1' } },
    ...(options.base ? [{ name: `base ${options.base}`, bin: join(options.base, 'bin', 'cutover.js'), root: options.base, env }] : []),
  ];
}

export async function runCliBench(options: CliBenchOptions, log: (line: string) => void): Promise<CliBenchResult> {
  const dir = tempDir('cutover-bench-cli-');
  const stack = await startCutoverStack({ binary: options.binary, dir, labDir: join(dir, 'lab'), taskQueue: 'cli-bench' });
  try {
    const all = variants(options, stack.address);
    // Each checkout validates its own example: an older one need not know a newer plan's fields.
    const plan = (variant: number) => join((all[variant] as Variant).root, 'examples', 'appv-lab.yaml');
    const statusRun = await runAtGate(stack, 'cli-status');
    const temporal = (args: string[]) => ({ file: options.binary, args: [...args, '--address', stack.address, '--namespace', 'default'], env: process.env });
    const reference: { what: string; file: string; args: string[]; env: NodeJS.ProcessEnv }[] = [
      { what: '`node -e 0`', file: process.execPath, args: ['-e', '0'], env: process.env },
      { what: '`temporal workflow describe` (the run at the gate)', ...temporal(['workflow', 'describe', '--workflow-id', statusRun.workflowId]) },
      { what: '`temporal workflow list --limit 1`', ...temporal(['workflow', 'list', '--limit', '1']) },
    ];
    const commands: { what: string; args: (round: number, variant: number) => Promise<string[]> }[] = [
      { what: '`cutover validate examples/appv-lab.yaml`', args: async (_round, variant) => ['validate', plan(variant)] },
      { what: '`cutover plan examples/appv-lab.yaml`', args: async (_round, variant) => ['plan', plan(variant)] },
      { what: '`cutover status` (a run at its gate)', args: async () => ['status', statusRun.workflowId] },
      {
        what: '`cutover approve --as bench` (a run at its gate)',
        // A fresh run at its gate for every approval, started before the clock (and finished after it).
        args: async (round, variant) => ['approve', (await runAtGate(stack, `cli-approve-${round}-${variant}`)).workflowId, '--as', 'bench'],
      },
    ];
    const samples = new Map<string, number[]>();
    const add = (key: string, ms: number) => samples.set(key, [...(samples.get(key) ?? []), ms]);
    for (let round = 0; round < options.runs; round++) {
      log(`cli: round ${round + 1} of ${options.runs}`);
      for (const ref of reference) add(`${ref.what}\treference`, await timeProcess(ref.file, ref.args, ref.env));
      for (const command of commands) {
        for (const [index, variant] of all.entries()) {
          const args = await command.args(round, index);
          add(`${command.what}\t${variant.name}`, await timeProcess(process.execPath, [variant.bin, ...args], variant.env));
          if (args[0] === 'approve') await stack.client.workflow.getHandle(args[1] as string).result();
        }
      }
    }
    const rows = [...reference, ...commands].map(({ what }) => {
      const mine = [...samples.entries()].filter(([key]) => key.startsWith(`${what}\t`)).map(([key, values]) => [key.split('\t')[1] as string, values] as const);
      return { what, samples: Object.fromEntries(mine), medianMs: Object.fromEntries(mine.map(([name, values]) => [name, median(values)])) };
    });
    const workers: WorkerStart[] = all.map((variant) => ({ variant: variant.name, startMs: [], idleRssMiB: [], spawnersRssMiB: [], settledRssMiB: [] }));
    for (let round = 0; round < options.runs; round++) {
      for (const [index, variant] of all.entries()) {
        log(`cli: worker start ${round + 1}, ${variant.name}`);
        const measured = await timeWorkerStart(stack, variant, dir, round);
        const into = workers[index] as WorkerStart;
        into.startMs.push(measured.startMs);
        into.idleRssMiB.push(measured.idleRssMiB);
        into.spawnersRssMiB.push(measured.spawnersRssMiB);
        if (measured.settledRssMiB !== undefined) into.settledRssMiB.push(measured.settledRssMiB);
      }
    }
    return { runs: options.runs, rows, workers };
  } finally {
    await stack.stop();
    removeTempDir(dir);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function formatCliBench(result: CliBenchResult): string {
  const names = [...new Set(result.workers.map((w) => w.variant))];
  const cell = (row: CliRow, name: string) => (row.medianMs[name] === undefined ? '' : `${seconds(row.medianMs[name])} (${seconds(Math.min(...(row.samples[name] ?? [])))}–${seconds(Math.max(...(row.samples[name] ?? [])))})`);
  const lines = [
    `### CLI: process start to exit, median of ${result.runs} (fastest–slowest)`,
    '',
    `| command | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---:|').join('')}`,
    ...result.rows.map((row) => (row.medianMs.reference !== undefined ? `| ${row.what} | ${cell(row, 'reference')} |${names.slice(1).map(() => ' |').join('')}` : `| ${row.what} | ${names.map((name) => cell(row, name)).join(' | ')} |`)),
    '',
    `### Worker: \`cutover worker\` from process start to polling (both task queues listed by the server), median of ${result.runs}; memory 3 s later, and ${SETTLED_MS / 1000} s later in the first run`,
    '',
    `| worker | start to polling (fastest–slowest) | idle RSS, worker alone | after ${SETTLED_MS / 1000} s idle | spawners |`,
    '|---|---:|---:|---:|---:|',
    ...result.workers.map((w) => `| ${w.variant} | ${seconds(median(w.startMs))} (${seconds(Math.min(...w.startMs))}–${seconds(Math.max(...w.startMs))}) | ${median(w.idleRssMiB).toFixed(0)} MiB | ${w.settledRssMiB.map((v) => `${v.toFixed(0)} MiB`).join(', ')} | ${median(w.spawnersRssMiB).toFixed(0)} MiB |`),
  ];
  return lines.join('\n');
}
