/** Shared test plumbing: the real dev server from globalSetup, a fresh lab and task queue per test. */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { inject } from 'vitest';
import { parse } from 'yaml';
import { type UpgradePlan, validatePlan } from '../core/plan';
import { labUp, type LabUpOptions } from '../lab/lab';
import { createCutoverWorker } from '../worker/worker';

export const ROOT = join(__dirname, '..');

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundled once per test file (module state is per file under vitest). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: join(ROOT, 'workflows', 'index.ts'), logger: quietLogger });
  return bundle;
}

const quietLogger = { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never;

export async function testClient(): Promise<Client> {
  const connection = await Connection.connect({ address: inject('temporalAddress') });
  return new Client({ connection });
}

export function freshLab(options: LabUpOptions = {}): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'cutover-lab-')), 'lab');
  labUp(dir, options);
  return dir;
}

/** A worker on its own task queue, driving the given lab. */
export async function labWorker(labDir: string) {
  const taskQueue = `test-${randomUUID()}`;
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const worker = await createCutoverWorker({
    connection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    commandEnv: { CUTOVER_LAB_DIR: labDir },
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
