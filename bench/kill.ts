/**
 * kill -9 of the worker in the middle of a batch: a lab fleet whose installs are slowed by the lab's delay fault,
 * the worker process killed once the remaining hosts' install batch is part-way, a new worker process started at
 * once. The lab's operation log says how long the run stood still and whether completed host-steps ran again.
 * With `signal: 'SIGTERM'` the worker is stopped gracefully instead (what `systemctl stop` does), which hands the
 * batch over at once.
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { WorkflowHandle } from '@temporalio/client';
import { type LabOp, labFault, labOps, labUp } from '../lab/lab';
import { startCutoverStack, timeCutover } from './cutover';
import { type HeartbeatTimeout, activitiesSpanning, heartbeatTimeouts } from './histories';
import { benchPlan, LAB_PROFILE } from './plan';
import { cmdline, descendants, processesWithEnv } from './procs';
import { checkLab } from './lab';

export interface KillOptions {
  binary: string;
  dir: string;
  hosts: number;
  parallel: number;
  batchSize?: number;
  delaySeconds: number;
  /** Kill once this share of the remaining hosts' installs is done. */
  killAt: number;
  /** SIGKILL (a crash) or SIGTERM (a graceful stop). */
  signal: 'SIGKILL' | 'SIGTERM';
  /**
   * Start the second worker once the batch is under way on the first, and signal the first only when the second
   * polls: a standby, as with two workers on a queue, so the resume is not the new worker's start-up.
   */
  standby?: boolean;
}

interface Duplicate {
  host: string;
  op: string;
  oks: number;
  firstOkBeforeKillMs: number;
}

export interface KillResult {
  signal: KillOptions['signal'];
  standby: boolean;
  hosts: number;
  parallel: number;
  delaySeconds: number;
  restHosts: number;
  installsDoneAtKill: number;
  killAfterStartMs: number;
  inFlightOps: number;
  inFlightProcesses: number;
  newWorkerReadyMs: number;
  /** When the signalled worker process exited (after SIGTERM, once its spawners had finished their commands). */
  oldWorkerExitedMs?: number;
  /** The new worker's first labhost process, seen in its process tree. */
  firstSpawn?: { afterKillMs: number; command: string };
  firstNewOp?: { host: string; op: string; result: string; afterKillMs: number };
  spanning: ReturnType<typeof activitiesSpanning>;
  /** Heartbeat timeouts of the activities under way at the kill, after it: the ones the kill causes. */
  heartbeatTimeoutsOfKill: HeartbeatTimeout[];
  /** Every other heartbeat timeout: false ones (a live worker's activity given up on). */
  otherHeartbeatTimeouts: HeartbeatTimeout[];
  outcome: string;
  wallMs: number;
  labCheck: string;
  duplicatesOfCompleted: Duplicate[];
  duplicatesOfInFlight: Duplicate[];
  otherDuplicates: Duplicate[];
}

const RESULTS = new Set(['ok', 'refused', 'failed']);

/** labhost command lines of these processes (the shell and labhost itself name the same command). */
function labhostCommands(pids: number[]): string[] {
  return pids
    .map(cmdline)
    .map((line) => /labhost \S+ .+$/.exec(line)?.[0])
    .filter((line): line is string => line !== undefined);
}
const key = (op: LabOp) => `${op.host}\t${op.op}`;

export async function runKill(options: KillOptions, log: (line: string) => void): Promise<KillResult> {
  const plan = benchPlan({ hosts: options.hosts, parallel: options.parallel, steps: 'lab', ...(options.batchSize ? { batchSize: options.batchSize } : {}) });
  const labDir = join(options.dir, 'lab');
  const { hosts } = labUp(labDir, { profile: LAB_PROFILE.name, hosts: options.hosts });
  const rest = hosts.slice(1);
  for (const host of rest) labFault(labDir, host, 'install', { delaySeconds: options.delaySeconds });
  const restSet = new Set(rest);
  const installsDone = () => labOps(labDir).filter((op) => restSet.has(op.host) && op.op.startsWith('install') && op.result === 'ok').length;
  const killWhen = Math.max(1, Math.ceil(rest.length * options.killAt));

  log(`kill: starting a dev server and a worker; ${options.hosts} lab hosts, installs delayed ${options.delaySeconds} s`);
  const stack = await startCutoverStack({ binary: options.binary, dir: options.dir, labDir, taskQueue: 'bench-kill' });
  try {
    let processes: string[] = [];
    let killedAt = 0;
    let killAfterStartMs = 0;
    let newWorkerReadyMs = 0;
    let oldWorkerExitedAt: number | undefined;
    let firstSpawn: { at: number; command: string } | undefined;
    let watch: NodeJS.Timeout | undefined;
    const started = performance.now();
    const deadline = Date.now() + 10 * 60_000;
    const installsReach = async (count: number) => {
      while (installsDone() < count) {
        if (Date.now() > deadline) throw new Error(`the remaining hosts' installs did not reach ${count} within 10 minutes`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const during = async (_handle: WorkflowHandle) => {
      let standby: Promise<ChildProcess> | undefined;
      if (options.standby) {
        // Started once the batch runs on the first worker, so the batch cannot have gone to the standby.
        await installsReach(1);
        log('kill: the batch is under way; starting a standby worker');
        standby = stack.startWorker();
        await standby;
      }
      await installsReach(killWhen);
      const worker = stack.worker;
      // The commands under way, read just before the kill: once killed, their processes leave the worker's tree.
      processes = labhostCommands(descendants(worker.pid as number).slice(1));
      worker.once('exit', () => (oldWorkerExitedAt = Date.now()));
      worker.kill(options.signal);
      killedAt = Date.now();
      killAfterStartMs = performance.now() - started;
      log(`kill: worker ${worker.pid} sent ${options.signal}${standby ? '; a standby worker polls' : '; starting a new worker'}`);
      const starting = standby ?? stack.startWorker();
      // A command forked just before the kill still shows the worker's command line until it execs: look again
      // for this lab's labhost processes, now orphans, a few times over 300 ms (a new node process needs seconds
      // before it can run anything).
      for (let i = 0; i < 4; i++) {
        processes.push(...labhostCommands(processesWithEnv('CUTOVER_LAB_DIR', labDir)));
        await new Promise((r) => setTimeout(r, 100));
      }
      const replacement = await starting;
      newWorkerReadyMs = Date.now() - killedAt;
      log(`kill: new worker polling ${(newWorkerReadyMs / 1000).toFixed(1)} s after the kill; waiting for the run`);
      // The new worker's first host command, seen in its process tree (checked every 20 ms).
      watch = setInterval(() => {
        const command = labhostCommands(descendants(replacement.pid as number).slice(1))[0];
        if (command === undefined) return;
        firstSpawn = { at: Date.now(), command };
        clearInterval(watch);
      }, 20);
    };
    let result: Awaited<ReturnType<typeof timeCutover>>['result'];
    let runs: Awaited<ReturnType<typeof timeCutover>>['runs'];
    try {
      ({ result, runs } = await timeCutover(stack, plan, during));
    } finally {
      clearInterval(watch);
    }
    // Commands the killed worker left running finish within the delay; let them land in ops.log.
    await new Promise((r) => setTimeout(r, options.delaySeconds * 1000 + 1_000));
    const ops = labOps(labDir);
    // labhost stamps each line inside its lock with the system clock, the one Date.now() reads.
    const before = ops.filter((op) => Date.parse(op.time) <= killedAt);
    const after = ops.filter((op) => Date.parse(op.time) > killedAt);

    // In flight at the kill: a labhost command in the worker's tree, or a start logged (the delay fault's line)
    // without a result, unless its result was logged before the kill (a process caught while exiting).
    const resultBefore = new Set(before.filter((op) => RESULTS.has(op.result)).map(key));
    const startedBefore = new Set(before.filter((op) => op.result === 'fault').map(key));
    const fromProcesses = processes.map((line) => (/labhost (\S+) (.+)$/.exec(line) ?? []).slice(1, 3).join('\t'));
    const inFlight = new Set([...fromProcesses, ...startedBefore].filter((k) => !resultBefore.has(k)));
    // Each such command's own lines after the kill: its start (unless logged before), then its result.
    const orphanLinesLeft = new Map([...inFlight].map((k) => [k, startedBefore.has(k) ? 1 : 2]));
    let firstNew: LabOp | undefined;
    for (const op of after) {
      const left = orphanLinesLeft.get(key(op)) ?? 0;
      if (left > 0 && (RESULTS.has(op.result) || (left === 2 && op.result === 'fault'))) {
        orphanLinesLeft.set(key(op), RESULTS.has(op.result) ? 0 : 1);
        continue;
      }
      firstNew ??= op;
    }

    const oks = new Map<string, LabOp[]>();
    for (const op of ops) if (op.result === 'ok') oks.set(key(op), [...(oks.get(key(op)) ?? []), op]);
    const preKill = new Set(before.filter((op) => op.result === 'ok').map(key));
    const duplicatesOfCompleted: Duplicate[] = [];
    const duplicatesOfInFlight: Duplicate[] = [];
    const otherDuplicates: Duplicate[] = [];
    for (const [k, list] of oks) {
      if (list.length < 2) continue;
      const [host = '', op = ''] = k.split('\t');
      const duplicate = { host, op, oks: list.length, firstOkBeforeKillMs: killedAt - Date.parse((list[0] as LabOp).time) };
      if (preKill.has(k)) duplicatesOfCompleted.push(duplicate);
      else if (inFlight.has(k)) duplicatesOfInFlight.push(duplicate);
      else otherDuplicates.push(duplicate);
    }
    duplicatesOfCompleted.sort((a, b) => a.firstOkBeforeKillMs - b.firstOkBeforeKillMs);

    const spanning = activitiesSpanning(runs, killedAt);
    const ofKill = (t: HeartbeatTimeout) => t.atMs >= killedAt && spanning.some((a) => a.workflowId === t.workflowId && a.summary === t.summary && a.closedMs >= t.atMs);
    const timeouts = heartbeatTimeouts(runs);
    return {
      signal: options.signal,
      standby: Boolean(options.standby),
      hosts: options.hosts,
      parallel: options.parallel,
      delaySeconds: options.delaySeconds,
      restHosts: rest.length,
      installsDoneAtKill: before.filter((op) => restSet.has(op.host) && op.op.startsWith('install') && op.result === 'ok').length,
      killAfterStartMs,
      inFlightOps: inFlight.size,
      inFlightProcesses: new Set(fromProcesses).size,
      ...(firstSpawn ? { firstSpawn: { afterKillMs: firstSpawn.at - killedAt, command: firstSpawn.command } } : {}),
      newWorkerReadyMs,
      ...(oldWorkerExitedAt ? { oldWorkerExitedMs: oldWorkerExitedAt - killedAt } : {}),
      ...(firstNew ? { firstNewOp: { host: firstNew.host, op: firstNew.op, result: firstNew.result, afterKillMs: Date.parse(firstNew.time) - killedAt } } : {}),
      spanning,
      heartbeatTimeoutsOfKill: timeouts.filter(ofKill),
      otherHeartbeatTimeouts: timeouts.filter((t) => !ofKill(t)),
      outcome: result.outcome,
      wallMs: result.wallMs,
      labCheck: checkLab(labDir, plan.target),
      duplicatesOfCompleted,
      duplicatesOfInFlight,
      otherDuplicates,
    };
  } finally {
    await stack.stop();
  }
}
