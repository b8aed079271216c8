/**
 * End-to-end tests of the `cutover` command: the real bin/cutover.js in a child process, as a user runs it, against
 * the test setup's Temporal dev server (with an in-process worker), a lab in a temp dir, and for `demo --yes` a
 * stack of its own.
 */
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { UpgradePlan } from '../../core/plan';
import type { RunPlan } from '../../core/planner';
import type { RunStatus } from '../../core/status';
import type { LabOp, LabStatus } from '../../lab/lab';
import { WORKFLOW_TYPE } from '../../workflows/messages';
import { freePort, serverAnswers } from '../../stack/devServer';
import { labPlan, labWorker, quickRetries, ROOT, testClient, workflowBundle } from '../helpers';
import {
  alive,
  cutover,
  describeRun,
  descendants,
  expectJson,
  expectOk,
  expectUserError,
  pollCutover,
  removeTempDirs,
  startCutover,
  tempDir,
  type ProcessInfo,
} from './cli';

afterAll(() => removeTempDirs());

const EXAMPLE_YAML = join(ROOT, 'examples', 'appv-lab.yaml');
const EXAMPLE_JSON = join(ROOT, 'examples', 'appv-lab.json');
const HOSTS4 = ['appv-01', 'appv-02', 'appv-03', 'appv-04'];

/** The example plan as written (no defaults filled in), loosely typed so a test can break it anywhere. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawPlan = Record<string, any>;
function rawExample(): RawPlan {
  return parse(readFileSync(EXAMPLE_YAML, 'utf8')) as RawPlan;
}

function writePlan(dir: string, name: string, plan: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, name.endsWith('.json') ? JSON.stringify(plan, null, 2) : stringify(plan));
  return file;
}

describe('cutover validate', () => {
  it('accepts the example plan in YAML', async () => {
    const out = expectOk(await cutover(['validate', EXAMPLE_YAML]));
    expect(out).toContain('valid plan for fleet appv-lab, 4 hosts, 4.1-SP1 → 4.5');
  });

  it('accepts the example plan in JSON (the one the README says to paste into the Web UI)', async () => {
    const out = expectOk(await cutover(['validate', EXAMPLE_JSON]));
    expect(out).toContain('valid plan for fleet appv-lab, 4 hosts, 4.1-SP1 → 4.5');
  });

  it('reads the JSON example as the same plan as the YAML example', async () => {
    const fromYaml = expectJson<RunPlan>(await cutover(['plan', EXAMPLE_YAML, '--json']));
    const fromJson = expectJson<RunPlan>(await cutover(['plan', EXAMPLE_JSON, '--json']));
    expect(fromJson).toEqual(fromYaml);
  });

  it('refuses a missing file', async () => {
    const file = join(tempDir(), 'no-such-plan.yaml');
    const result = await cutover(['validate', file]);
    expectUserError(result, `Cannot read the plan ${file}`, 'no such file');
    expect(result.stdout).toBe('');
  });

  it('refuses malformed YAML (unclosed bracket), naming the file and the line', async () => {
    const file = join(tempDir(), 'broken.yaml');
    writeFileSync(file, 'fleet: appv-lab\nsource: [4.1-SP1\ntarget: "4.5"\n');
    expectUserError(await cutover(['validate', file]), `${file} is not valid YAML or JSON`, /\bline \d+, column \d+/);
  });

  it('refuses a malformed JSON file, naming the file and the line', async () => {
    const file = join(tempDir(), 'broken.json');
    writeFileSync(file, '{\n  "fleet": "appv-lab",\n  "source": "4.1-SP1",\n');
    expectUserError(await cutover(['validate', file]), `${file} is not valid YAML or JSON`, /\bline \d+, column \d+/);
  });

  const broken: [string, (plan: RawPlan) => void, string[]][] = [
    [
      'an unknown key (a typo of approvers)',
      (plan) => (plan.gates.beforeOffline.approver = ['alice']),
      ['Unrecognized key: "approver"', '→ at gates.beforeOffline'],
    ],
    ['an unknown top-level key', (plan) => (plan.colour = 'blue'), ['Unrecognized key: "colour"']],
    ['a wrong type', (plan) => (plan.execution.maxParallel = 'ten'), ['expected number, received string', '→ at execution.maxParallel']],
    ['duplicate host ids', (plan) => (plan.hosts[1].id = 'appv-01'), ['duplicate host id "appv-01" (also hosts[0])', '→ at hosts[1].id']],
    ['no DB owner', (plan) => (plan.hosts[0].roles = ['management-server']), ['exactly one host must have the role "db-owner"', 'none has', '→ at hosts']],
    [
      'two DB owners',
      (plan) => (plan.hosts[2].roles = ['management-server', 'db-owner']),
      ['exactly one host must have the role "db-owner"', 'hosts [0], [2] all have it', '→ at hosts'],
    ],
    ['an unknown role', (plan) => (plan.hosts[2].roles = ['web-server']), ['unknown role "web-server"', 'management-server', '→ at hosts[2].roles[0]']],
    ['an unsupported version path (source 4.0)', (plan) => (plan.source = '4.0'), ['4.5 cannot be installed over 4.0', 'upgrade it to 4.1 or 4.1-SP1 first', '→ at source']],
    ['a target named like a property of every object (constructor)', (plan) => (plan.target = 'constructor'), ['no upgrade path leads to constructor', '→ at target']],
  ];
  it.each(broken)('refuses %s with the problem and where it is', async (_what, breakIt, expected) => {
    const plan = rawExample();
    breakIt(plan);
    const file = writePlan(tempDir(), 'plan.yaml', plan);
    const result = await cutover(['validate', file]);
    expectUserError(result, `${file} is not a valid upgrade plan (1 problem):`, ...expected);
    expect(result.stdout).toBe('');
  });

  it('reports several problems in one run', async () => {
    const plan = rawExample();
    plan.colour = 'blue';
    plan.execution.maxParallel = 'ten';
    plan.hosts[3].id = 'appv 04';
    const file = writePlan(tempDir(), 'plan.json', plan);
    expectUserError(
      await cutover(['validate', file]),
      `${file} is not a valid upgrade plan (3 problems):`,
      'Unrecognized key: "colour"',
      '→ at execution.maxParallel',
      '→ at hosts[3].id',
    );
  });

  it('refuses to plan or start from an invalid plan, before contacting any server', async () => {
    const plan = rawExample();
    plan.source = '4.0';
    const file = writePlan(tempDir(), 'plan.yaml', plan);
    expectUserError(await cutover(['plan', file]), '→ at source');
    expectUserError(await cutover(['start', file], { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } }), '→ at source');
  });
});

describe('cutover plan', () => {
  it('prints the phases in order, with the DB owner upgraded first', async () => {
    const out = expectOk(await cutover(['plan', EXAMPLE_YAML]));
    expect(out.split('\n')[0]).toContain('Fleet appv-lab: 4.1-SP1 → 4.5, 4 hosts, DB owner appv-01, database APPVDB');
    const steps = [
      '1. Preflight',
      '2. GATE beforeOffline',
      '3. Drain',
      '4. Take offline',
      '5. Back up the shared database',
      '6. Upgrade the DB-owning host',
      '7. Upgrade the remaining hosts',
      '8. Verify',
      '9. Bring every host back online',
    ];
    const positions = steps.map((step) => out.indexOf(step));
    expect(positions.every((p) => p >= 0), out).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    const owner = out.indexOf('appv-01: labhost appv-01 install 4.5 --upgrade-schema');
    const rest = out.indexOf('appv-02: labhost appv-02 install 4.5');
    expect(owner).toBeGreaterThan(positions[5]!);
    expect(owner).toBeLessThan(positions[6]!);
    expect(rest).toBeGreaterThan(positions[6]!);
    expect(out.indexOf('database backup on appv-01')).toBeGreaterThan(positions[4]!);
    expect(out.indexOf('database backup on appv-01')).toBeLessThan(positions[5]!);
  });

  it('--json prints the computed run plan as JSON', async () => {
    const run = expectJson<RunPlan>(await cutover(['plan', EXAMPLE_YAML, '--json']));
    expect(run).toMatchObject({ fleet: 'appv-lab', source: '4.1-SP1', target: '4.5', owner: 'appv-01', hostIds: HOSTS4, gates: ['beforeOffline'] });
    expect(Object.keys(run.phases)).toEqual(['preflight', 'drain', 'stop', 'backup', 'upgradeOwner', 'upgradeRest', 'verify', 'online']);
    const hostsOf = (phase: keyof RunPlan['phases'], step: string) =>
      run.phases[phase].batches.filter((b) => b.step === step).flatMap((b) => b.tasks.map((t) => t.host));
    expect(hostsOf('upgradeOwner', 'upgrade')).toEqual(['appv-01']);
    expect(hostsOf('upgradeRest', 'upgrade')).toEqual(['appv-02', 'appv-03', 'appv-04']);
    expect(run.phases.backup.database.map((t) => t.action)).toContain('backup');
  });
});

describe('cutover lab', () => {
  it('brings a lab up, shows it, injects a fault, logs operations and takes it down', async () => {
    const env = { CUTOVER_LAB_DIR: join(tempDir(), 'lab') };
    expect(expectOk(await cutover(['lab', 'up', '--hosts', '3'], { env }))).toContain('3 appv hosts (appv-01 … appv-03) at 4.1-SP1');

    const status = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], { env }));
    expect(status.hosts.map((h) => h.id)).toEqual(['appv-01', 'appv-02', 'appv-03']);
    for (const host of status.hosts) {
      expect(host, host.id).toMatchObject({ version: '4.1-SP1', services: { AppVServer: 'running' }, online: true });
    }
    expect(status.database.schema).toBe('4.1-SP1');
    expect(status.database.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(status.faults).toEqual([]);
    const text = expectOk(await cutover(['lab', 'status'], { env }));
    expect(text).toContain(`checksum ${status.database.checksum.slice(0, 16)}`);
    expect(text).toMatch(/appv-02\s+4\.1-SP1\s+AppVServer=running/);

    expect(expectOk(await cutover(['lab', 'fault', 'appv-02', 'stop', '--times', '2'], { env }))).toContain('fail 2 time(s)');
    expect(expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], { env })).faults).toEqual([{ host: 'appv-02', op: 'stop', mode: '2' }]);

    // What the worker's commands do: the fault fails the next two stops, the third succeeds.
    const labhost = (...args: string[]) =>
      new Promise<number>((resolve) => {
        execFile(join(ROOT, 'lab', 'bin', 'labhost'), args, { env: { ...process.env, ...env } }, (error) => resolve(error ? Number(error.code) : 0));
      });
    expect(await labhost('appv-02', 'drain')).toBe(0);
    expect([await labhost('appv-02', 'stop'), await labhost('appv-02', 'stop'), await labhost('appv-02', 'stop')]).toEqual([1, 1, 0]);

    const ops = expectJson<LabOp[]>(await cutover(['lab', 'ops', '--json'], { env }));
    expect(ops.map((o) => [o.host, o.op, o.result])).toEqual([
      ['appv-02', 'drain', 'ok'],
      ['appv-02', 'stop', 'fault'],
      ['appv-02', 'stop', 'fault'],
      ['appv-02', 'stop', 'ok'],
    ]);
    expect(ops.map((o) => o.seq)).toEqual([1, 2, 3, 4]);
    expect(ops.every((o) => !Number.isNaN(Date.parse(o.time)))).toBe(true);
    const after = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], { env }));
    expect(after.faults).toEqual([]);
    expect(after.hosts[1]).toMatchObject({ id: 'appv-02', services: { AppVServer: 'stopped' } });

    expect(expectOk(await cutover(['lab', 'down'], { env }))).toContain('removed');
    expectUserError(await cutover(['lab', 'status'], { env }), 'no lab at', 'cutover lab up');
  });

  it('refuses bad flags and unknown hosts with a clear message', async () => {
    const env = { CUTOVER_LAB_DIR: join(tempDir(), 'lab') };
    expectUserError(await cutover(['lab', 'up', '--hosts', '0'], { env }), '--hosts', 'at least 1');
    expectUserError(await cutover(['lab', 'up', '--hosts', 'many'], { env }), '--hosts', 'at least 1');
    expectUserError(await cutover(['lab', 'fault', 'appv-01', 'stop'], { env }), 'no lab at');
    expectOk(await cutover(['lab', 'up', '--hosts', '2'], { env }));
    expectUserError(await cutover(['lab', 'fault', 'nosuchhost', 'stop'], { env }), 'no host "nosuchhost"', 'appv-01, appv-02');
    expectUserError(await cutover(['lab', 'fault', 'appv-01', 'stop', '--always', '--hang'], { env }), 'choose one of');
    // Nothing was injected by the refused commands.
    expect(expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], { env })).faults).toEqual([]);
  });
});

describe('an unreachable Temporal server', () => {
  it.each([
    ['status', ['status', 'x']],
    ['start', ['start', EXAMPLE_YAML]],
    ['approve', ['approve', 'x', '--as', 'alice']],
  ])('%s says it cannot reach the server, without a stack trace', async (_command, args) => {
    const result = await cutover(args, { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' }, timeoutMs: 30_000 });
    expectUserError(result, 'Cannot reach the Temporal server at 127.0.0.1:1');
    expect(result.ms).toBeLessThan(20_000);
  });
});

describe('a run that no worker polls', () => {
  it('status and approve say so at once, naming the task queue and how to start a worker', async () => {
    const client = await testClient();
    const taskQueue = `cli-no-worker-${randomBytes(4).toString('hex')}`;
    const plan = { ...labPlan(HOSTS4), fleet: `no-worker-${randomBytes(3).toString('hex')}` };
    const handle = await client.workflow.start(WORKFLOW_TYPE, { taskQueue, workflowId: `cutover-${plan.fleet}`, args: [plan] });
    try {
      const env = { TEMPORAL_ADDRESS: inject('temporalAddress') };
      for (const args of [['status', plan.fleet], ['approve', plan.fleet, '--as', 'alice']]) {
        const result = await cutover(args, { env, timeoutMs: 30_000 });
        expectUserError(result, `No worker is polling task queue "${taskQueue}", so ${handle.workflowId} cannot answer`, `CUTOVER_TASK_QUEUE=${taskQueue} cutover worker`);
        // Not after the server's deadline for a query, nor never for an update.
        expect(result.ms, describeRun(result)).toBeLessThan(10_000);
      }
    } finally {
      await handle.terminate('the test is over');
      await client.connection.close();
    }
  });
});

describe('a run through the CLI, with an in-process worker', () => {
  let client: Client;
  beforeAll(async () => {
    client = await testClient();
    await workflowBundle();
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  /** A lab of 4 hosts (made with the CLI) and a worker driving it; the CLI talks to the test server on its task queue. */
  async function withLabAndWorker(body: (env: Record<string, string>, lab: string) => Promise<void>) {
    const lab = join(tempDir(), 'lab');
    expectOk(await cutover(['lab', 'up', '--hosts', '4'], { env: { CUTOVER_LAB_DIR: lab } }));
    const { worker, taskQueue, close } = await labWorker(lab);
    const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB_DIR: lab };
    try {
      await worker.runUntil(body(env, lab));
    } finally {
      await close();
    }
  }

  const statusJson = (fleet: string, env: Record<string, string>, accept: (s: RunStatus) => boolean, what: string) =>
    pollCutover(['status', fleet, '--json'], { env }, (r) => {
      const status = JSON.parse(r.stdout) as RunStatus;
      return accept(status) ? status : undefined;
    }, what);

  it('starts once per fleet, refuses an approver the gate does not allow, and completes on approval', async () => {
    await withLabAndWorker(async (env, lab) => {
      const base = labPlan(HOSTS4);
      const plan: UpgradePlan = { ...base, gates: { ...base.gates, beforeOffline: { ...base.gates.beforeOffline, approvers: ['alice'] } } };
      const file = writePlan(tempDir(), 'plan.yaml', plan);
      const workflowId = `cutover-${plan.fleet}`;

      const started = expectOk(await cutover(['start', file], { env }));
      expect(started).toContain(`started ${workflowId} (run `);
      expect(started).toContain(`on task queue ${env.CUTOVER_TASK_QUEUE}`);

      const again = await cutover(['start', file], { env });
      expectUserError(again, `A run for fleet ${plan.fleet} is already open: ${workflowId}`, `cutover status ${workflowId}`);

      const atGate = await statusJson(plan.fleet, env, (s) => s.pendingGate?.gate === 'beforeOffline', 'the beforeOffline gate');
      expect(atGate.pendingGate).toMatchObject({ approvers: ['alice'], quorum: 1, approvedBy: [] });
      const text = expectOk(await cutover(['status', plan.fleet], { env }));
      expect(text).toContain(`${workflowId}: ${plan.fleet} 4.1-SP1 → 4.5`);
      expect(text).toContain('waiting for approval at gate beforeOffline (0/1, approvers: alice)');
      expect(text).toContain(`approve with: cutover approve ${workflowId} --as NAME`);

      expectUserError(await cutover(['approve', plan.fleet, '--as', 'mallory'], { env }), 'approve refused', 'mallory may not decide gate beforeOffline', 'alice');
      // The refusal changed nothing.
      const still = expectJson<RunStatus>(await cutover(['status', plan.fleet, '--json'], { env }));
      expect(still.pendingGate).toMatchObject({ gate: 'beforeOffline', approvedBy: [] });
      expect(still.decisions).toEqual([]);

      const approved = expectOk(await cutover(['approve', plan.fleet, '--as', 'alice', '--comment', 'window open'], { env }));
      expect(approved).toContain('approved by alice');

      const result = await client.workflow.getHandle(workflowId).result();
      expect(result).toMatchObject({ outcome: 'completed', fleet: plan.fleet });

      const done = expectJson<RunStatus>(await cutover(['status', workflowId, '--json'], { env }));
      expect(done.decisions).toEqual([expect.objectContaining({ gate: 'beforeOffline', decision: 'approve', approver: 'alice', comment: 'window open' })]);

      // Deciding a finished run, or a run that never existed, is a readable refusal too.
      expectUserError(await cutover(['approve', plan.fleet, '--as', 'alice'], { env }), `No open run ${workflowId}`);
      const nobody = `nosuch-${plan.fleet}`;
      expectUserError(await cutover(['status', nobody], { env }), `No run cutover-${nobody} in namespace default`);
      expectUserError(await cutover(['approve', nobody, '--as', 'alice'], { env }), `No open run cutover-${nobody}`);

      const labNow = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], { env: { CUTOVER_LAB_DIR: lab } }));
      expect(labNow.database.schema).toBe('4.5');
      for (const host of labNow.hosts) {
        expect(host, host.id).toMatchObject({ version: '4.5', services: { AppVServer: 'running' }, online: true });
      }
    });
  });

  it('guided failure: refuses a skip of a host that did not fail, then rolls the fleet back', async () => {
    await withLabAndWorker(async (env, lab) => {
      const labEnv = { env: { CUTOVER_LAB_DIR: lab } };
      const before = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], labEnv));
      expectOk(await cutover(['lab', 'fault', 'appv-03', 'install', '--always'], labEnv));
      const plan = quickRetries(labPlan(HOSTS4));
      const file = writePlan(tempDir(), 'plan.json', plan);
      const workflowId = `cutover-${plan.fleet}`;

      expectOk(await cutover(['start', file], { env }));
      await statusJson(plan.fleet, env, (s) => s.pendingGate?.gate === 'beforeOffline', 'the beforeOffline gate');
      expectOk(await cutover(['approve', plan.fleet, '--as', 'alice'], { env }));

      const failed = await statusJson(plan.fleet, env, (s) => s.awaitingOperator !== undefined, 'the guided failure');
      expect(failed.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-03']);
      expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('injected permanent failure');
      expect(failed.awaitingOperator?.options).toEqual(expect.arrayContaining(['retry', 'skip', 'rollback']));
      const text = expectOk(await cutover(['status', plan.fleet], { env }));
      expect(text).toContain('waiting for an operator');
      expect(text).toContain(`cutover rollback ${workflowId} --as NAME`);
      expect(text).toContain(`cutover skip ${workflowId} --as NAME --host appv-03`);
      expect(failed.awaitingOperator?.skippable).toEqual(['appv-03']);

      // appv-01 (the DB owner) did not fail this step, so there is nothing to skip there; skip needs a host.
      expectUserError(await cutover(['skip', plan.fleet, '--as', 'olga', '--host', 'appv-01'], { env }), 'skip refused: appv-01 is not a failed host of this step');
      expectUserError(await cutover(['skip', plan.fleet, '--as', 'olga'], { env }), 'skip refused: name the host to skip (failed: appv-03)');
      expect(expectJson<RunStatus>(await cutover(['status', plan.fleet, '--json'], { env })).awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-03']);

      // The rollback reinstalls the source on appv-03 too (its install may have been cut off half-way): repair first.
      expectOk(await cutover(['lab', 'fault', 'appv-03', 'install', '--clear'], labEnv));
      expect(expectOk(await cutover(['rollback', plan.fleet, '--as', 'olga'], { env }))).toContain('rollback accepted from olga');
      const result = await client.workflow.getHandle(workflowId).result();
      expect(result.outcome).toBe('rolled-back');

      const after = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], labEnv));
      expect(after.database).toEqual(before.database);
      for (const host of after.hosts) {
        expect(host, host.id).toMatchObject({ version: '4.1-SP1', services: { AppVServer: 'running' }, online: true });
      }
      // The upgrade did get under way before it was rolled back.
      const ops = expectJson<LabOp[]>(await cutover(['lab', 'ops', '--json'], labEnv));
      expect(ops.some((o) => o.host === 'appv-01' && o.op === 'install 4.5 --upgrade-schema' && o.result === 'ok')).toBe(true);
      expect(ops.some((o) => o.host === 'db' && o.op.startsWith('restore') && o.result === 'ok')).toBe(true);
    });
  });

  it('guided failure of the DB owner: never skippable; retry after the repair completes the run', async () => {
    await withLabAndWorker(async (env, lab) => {
      const labEnv = { env: { CUTOVER_LAB_DIR: lab } };
      expectOk(await cutover(['lab', 'fault', 'appv-01', 'install', '--always'], labEnv));
      const plan = quickRetries(labPlan(HOSTS4));
      const file = writePlan(tempDir(), 'plan.yaml', plan);
      const workflowId = `cutover-${plan.fleet}`;

      expectOk(await cutover(['start', file], { env }));
      await statusJson(plan.fleet, env, (s) => s.pendingGate?.gate === 'beforeOffline', 'the beforeOffline gate');
      expectOk(await cutover(['approve', plan.fleet, '--as', 'alice'], { env }));
      const failed = await statusJson(plan.fleet, env, (s) => s.awaitingOperator !== undefined, 'the guided failure');
      expect(failed.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-01']);
      expect(failed.awaitingOperator?.skippable).toEqual([]);

      expectUserError(await cutover(['skip', plan.fleet, '--as', 'olga', '--host', 'appv-01'], { env }), 'skip refused: appv-01 cannot be skipped', 'DB-owning host');

      expectOk(await cutover(['lab', 'fault', 'appv-01', 'install', '--clear'], labEnv));
      expect(expectOk(await cutover(['retry', plan.fleet, '--as', 'olga'], { env }))).toContain('retry accepted from olga');
      expect((await client.workflow.getHandle(workflowId).result()).outcome).toBe('completed');
      const after = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], labEnv));
      expect(after.database.schema).toBe('4.5');
      for (const host of after.hosts) expect(host, host.id).toMatchObject({ version: '4.5', services: { AppVServer: 'running' }, online: true });
    });
  });
});

describe('cutover demo --yes (npm start -- --yes)', () => {
  it('brings up its own stack, upgrades the lab fleet, stops everything and exits 0', { timeout: 240_000 }, async () => {
    const state = tempDir();
    const lab = join(state, 'lab');
    const port = await freePort();
    const uiPort = await freePort();
    const address = `127.0.0.1:${port}`;
    // Encryption on (README, Encryption): the stack also runs the codec server the Web UI decodes with.
    const codecPort = await freePort();
    writeFileSync(join(state, 'codec.key'), `${randomBytes(32).toString('base64')}\n`);
    const encryption = { CUTOVER_CODEC_KEYS: `demo=file:${join(state, 'codec.key')}`, CUTOVER_CODEC_PORT: String(codecPort) };
    const env = { CUTOVER_STATE_DIR: state, CUTOVER_LAB_DIR: lab, TEMPORAL_ADDRESS: address, CUTOVER_UI_PORT: String(uiPort), CUTOVER_TASK_QUEUE: undefined, ...encryption };

    const demo = startCutover(['demo', '--yes'], { env, timeoutMs: 180_000 });
    const seen = new Map<number, ProcessInfo>();
    let finished = false;
    void demo.done.then(() => (finished = true));
    const watch = (async () => {
      while (!finished) {
        if (demo.child.pid) for (const p of descendants(demo.child.pid)) seen.set(p.pid, p);
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const result = await demo.done;
    await watch;
    const spawned = [...seen.values()];
    try {
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.ms, describeRun(result)).toBeLessThan(120_000);
      expect(result.stdout).toContain('✔ upgrade completed');
      // It follows the run with `cutover watch`'s view: plain lines through a pipe, the gate with its command.
      expect(result.stdout).toMatch(/\] Waiting for approval at gate beforeOffline \(0\/1, approvers: anyone\): .* Approve with: cutover approve cutover-appv-lab --as NAME\n/);
      expect(result.stdout).toMatch(/\] online: 4\/4 done\n/);

      // It started a dev server and a worker of its own, and none of them outlived it.
      expect(spawned.some((p) => p.cmdline.includes('start-dev') && p.cmdline.includes(String(port))), JSON.stringify(spawned)).toBe(true);
      expect(spawned.some((p) => p.cmdline.includes('start-dev') && p.cmdline.includes(`--ui-codec-endpoint http://127.0.0.1:${codecPort}`)), JSON.stringify(spawned)).toBe(true);
      expect(result.stdout).toContain(`the Web UI decodes them with the codec server at http://127.0.0.1:${codecPort}`);
      expect(spawned.some((p) => p.cmdline.includes('cutover.js worker')), JSON.stringify(spawned)).toBe(true);
      expect(spawned.filter((p) => alive(p.pid))).toEqual([]);
      expect(await serverAnswers(address)).toBe(false);
      expect(await portOpen(uiPort)).toBe(false);
      expect(await portOpen(codecPort)).toBe(false);

      const status = expectJson<LabStatus>(await cutover(['lab', 'status', '--json'], { env: { CUTOVER_LAB_DIR: lab } }));
      expect(status.hosts.map((h) => h.id)).toEqual(HOSTS4);
      expect(status.database.schema).toBe('4.5');
      for (const host of status.hosts) {
        expect(host, host.id).toMatchObject({ version: '4.5', services: { AppVServer: 'running' }, online: true });
      }

      const ops = expectJson<LabOp[]>(await cutover(['lab', 'ops', '--json'], { env: { CUTOVER_LAB_DIR: lab } })).filter((o) => o.result === 'ok');
      const at = (host: string, op: (o: string) => boolean) => ops.findIndex((o) => o.host === host && op(o.op));
      const schemaUpgrade = at('appv-01', (o) => o === 'install 4.5 --upgrade-schema');
      expect(schemaUpgrade).toBeGreaterThanOrEqual(0);
      for (const host of HOSTS4) {
        const stop = at(host, (o) => o === 'stop');
        expect(stop, `${host} stop`).toBeGreaterThanOrEqual(0);
        expect(stop, `${host} stops before the schema upgrade`).toBeLessThan(schemaUpgrade);
      }
      const backup = at('db', (o) => o.startsWith('backup '));
      expect(backup).toBeGreaterThanOrEqual(0);
      expect(backup).toBeLessThan(schemaUpgrade);
      for (const host of HOSTS4.slice(1)) {
        const install = at(host, (o) => o === 'install 4.5');
        expect(install, `${host} install`).toBeGreaterThan(schemaUpgrade);
      }
      expect(ops.filter((o) => o.op.startsWith('install')).length).toBe(4);
    } finally {
      // Whatever went wrong, leave nothing behind that this test started.
      for (const p of spawned) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
    }
  });
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
