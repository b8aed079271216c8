/** Shared test plumbing: the real dev server from globalSetup, a fresh lab and task queue per test. */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import { afterAll, beforeAll, inject } from 'vitest';
import { parse } from 'yaml';
import { bundleWorkflows, prebuiltWorkflowBundle } from '../build/prebuilt';
import { cutoverDataConverter } from '../codec/dataConverter';
import { type UpgradePlan, validatePlan } from '../core/plan';
import type { RunStatus } from '../core/status';
import { labUp, type LabUpOptions } from '../lab/lab';
import { approveUpdate, statusQuery } from '../workflows/messages';
import { upgradeFleet } from '../workflows/upgradeFleet';
import { createCutoverWorker } from '../worker/worker';

export const ROOT = join(__dirname, '..');

const bundles = new Map<string, Promise<WorkflowBundleOption>>();
/**
 * The bundle `npm install` built (build/build.ts) while the sources are as it found them; otherwise bundled once per
 * test file (module state is per file under vitest), and once more with a data converter's failure converter.
 */
export function workflowBundle(failureConverterPath?: string): Promise<WorkflowBundleOption> {
  const key = failureConverterPath ?? '';
  if (!bundles.has(key)) bundles.set(key, loadWorkflowBundle(failureConverterPath));
  return bundles.get(key) as Promise<WorkflowBundleOption>;
}

async function loadWorkflowBundle(failureConverterPath?: string): Promise<WorkflowBundleOption> {
  const prebuilt = prebuiltWorkflowBundle(failureConverterPath);
  if (prebuilt) return { codePath: prebuilt };
  return bundleWorkflows(failureConverterPath);
}

/** One client per test file, connected before its tests (with the workflows bundled) and closed after them. */
export function useTemporalClient(): { readonly client: Client } {
  let client: Client | undefined;
  beforeAll(async () => {
    client = await testClient();
    await workflowBundle();
  });
  afterAll(async () => {
    await client?.connection.close();
  });
  return {
    get client() {
      if (!client) throw new Error('the Temporal client is used before beforeAll connected it');
      return client;
    },
  };
}

/** A client with Cutover's data converter: the environment's (CUTOVER_CODEC_KEYS) unless one is given. */
export async function testClient(dataConverter: DataConverter = cutoverDataConverter()): Promise<Client> {
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  return new Client({ connection, dataConverter });
}

export function freshLab(options: LabUpOptions = {}): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'cutover-lab-')), 'lab');
  labUp(dir, options);
  return dir;
}

/** A worker on its own task queue, driving the given lab. */
export async function labWorker(labDir: string, options: { trustFile?: string; dataConverter?: DataConverter; taskQueue?: string } = {}) {
  const taskQueue = options.taskQueue ?? `test-${randomUUID()}`;
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const worker = await createCutoverWorker({
    connection,
    taskQueue,
    workflowBundle: await workflowBundle(options.dataConverter?.failureConverterPath),
    lab: true,
    commandEnv: { CUTOVER_LAB_DIR: labDir },
    // The lab's own journals: a database's lock and journal belong to its lab, not to every test's worker.
    journalDir: join(labDir, '..', 'journal'),
    ...options,
  });
  return { worker, taskQueue, close: () => connection.close() };
}

export function examplePlan(file = 'appv-lab.yaml'): UpgradePlan {
  const result = validatePlan(parse(readFileSync(join(ROOT, 'examples', file), 'utf8')));
  if (!result.ok) throw new Error(result.message);
  return result.plan;
}

/** The example plan with n lab hosts named like `cutover lab up --hosts n` names them. */
export function labPlan(hostIds: string[], overrides: Partial<UpgradePlan> = {}): UpgradePlan {
  const plan = examplePlan();
  return {
    ...plan,
    fleet: `lab-${randomUUID().slice(0, 8)}`,
    hosts: hostIds.map((id, i) => ({ id, roles: i === 0 ? ['management-server', 'db-owner'] : ['management-server'], transport: { kind: 'local' } })),
    ...overrides,
  };
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID()}`;
}

export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The run's failed workflow tasks: a handler or a plan that throws shows up here, as a run stuck in a retry loop. */
export async function failedWorkflowTasks(handle: WorkflowHandle): Promise<unknown[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.filter((event) => event.workflowTaskFailedEventAttributes);
}

/** Waits until the run stands at the named gate. */
export async function atGate(handle: WorkflowHandle, gate: string): Promise<RunStatus> {
  return waitFor(async () => {
    const status = await handle.query(statusQuery);
    return status.pendingGate?.gate === gate ? status : undefined;
  }, `gate ${gate}`);
}

export const HISTORIES_DIR = join(ROOT, 'test', 'histories');
/** The workflow id each recorded shape ran under (its child workflows' ids derive from it). */
export const WORKFLOW_IDS_FILE = 'workflow-ids.json';

/**
 * With RECORD_HISTORIES=1 (`npm run record-histories`), saves the run's history under test/histories so the
 * replay test keeps every recorded workflow shape working across deploys. A shape already recorded is kept: it
 * stands for runs started by older code, which today's code must still replay.
 */
export async function recordHistory(handle: WorkflowHandle, shape: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1' || existsSync(join(HISTORIES_DIR, `${shape}.json`))) return;
  // The temporal CLI's export is the canonical JSON form that historyFromJSON reads.
  const json = execFileSync(inject('temporalBinary'), ['workflow', 'show', '--workflow-id', handle.workflowId, '--address', inject('temporalAddress'), '--output', 'json'], {
    encoding: 'utf8',
  });
  writeFileSync(join(HISTORIES_DIR, `${shape}.json`), json);
  const idsFile = join(HISTORIES_DIR, WORKFLOW_IDS_FILE);
  const ids = existsSync(idsFile) ? (JSON.parse(readFileSync(idsFile, 'utf8')) as Record<string, string>) : {};
  writeFileSync(idsFile, `${JSON.stringify({ ...ids, [shape]: handle.workflowId }, null, 2)}\n`);
}

/** The lab plan with quick retries, so tests of failures do not wait out production back-offs. */
export function quickRetries(plan: UpgradePlan): UpgradePlan {
  const fast = { maxAttempts: 2, initialInterval: '100ms', backoff: 1, maxInterval: '100ms' };
  return {
    ...plan,
    roles: Object.fromEntries(
      Object.entries(plan.roles).map(([name, role]) => [
        name,
        { ...role, steps: Object.fromEntries(Object.entries(role.steps).map(([step, command]) => [step, command && { ...command, retry: fast }])) },
      ]),
    ) as UpgradePlan['roles'],
    database: Object.fromEntries(Object.entries(plan.database).map(([key, value]) => [key, typeof value === 'object' && 'retry' in value ? { ...value, retry: fast } : value])) as UpgradePlan['database'],
  };
}

/** Waits until the run waits for an operator. */
export async function atGuidedFailure(handle: WorkflowHandle): Promise<RunStatus> {
  return waitFor(async () => {
    const status = await handle.query(statusQuery);
    return status.awaitingOperator ? status : undefined;
  }, 'the guided failure');
}

/**
 * Starts `plan` on a fresh worker for `lab`, approves the gates it stops at first (by default just beforeOffline),
 * then hands the run to `body`.
 */
export async function approvedRun(
  client: Client,
  plan: UpgradePlan,
  lab: string,
  body: (handle: WorkflowHandle<typeof upgradeFleet>) => Promise<void>,
  options: { gates?: string[]; approver?: string } = {},
): Promise<void> {
  const { worker, taskQueue, close } = await labWorker(lab);
  try {
    await worker.runUntil(async () => {
      const handle = await client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
      for (const gate of options.gates ?? ['beforeOffline']) {
        await atGate(handle, gate);
        await handle.executeUpdate(approveUpdate, { args: [{ approver: options.approver ?? 'alice', gate }] });
      }
      await body(handle);
    });
  } finally {
    await close();
  }
}

/**
 * Everything a history holds, as text: strings as they are and every byte array (payloads) decoded, so a value
 * hidden in a payload's bytes is found as surely as one in a message.
 */
export function allText(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const item of value) allText(item, out);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) allText(item, out);
  return out;
}

/** A worker in its own process, as in production, so it can be killed for real. */
export function workerProcess(env: Record<string, string>, args: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'cutover.js'), 'worker', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes('polling task queue')) resolve(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
    child.once('exit', (code) => reject(new Error(`worker exited (${code}):\n${output}`)));
  });
}
