/**
 * The fault matrix, the cheap way: a fault at every step of both procedures in one run each (each fails once and
 * its retry fixes it), a hang that the step's timeout ends, and the end state each time: fully upgraded, and no
 * host-step that completed ran again (the lab's operation log). Side by side: for each procedure, the worker killed
 * with SIGKILL at every step; for Dynamics GP, fail-always at every step with a rollback and a kill during it. Fail-always
 * at each App-V step, with the operator rolling back, is guidedFailure.test.ts; kill -9 of a worker running
 * workflows too, mid-batch, mid-backup and mid-restore, are resume.test.ts and databaseTasks.test.ts.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import type { UpgradePlan } from '../../core/plan';
import { type FaultMode, LABHOST, PROFILES, type LabStatus, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveUpdate, retryUpdate, rollbackUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { approvedRun, atGuidedFailure, examplePlan, freshLab, labPlan, labWorker, quickRetries, uniqueId, useTemporalClient, waitFor, workerProcess } from '../helpers';

const temporal = useTemporalClient();

/** Every step of the App-V lab run, each on one host (`db`: a database task), in the order they run. */
const APPV_STEPS: [string, string][] = [
  ['appv-01', 'version'],
  ['appv-02', 'drain'],
  ['appv-03', 'stop'],
  ['db', 'checksum'],
  ['db', 'backup'],
  ['db', 'verify-backup'],
  ['appv-01', 'install'],
  ['appv-02', 'install'],
  ['appv-03', 'start'],
  ['db', 'verify'],
  ['appv-01', 'verify'],
  ['appv-02', 'online'],
];

/** Each operation that succeeded ran once on each host: completed host-steps never ran again. */
function expectEachOnce(lab: string, hosts: string[], ops: string[]): void {
  const log = labOps(lab);
  for (const host of hosts) {
    for (const op of ops) {
      expect(log.filter((o) => o.host === host && o.op.split(' ')[0] === op && o.result === 'ok'), `${host} ${op}`).toHaveLength(1);
    }
  }
}

describe('fail once at every step (the retry fixes it)', () => {
  it('App-V: version, drain, stop, checksum, backup, the backup read back, the owner upgrade, a remaining host upgrade, start, verify, database verify, online', async () => {
    const hosts = hostIds(PROFILES.appv!, 3);
    const lab = freshLab({ hosts: 3 });
    const faults = APPV_STEPS;
    for (const [host, op] of faults) labFault(lab, host, op, { times: 1 });
    await approvedRun(temporal.client, quickRetries(labPlan(hosts)), lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
    });
    // Every fault fired, once.
    expect(labOps(lab).filter((o) => o.result === 'fault').map((o) => `${o.host} ${o.op.split(' ')[0]}`)).toEqual(expect.arrayContaining(faults.map((f) => f.join(' '))));
    expect(labOps(lab).filter((o) => o.result === 'fault')).toHaveLength(faults.length);
    expectEachOnce(lab, hosts, ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']);
    expectEachOnce(lab, ['db'], ['checksum', 'backup', 'verify-backup', 'verify']);
    const state = labStatus(lab);
    expect(state.database.schema).toBe('4.5');
    expect(state.hosts.every((h) => h.version === '4.5' && h.services.AppVServer === 'running' && h.online)).toBe(true);
  });

  it('Dynamics GP web components: the same steps, the web host first', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 5 });
    execFileSync(LABHOST, ['tenant', 'upgrade', '18.0'], { env: { ...process.env, CUTOVER_LAB_DIR: lab } });
    const plan: UpgradePlan = { ...examplePlan('gp-web-lab.yaml'), fleet: uniqueId('gp').slice(0, 40) };
    const hosts = plan.hosts.map((h) => h.id);
    const faults: [string, string][] = [
      ['gp-web-01', 'version'],
      ['gp-session-01', 'drain'],
      ['gp-session-02', 'stop'],
      // A new-database plan takes no backup: the old configuration database is never changed.
      ['gp-web-01', 'install'],
      ['gp-session-03', 'install'],
      ['gp-session-04', 'start'],
      ['gp-web-01', 'verify'],
      ['db', 'verify'],
      ['gp-session-02', 'online'],
    ];
    for (const [host, op] of faults) labFault(lab, host, op, { times: 1 });
    const gates = { gates: ['prerequisite:gp-utilities-upgraded', 'prerequisite:desktop-client-verified', 'beforeOffline'], approver: 'gp-admin' };
    await approvedRun(temporal.client, quickRetries(plan), lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
    }, gates);
    expect(labOps(lab).filter((o) => o.result === 'fault')).toHaveLength(faults.length);
    expectEachOnce(lab, hosts, ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']);
    expectEachOnce(lab, ['db'], ['verify']);
    const state = labStatus(lab);
    // The old configuration database as it was; the new one at 18.0, and every host on it.
    expect(state.database.schema).toBe('16.0');
    expect(state.newDatabases?.GPCONFIGURATION?.schema).toBe('18.0');
    expect(state.hosts.every((h) => h.version === '18.0' && h.online && h.database === 'GPCONFIGURATION')).toBe(true);
  });
});

it('a hang is ended by the step timeout, reaches the operator, and a retry completes the run with the step run once', async () => {
  const hosts = hostIds(PROFILES.appv!, 2);
  const lab = freshLab({ hosts: 2 });
  labFault(lab, 'appv-02', 'drain', 'hang');
  const plan = quickRetries(labPlan(hosts));
  const role = plan.roles['management-server']!;
  const short = { ...plan, roles: { ...plan.roles, 'management-server': { ...role, steps: { ...role.steps, drain: { ...role.steps.drain!, timeout: '1s' } } } } };
  await approvedRun(temporal.client, short, lab, async (handle) => {
    const failed = await atGuidedFailure(handle);
    expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('killed after 1000 ms timeout');
    labFault(lab, 'appv-02', 'drain', 'clear');
    await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
    expect((await handle.result()).outcome).toBe('completed');
  });
  expectEachOnce(lab, hosts, ['drain', 'install', 'online']);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
});

/** Which of `workers` runs a command whose line contains `text` now (its spawner's and its shell's ancestor). */
function workerRunning(workers: ChildProcess[], text: string): ChildProcess | undefined {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .flatMap((line) => {
      const match = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
      return match ? [{ pid: Number(match[1]), ppid: Number(match[2]), args: match[3] ?? '' }] : [];
    });
  const parent = new Map(rows.map((row) => [row.pid, row.ppid]));
  for (const row of rows.filter((r) => r.args.includes(text))) {
    for (let pid = row.pid; pid > 1; pid = parent.get(pid) ?? 0) {
      const worker = workers.find((w) => w.pid === pid);
      if (worker) return worker;
    }
  }
  return undefined;
}

/** The run's handle and lab, and what the test does to its workers. */
interface KillableRun {
  lab: string;
  plan: UpgradePlan;
  handle: WorkflowHandle<typeof upgradeFleet>;
  approveGates(): Promise<void>;
  killDuring(host: string, op: string): Promise<void>;
}

interface KillableRunOptions {
  lab: string;
  plan: UpgradePlan;
  /** The gates approveGates() approves, in order, and who approves them. */
  gates: string[];
  approver: string;
}

/**
 * A lab run whose hosts are a site, so their steps (the database tasks too: they run on the owner's site) run on
 * worker processes of the site's own (`cutover worker --sites-only`), which the test kills with SIGKILL; the
 * workflow's worker stays (a worker running both is killed in resume.test.ts), so a kill costs the heartbeat timeout
 * and not also the sticky workflow task's. Two site workers poll and share one state directory (the journal a killed
 * worker's spawner leaves is the next one's): the one running a step is killed, the other takes the retry, and a new
 * worker process starts in its place meanwhile.
 */
async function runOnKillableWorkers(options: KillableRunOptions, body: (run: KillableRun) => Promise<void>): Promise<{ lab: string; hosts: string[] }> {
  const { lab, gates, approver } = options;
  const plan: UpgradePlan = { ...options.plan, hosts: options.plan.hosts.map((host) => ({ ...host, site: 'lab' })) };
  const { worker, taskQueue, close } = await labWorker(lab);
  const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: lab, CUTOVER_STATE_DIR: mkdtempSync(join(tmpdir(), 'cutover-state-')) };
  const siteWorkers: ChildProcess[] = [];
  const starting: Promise<unknown>[] = [];
  const startSiteWorker = () => starting.push(workerProcess(env, ['--sites-only', '--site', 'lab']).then((w) => siteWorkers.push(w)));
  try {
    startSiteWorker();
    await Promise.all(starting);
    // The second starts while the run does: the first kill's retry needs it only a heartbeat timeout later.
    startSiteWorker();
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
      await body({
        lab,
        plan,
        handle,
        async approveGates() {
          for (const gate of gates) {
            // Past a kill, the gate opens only once the heartbeat timeout has noticed the lost worker.
            await waitFor(async () => ((await handle.query(statusQuery)).pendingGate?.gate === gate ? true : undefined), `gate ${gate}`, 60_000);
            await handle.executeUpdate(approveUpdate, { args: [{ approver, gate }] });
          }
        },
        async killDuring(host, op) {
          const delayed = () => labOps(lab).some((o) => o.host === host && o.op.split(' ')[0] === op && o.message.includes('delay'));
          const running = await waitFor(async () => (delayed() ? workerRunning(siteWorkers, `labhost ${host} ${op}`) : undefined), `${host} ${op} to run`, 60_000);
          running.kill('SIGKILL');
          siteWorkers.splice(siteWorkers.indexOf(running), 1);
          startSiteWorker();
        },
      });
    });
  } finally {
    await Promise.allSettled(starting);
    for (const w of siteWorkers) w.kill('SIGTERM');
    await close();
  }
  return { lab, hosts: plan.hosts.map((host) => host.id) };
}

/** The GP lab (5 hosts, the 18.0 tenant upgraded) with `faults` set, on killable workers. */
function gpRunOnKillableWorkers(faults: [string, string, FaultMode][], body: (run: KillableRun) => Promise<void>): Promise<{ lab: string; hosts: string[] }> {
  const lab = freshLab({ profile: 'gp-web', hosts: 5 });
  execFileSync(LABHOST, ['tenant', 'upgrade', '18.0'], { env: { ...process.env, CUTOVER_LAB_DIR: lab } });
  for (const [host, op, mode] of faults) labFault(lab, host, op, mode);
  const plan: UpgradePlan = quickRetries({ ...examplePlan('gp-web-lab.yaml'), fleet: uniqueId('gp').slice(0, 40) });
  const gates = ['prerequisite:gp-utilities-upgraded', 'prerequisite:desktop-client-verified', 'beforeOffline'];
  return runOnKillableWorkers({ lab, plan, gates, approver: 'gp-admin' }, body);
}

/** What a user checks after a GP rollback: every host at 16.0 on the old database, running and online, that database as it was. */
function expectGpBack(lab: string, databaseBefore: LabStatus['database']): void {
  const state = labStatus(lab);
  expect(state.database).toEqual(databaseBefore);
  for (const host of state.hosts) {
    expect(host, host.id).toMatchObject({ version: '16.0', database: 'GPWEBCONFIG', online: true });
    expect(Object.values(host.services).every((s) => s === 'running'), host.id).toBe(true);
  }
}

describe.concurrent('kill -9 of the worker at every step of both procedures, and fail always at every GP step', () => {
  it('App-V: kill -9 while each step runs, the database tasks included, a new worker each time: fully upgraded, and no completed step ran twice', async () => {
    const hosts = hostIds(PROFILES.appv!, 3);
    const kills = APPV_STEPS;
    const lab = freshLab({ hosts: 3 });
    // Each held for 3 s by the lab, long enough to kill its worker while it runs.
    for (const [host, op] of kills) labFault(lab, host, op, { delaySeconds: 3 });
    await runOnKillableWorkers({ lab, plan: quickRetries(labPlan(hosts)), gates: ['beforeOffline'], approver: 'alice' }, async (run) => {
      for (const [host, op] of kills) {
        await run.killDuring(host, op);
        if (op === 'version') await run.approveGates();
      }
      expect((await run.handle.result()).outcome).toBe('completed');
    });
    expectEachOnce(lab, hosts, ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']);
    expectEachOnce(lab, ['db'], ['checksum', 'backup', 'verify-backup', 'verify']);
    const state = labStatus(lab);
    expect(state.database.schema).toBe('4.5');
    expect(state.hosts.every((h) => h.version === '4.5' && h.services.AppVServer === 'running' && h.online)).toBe(true);
  }, 300_000);


  it('kill -9 while each step runs, a new worker each time: fully upgraded, and no completed host-step ran twice', async () => {
    const kills: [string, string][] = [
      ['gp-session-01', 'version'],
      ['gp-session-02', 'drain'],
      ['gp-session-03', 'stop'],
      ['gp-web-01', 'install'],
      ['gp-session-04', 'install'],
      ['gp-session-01', 'start'],
      ['db', 'verify'],
      ['gp-session-02', 'verify'],
      ['gp-session-03', 'online'],
    ];
    // Each held for 3 s by the lab, long enough to kill its worker while it runs.
    const { lab, hosts } = await gpRunOnKillableWorkers(kills.map(([host, op]) => [host, op, { delaySeconds: 3 }]), async (run) => {
      for (const [host, op] of kills) {
        await run.killDuring(host, op);
        if (op === 'version') await run.approveGates();
      }
      expect((await run.handle.result()).outcome).toBe('completed');
    });
    expectEachOnce(lab, hosts, ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']);
    expectEachOnce(lab, ['db'], ['verify']);
    const state = labStatus(lab);
    expect(state.newDatabases?.GPCONFIGURATION?.schema).toBe('18.0');
    expect(state.hosts.every((h) => h.version === '18.0' && h.online && h.database === 'GPCONFIGURATION')).toBe(true);
  }, 300_000);

  it('fail always at each step, the operator retries once it is fixed, then rolls back from the last with a kill -9 during the rollback: fully back', async () => {
    // Each fails for good and reaches the operator, who has it fixed and retries; the last one is rolled back instead.
    const faults: [string, string, string][] = [
      ['gp-session-01', 'drain', 'drain'],
      ['gp-session-02', 'stop', 'stop'],
      ['gp-web-01', 'install', 'upgrade'],
      ['gp-session-03', 'install', 'upgrade'],
      ['gp-session-04', 'start', 'start'],
      ['gp-session-01', 'verify', 'verify'],
      ['gp-session-02', 'online', 'online'],
    ];
    let databaseBefore: LabStatus['database'] | undefined;
    const { lab, hosts } = await gpRunOnKillableWorkers([...faults.map(([host, op]): [string, string, FaultMode] => [host, op, 'always']), ['db', 'verify', 'always']], async (run) => {
      databaseBefore = labStatus(run.lab).database;
      await run.approveGates();
      for (const [host, op, step] of faults) {
        if (op === 'verify') {
          // The verify phase checks the new database first.
          expect((await atGuidedFailure(run.handle)).awaitingOperator?.reason).toContain('database verify on gp-web-01 failed');
          labFault(run.lab, 'db', 'verify', 'clear');
          await run.handle.executeUpdate(retryUpdate, { args: [{ operator: 'gp-admin' }] });
        }
        const { awaitingOperator } = await atGuidedFailure(run.handle);
        expect({ step: awaitingOperator?.step, hosts: awaitingOperator?.hosts.map((h) => h.host) }).toEqual({ step, hosts: [host] });
        labFault(run.lab, host, op, 'clear');
        if (op === 'online') break;
        await run.handle.executeUpdate(retryUpdate, { args: [{ operator: 'gp-admin' }] });
      }
      // The rollback reinstalls 16.0 on the web host, pointed back at the old database: its worker dies meanwhile.
      labFault(run.lab, 'gp-web-01', 'install', { delaySeconds: 3 });
      await run.handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'gp-admin' }] });
      await run.killDuring('gp-web-01', 'install');
      expect((await run.handle.result()).outcome).toBe('rolled-back');
    });
    expectGpBack(lab, databaseBefore!);
    // Each host installed 18.0 once and 16.0 once, the web host's reinstall under way at the kill included.
    const installs = (host: string, version: string) => labOps(lab).filter((o) => o.host === host && o.op.startsWith(`install ${version}`) && o.result === 'ok');
    for (const host of hosts) {
      expect(installs(host, '18.0'), host).toHaveLength(1);
      expect(installs(host, '16.0'), host).toHaveLength(1);
    }
  }, 300_000);
});
