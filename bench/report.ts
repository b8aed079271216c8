/** The tables `npm run bench` prints (Markdown, so they paste into docs/benchmarks.md), and their footnotes. */
import type { AnsibleResult } from './ansible';
import type { Leg } from './compare';
import type { CutoverResult } from './cutover';
import type { FloorResult } from './floor';
import type { HeartbeatTimeout } from './histories';
import type { KillResult } from './kill';

export interface HostCountResult {
  hosts: number;
  parallel: number;
  steps: string;
  batchSize: number;
  hostSteps: number;
  databaseCommands: number;
  floor?: FloorResult;
  /** The same commands through the spawner processes alone (bench/spawners.ts): the program a worker runs. */
  spawners?: FloorResult & { program?: 'go' | 'node' };
  /** The same through the Node spawner (leg spawners-node). */
  spawnersNode?: FloorResult;
  cutover?: CutoverResult;
  /** The same run by another checkout's worker (--base), right after this one's. */
  cutoverBase?: CutoverResult;
  /** Cutover with every payload encrypted (CUTOVER_CODEC_KEYS, codec/). */
  cutoverEncrypted?: CutoverResult;
  /** Cutover with CUTOVER_SPAWN_FROM=worker: every command spawned by the (large) worker process itself. */
  cutoverSpawningInWorker?: CutoverResult;
  spawnInWorkerSkipped?: string;
  ansible?: AnsibleResult;
  ansibleSkipped?: string;
  /** The machine's 1-minute load average just before each leg (2 cores are shared with other work). */
  loadBefore: Partial<Record<Leg, number>>;
  /** The same just after each leg. */
  loadAfter: Partial<Record<Leg, number>>;
}

const seconds = (ms: number) => (ms >= 100_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`);
const millis = (ms: number) => (Math.abs(ms) >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`);
const mib = (kib: number) => (Number.isFinite(kib) ? `${(kib / 1024).toFixed(0)} MiB` : 'n/a');
const kib = (bytes: number) => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);
const ratio = (a: number, b: number) => {
  const r = a / b;
  return r >= 1 ? `${r.toFixed(2)}` : `${r.toFixed(3)} (1/${(1 / r).toFixed(1)})`;
};

function table(header: string[], rows: string[][], align: ('l' | 'r')[]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/** The base checkout's run beside this one's: where the time and memory went there. */
function baseRows(b: CutoverResult | undefined): string[][] {
  if (!b) return [];
  const tasks = b.breakdown.workflowTasks;
  return [
    ['base [10]: worker peak RSS, VmHWM', `${mib(b.memory.peakTreeRssKiB)} (worker alone ${mib(b.memory.peakRootRssKiB)}, ${mib(b.memory.startRootRssKiB)} when the run started); VmHWM ${mib(b.memory.workerHwmKiB)}`],
    ['base [10]: CPU used during the run', `worker ${b.cpu.workerSeconds.toFixed(2)} s, ${b.cpu.spawnersSeconds !== undefined ? `its spawners ${b.cpu.spawnersSeconds.toFixed(2)} s, ` : ''}dev server ${b.cpu.serverSeconds.toFixed(2)} s`],
    ['base [10]: workflow tasks, started → completed', `${tasks.count}, ${seconds(tasks.execMs)} in all, ${tasks.count ? millis(tasks.execMs / tasks.count) : '–'} each`],
  ];
}

/** The encrypted leg beside the plain one: what encryption costs in history bytes, memory and CPU. */
function encryptedRows(e: CutoverResult | undefined): string[][] {
  if (!e) return [];
  const largest = e.breakdown.largestByBytes;
  return [
    ['payloads encrypted [8]: largest history', `${largest.events} events, ${kib(largest.bytes)} (${largest.workflowId})`],
    ['payloads encrypted [8]: worker peak RSS, CPU', `${mib(e.memory.peakTreeRssKiB)} (worker alone ${mib(e.memory.peakRootRssKiB)}); CPU worker ${e.cpu.workerSeconds.toFixed(2)} s, dev server ${e.cpu.serverSeconds.toFixed(2)} s`],
  ];
}

export function formatHostCount(r: HostCountResult): string {
  const out: string[] = [];
  out.push(
    `### ${r.hosts} hosts: ${r.hostSteps} host-steps (${r.hostSteps / r.hosts} per host) + ${r.databaseCommands} database commands; parallel ${r.parallel}, batch size ${r.batchSize}, steps ${r.steps}`,
    '',
  );
  const floor = r.floor?.wallMs;
  const cutover = r.cutover?.wallMs;
  const overhead = (wall: number) => (floor !== undefined ? millis((wall - floor) / r.hostSteps) : 'n/a');
  const rows: string[][] = [];
  const row = (name: string, wall: number | undefined, leg: Leg, skipped?: string) => {
    const before = r.loadBefore[leg];
    const after = r.loadAfter[leg];
    if (wall === undefined) {
      rows.push([name, skipped ?? 'not run', '', '', '', '']);
      return;
    }
    rows.push([
      name,
      seconds(wall),
      name.startsWith('floor') ? '–' : overhead(wall),
      floor !== undefined ? ratio(wall, floor) : 'n/a',
      cutover !== undefined ? ratio(cutover, wall) : 'n/a',
      before !== undefined && after !== undefined ? `${before.toFixed(1)} → ${after.toFixed(1)}` : '',
    ]);
  };
  row('Cutover', cutover, 'cutover');
  if (r.cutoverBase) row('Cutover at the base [10]', r.cutoverBase.wallMs, 'cutover-base');
  if (r.cutoverEncrypted) row('Cutover, payloads encrypted [8]', r.cutoverEncrypted.wallMs, 'cutover-encrypted');
  if (r.cutoverSpawningInWorker || r.spawnInWorkerSkipped) {
    row('Cutover, spawning from the worker itself [7]', r.cutoverSpawningInWorker?.wallMs, 'spawn-in-worker', r.spawnInWorkerSkipped);
  }
  row('Ansible', r.ansible?.wallMs, 'ansible', r.ansibleSkipped);
  if (r.spawners) row(`the ${r.spawners.program === 'node' ? 'Node' : 'Go'} spawners alone, ${r.parallel} at a time [11]`, r.spawners.wallMs, 'spawners');
  if (r.spawnersNode) row(`the Node spawners alone, ${r.parallel} at a time [11]`, r.spawnersNode.wallMs, 'spawners-node');
  row(`floor (xargs -P ${r.parallel})`, floor, 'floor');
  out.push(
    table(['run', 'wall time', 'overhead per host-step [1]', 'wall / floor', 'Cutover / this', 'load before → after [6]'], rows, ['l', 'r', 'r', 'r', 'r', 'r']),
  );
  const ratios = [
    cutover !== undefined && r.ansible ? `Cutover/Ansible = ${ratio(cutover, r.ansible.wallMs)}` : undefined,
    cutover !== undefined && floor !== undefined ? `Cutover/floor = ${ratio(cutover, floor)}` : undefined,
  ].filter(Boolean);
  if (ratios.length) out.push('', `**${ratios.join(' · ')}**`);

  const c = r.cutover;
  if (c) {
    const b = c.breakdown;
    const largest = b.largestByEvents;
    const sameRun = largest.runId === b.largestByBytes.runId;
    out.push(
      '',
      table(
        ['Cutover', ''],
        [
          [
            'largest workflow history [2]',
            `${largest.events} events, ${kib(largest.bytes)} (${largest.workflowId})${sameRun ? '' : `; by bytes: ${kib(b.largestByBytes.bytes)} (${b.largestByBytes.workflowId}, ${b.largestByBytes.events} events)`}; ${b.runs} workflow run(s), ${b.totalEvents} events in all`,
          ],
          [
            'worker peak RSS, worker + descendants [3]',
            `${mib(c.memory.peakTreeRssKiB)} (worker alone ${mib(c.memory.peakRootRssKiB)}, ${mib(c.memory.startRootRssKiB)} when the run started; up to ${c.memory.peakProcesses} processes; ${c.memory.samples} samples)`,
          ],
          ['worker VmHWM [3]', mib(c.memory.workerHwmKiB)],
          [
            'CPU used during the run [4]',
            `worker ${c.cpu.workerSeconds.toFixed(2)} s, ${c.cpu.spawnersSeconds !== undefined ? `its spawners ${c.cpu.spawnersSeconds.toFixed(2)} s, ` : ''}dev server ${c.cpu.serverSeconds.toFixed(2)} s`,
          ],
          ...baseRows(r.cutoverBase),
          ...encryptedRows(r.cutoverEncrypted),
        ],
        ['l', 'l'],
      ),
    );
    const per = (count: number, total: number) => [String(count), seconds(total), count ? millis(total / count) : '–'];
    const rowsB: string[][] = [
      ['workflow tasks: started → completed', ...per(b.workflowTasks.count, b.workflowTasks.execMs)],
      ['workflow tasks: scheduled → started (queue)', ...per(b.workflowTasks.count, b.workflowTasks.queueMs)],
      ['activities: scheduled → started (queue)', ...per(b.activities.count, b.activities.queueMs)],
      ['activities: started → closed (execution, contains the spawns)', ...per(b.activities.count, b.activities.execMs)],
      ['activities: closed → next workflow task started', ...per(b.activities.count, b.activities.toNextWorkflowTaskMs)],
      ['child workflows: initiated → started', ...per(b.children.count, b.children.startMs)],
      ['child workflows: closed → next parent workflow task started', ...per(b.children.count, b.children.toNextWorkflowTaskMs)],
      ['beforeOffline gate: opened → approval scheduled (bench polls)', b.gateWaitMs !== undefined ? '1' : '0', b.gateWaitMs !== undefined ? seconds(b.gateWaitMs) : '–', ''],
      ['workflow span: started → closed (server clock)', '', seconds(b.workflowSpanMs), ''],
      ['after the approval: update accepted → closed (server clock)', '', b.afterApprovalMs !== undefined ? seconds(b.afterApprovalMs) : '–', ''],
      ['client side: wall − span (start call, result long poll)', '', c.wallMs - b.workflowSpanMs >= 0 ? seconds(c.wallMs - b.workflowSpanMs) : millis(c.wallMs - b.workflowSpanMs), ''],
    ];
    out.push('', `Where Cutover's time goes [5]:`, '', table(['from the histories', 'count', 'total', 'mean'], rowsB, ['l', 'r', 'r', 'r']));
    const notes = [
      b.workflowTasks.failed || b.workflowTasks.timedOut ? `workflow tasks failed ${b.workflowTasks.failed}, timed out ${b.workflowTasks.timedOut}` : '',
      b.activities.retried || b.activities.failed || b.activities.timedOut
        ? `activities closed on a retry ${b.activities.retried}, failed ${b.activities.failed}, timed out ${b.activities.timedOut}`
        : '',
      `activities by type: ${Object.entries(b.activities.byType)
        .map(([type, n]) => `${type} ${n}`)
        .join(', ')}`,
      `gate polled ${c.approval.polls} times${c.approval.refused ? `, approval refused ${c.approval.refused} times` : ''}`,
      `heartbeat timeouts ${b.activities.heartbeatTimeouts} [9]`,
    ].filter(Boolean);
    out.push('', notes.join('; ') + '.');
  }
  return out.join('\n');
}

export const FOOTNOTES = `Notes:
- wall time: Cutover, from the client's workflow start call to its result (the dev server and a worker process
  are already running and polling; the plan is already generated); the beforeOffline gate is approved by the
  bench as soon as it opens. Ansible: the ansible-playbook process, start to exit. floor: all xargs processes,
  one after another. Each leg on a fresh lab fleet; the legs run one after another, never at the same time.
- [1] overhead per host-step = (wall − floor wall) / host-steps, where host-steps = hosts × 7 host steps (version,
  drain, stop, upgrade, start, verify, online). The 3 database commands (checksum, backup, verify) are in every
  wall time but not in the divisor. "Cutover / this" is Cutover's wall time divided by that row's.
- [2] over the run's workflow, every run it continued as, and all its child workflows (walked recursively via
  ChildWorkflowExecutionStarted): the most events in one history, and its size in bytes as the server counts it
  (DescribeWorkflowExecution historySizeBytes). Temporal warns above 10,240 events.
- [3] peak RSS: the largest sum of VmRSS over the worker process and all its descendant processes (host commands,
  any spawner process), from /proc every 100 ms during the timed run only; short-lived processes between two
  samples are missed. VmHWM: the kernel's high-water mark of the worker process alone over its whole life, so it
  includes the workflow bundling at worker start-up.
- [4] user + system CPU seconds of the worker process itself, of its spawner processes (not of the commands they
  spawn) and of the dev server, over the timed run. Two cores are shared by everything, so CPU contention shows up in wall time.
- [5] sums over every event pair in all the histories of [2], from the server's event times. With one batch
  activity at a time the rows add up along the run; where activities or child workflows overlap, the sums exceed
  the wall time. An activity's ActivityTaskStarted time is that of the attempt that closed it, so a retried
  activity's queue time includes the earlier attempts and the retry back-off. "closed → next workflow task
  started" includes the workflow task's own queue time (also counted in the queue row). The gate row is the bench's
  own polling latency: every 50 ms it reads the CutoverPhase search attribute with DescribeWorkflowExecution (served
  by the server, not the worker) and sends the approveGate update once it says awaiting-approval.
- [6] the machine's 1-minute load average just before and just after the leg. The cores are shared with other
  work; a load above the core count means the leg competed for CPU, and its wall time is inflated accordingly.
- [7] the same Cutover run with CUTOVER_SPAWN_FROM=worker: the worker process (a few hundred MB) spawns every command
  itself, so each spawn forks it, instead of sending the command to its lean spawner processes
  (transport/commandRunner.cjs). Measured up to 1,000 hosts.
- [8] the same Cutover run with CUTOVER_SPAWN_FROM unchanged and CUTOVER_CODEC_KEYS set (a fresh key): every payload
  the worker and the client send is encrypted with AES-256-GCM, every one they receive decrypted (codec/).
- [9] heartbeat timeouts in all the histories of [2]: ActivityTaskTimedOut events of type HEARTBEAT, and retried
  attempts whose ActivityTaskStarted names a HEARTBEAT timeout as the last failure before them (a history keeps only
  an activity's closing attempt). With no worker lost, every one is false: a live worker's activity given up on.
- [10] with --base DIR: the same run, on a fresh dev server (its own database file) and lab, by DIR's own worker (\`DIR/bin/cutover.js
  worker\`, its node_modules and build), right after this checkout's: a before and after in one invocation. Its
  breakdown rows are that run's; the workflow code, activities and spawners are DIR's, the bench and its plan this
  checkout's.
- [11] the floor's commands, stage by stage and --parallel at a time, through this checkout's spawner processes
  (transport/spawner.ts, journaled as a batch's commands are), started by the bench itself: no Temporal, activity or
  workflow. Between it and the floor is the spawn path's own cost; between it and Cutover, everything else. The Go
  spawner (transport/goSpawner) is what a worker runs where it is built; the Node spawner (transport/commandRunner.cjs,
  leg spawners-node) where it is not, or with CUTOVER_SPAWNER=node.`;

export function formatKill(k: KillResult): string {
  const out: string[] = [];
  const what = k.signal === 'SIGKILL' ? 'kill -9 of the worker' : 'SIGTERM to the worker';
  const replacement = k.standby ? ', a standby worker already polling' : '';
  out.push(`### ${what} mid-batch${replacement}: ${k.hosts} hosts, steps lab, parallel ${k.parallel}, every non-owner install delayed ${k.delaySeconds} s`, '');
  const timeouts = (list: HeartbeatTimeout[]) => `${list.length}${list.length ? `: ${list.slice(0, 4).map((t) => `${t.type} "${t.summary}" (${t.kind})`).join('; ')}` : ''}`;
  const rows: string[][] = [
    ['killed when', `${k.installsDoneAtKill} of ${k.restHosts} remaining hosts' installs were ok in ops.log (${seconds(k.killAfterStartMs)} after the run started)`],
    [
      'commands in flight at the kill',
      `${k.inFlightOps} host-steps (${k.inFlightProcesses} seen as labhost processes of the killed worker, in its tree just before the kill or orphaned just after; the rest from starts logged in ops.log without a result)`,
    ],
    ['first command spawned by the new worker', k.firstSpawn ? `${seconds(k.firstSpawn.afterKillMs)} after the kill: ${k.firstSpawn.command}` : 'none seen'],
    ['new worker polling', k.standby ? 'before the kill (a standby)' : `${seconds(k.newWorkerReadyMs)} after the kill`],
    ['signalled worker exited', k.oldWorkerExitedMs !== undefined ? `${seconds(k.oldWorkerExitedMs)} after the kill` : 'not seen'],
    [
      k.signal === 'SIGKILL' ? 'first operation by the new worker' : 'first operation started after the signal (by either worker)',
      k.firstNewOp ? `${seconds(k.firstNewOp.afterKillMs)} after the kill: ${k.firstNewOp.host} ${k.firstNewOp.op} (${k.firstNewOp.result})` : 'none seen',
    ],
    [
      'heartbeat timeout of the activities under way at the kill',
      k.spanning.length
        ? k.spanning.map((a) => `${a.type} "${a.summary}": heartbeat timeout ${seconds(a.heartbeatTimeoutMs)}, closed on attempt ${a.attempt}${a.lastFailure ? ` after ${a.lastFailure}` : ''}`).join('; ')
        : 'none found',
    ],
    ...(k.signal === 'SIGKILL' ? [['first new operation − heartbeat timeout', k.firstNewOp && k.spanning[0] ? seconds(k.firstNewOp.afterKillMs - k.spanning[0].heartbeatTimeoutMs) : 'n/a']] : []),
    ['heartbeat timeouts of the activities under way, after the signal', timeouts(k.heartbeatTimeoutsOfKill)],
    ['other heartbeat timeouts (false: a live worker given up on) [9]', timeouts(k.otherHeartbeatTimeouts)],
    ['run', `${k.outcome} after ${seconds(k.wallMs)}; lab at the end: ${k.labCheck}`],
    ['completed host-steps that ran again (ok twice or more)', `${k.duplicatesOfCompleted.length}${k.duplicatesOfCompleted.length ? `: ${k.duplicatesOfCompleted.slice(0, 8).map((d) => `${d.host} ${d.op} ×${d.oks} (first ok ${millis(d.firstOkBeforeKillMs)} before the kill)`).join(', ')}${k.duplicatesOfCompleted.length > 8 ? ', …' : ''}` : ''}`],
    [
      'host-steps in flight at the kill that ran again',
      `${k.duplicatesOfInFlight.length}${k.duplicatesOfInFlight.length ? `: ${k.duplicatesOfInFlight.slice(0, 8).map((d) => `${d.host} ${d.op} ×${d.oks}`).join(', ')}${k.duplicatesOfInFlight.length > 8 ? ', …' : ''}` : ''}`,
    ],
    ['other duplicated ok lines', `${k.otherDuplicates.length}${k.otherDuplicates.length ? `: ${k.otherDuplicates.slice(0, 8).map((d) => `${d.host} ${d.op} ×${d.oks}`).join(', ')}` : ''}`],
  ];
  out.push(table(['', ''], rows, ['l', 'l']));
  out.push(
    '',
    `Notes: the kill is ${k.signal} to the worker process only; the commands it had started keep running (each is in its
own process group, run by its spawner) and finish on their own: "in flight" counts them. "First operation by the new worker" is the
first ops.log line after the kill that is not one of those commands' own lines; "first command spawned" is the first
labhost process seen in the new worker's process tree (checked every 20 ms). A host-step "ran again" when
ops.log has more than one ok line for the same host and operation; "completed" means its first ok line was
written before the kill. Times come from ops.log (labhost's clock) and the bench's clock, the same system clock.`,
  );
  return out.join('\n');
}
