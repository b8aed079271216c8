/**
 * A database task never runs twice at once: the worker is killed with SIGKILL while the backup runs, and the run
 * that a new worker resumes takes the backup its spawner finished instead of starting a second one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { LAB_BIN, PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveUpdate, retryUpdate, rollbackUpdate, statusQuery } from '../../workflows/messages';
import type { UpgradePlan } from '../../core/plan';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { startSshFleet } from '../sshd';
import { approvedRun, atGate, atGuidedFailure, freshLab, labPlan, quickRetries, recordHistory, uniqueId, useTemporalClient, waitFor, workerProcess } from '../helpers';

const temporal = useTemporalClient();

/**
 * A worker in its own process on a fresh task queue and state directory, to be killed with SIGKILL and replaced
 * mid-run; and the run started on it, past its beforeOffline gate.
 */
async function workerToKill(lab: string, name: string, extraEnv: Record<string, string> = {}) {
  const taskQueue = uniqueId(name);
  const state = mkdtempSync(join(tmpdir(), 'cutover-state-'));
  const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: lab, CUTOVER_STATE_DIR: state, ...extraEnv };
  const first = await workerProcess(env);
  let second: Awaited<ReturnType<typeof workerProcess>> | undefined;
  return {
    state,
    async startPastGate(plan: UpgradePlan) {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(name), args: [plan] });
      await atGate(handle, 'beforeOffline');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
      return handle;
    },
    /** SIGKILL, then a new worker on the same queue and state directory. */
    async replace() {
      first.kill('SIGKILL');
      second = await workerProcess(env);
    },
    stop() {
      first.kill('SIGKILL');
      second?.kill('SIGTERM');
    },
  };
}

/** Whether a command line containing `text` runs on this machine. */
function running(text: string): boolean {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').some((line) => line.includes(text));
}

it('a backup that uses a secret, whose worker is killed with SIGKILL, runs once: the retry waits for it and takes its result; the journal holds no secret', async () => {
  const lab = freshLab({ hosts: 3 });
  labFault(lab, 'db', 'backup', { delaySeconds: 4 });
  const lab3 = labPlan(hostIds(PROFILES.appv!, 3));
  // A backup that logs in with a password, and prints it: the journal must not keep that output.
  const secret = `pa55-${randomUUID()}`;
  const backup = { ...lab3.database.backup!, run: 'echo logging in with {{secret:env:CUTOVER_SECRET_DB}}; labhost db backup {{backup}}' };
  const plan = { ...lab3, database: { ...lab3.database, backup } };
  const workers = await workerToKill(lab, 'db-kill9', { CUTOVER_SECRET_DB: secret });
  const { state } = workers;
  const handle = await workers.startPastGate(plan);
  // The backup's command runs (the lab's delay holds it for 4 s): the worker goes, its spawner finishes the backup.
  await waitFor(async () => (running(`labhost db backup ${plan.fleet}-before-`) ? true : undefined), 'the backup to run');
  await workers.replace();
  try {
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect((await handle.query(statusQuery)).phase).toBe('completed');
    // Recorded before the plan was normalized in an activity: a run of the code before that change.
    await recordHistory(handle, 'database-task-after-lost-worker');
  } finally {
    workers.stop();
  }
  const backups = labOps(lab).filter((op) => op.host === 'db' && op.op.startsWith('backup'));
  // One backup started (the delay's line) and finished: the retry did not start a second.
  expect(backups.map((op) => op.result)).toEqual(['fault', 'ok']);
  // Journaled, without its output: no file the workers kept holds the secret.
  const grep = (text: string) => spawnSync('grep', ['-rlF', text, state], { encoding: 'utf8' }).stdout;
  expect(grep('"event":"done"')).toContain('db-');
  expect(grep(secret)).toBe('');
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
}, 120_000);

it('a backup over ssh whose worker is killed with SIGKILL runs once: the retry waits while the database says it runs, then takes it, as the database says it finished', async () => {
  const hosts = hostIds(PROFILES.appv!, 3);
  const lab = freshLab({ hosts: 3 });
  const fleet = await startSshFleet(hosts, { PATH: `${LAB_BIN}:/usr/local/bin:/usr/bin:/bin`, CUTOVER_LAB_DIR: lab });
  const base = labPlan(hosts);
  const plan = quickRetries({ ...base, hosts: base.hosts.map((host) => ({ ...host, transport: fleet.transport(host.id) })) });
  // Held for 12 s by the lab: past the kill, the 5 s heartbeat timeout and a new worker's start, with room for a
  // loaded machine.
  labFault(lab, 'db', 'backup', { delaySeconds: 12 });
  const workers = await workerToKill(lab, 'db-ssh-kill9');
  try {
    const handle = await workers.startPastGate(plan);
    // The backup runs under the database host's sshd: the worker goes, the remote backup goes on.
    await waitFor(async () => (labOps(lab).some((op) => op.host === 'db' && op.op.startsWith('backup') && op.result === 'fault') ? true : undefined), 'the backup to run');
    labFault(lab, 'db', 'backup', 'clear');
    await workers.replace();
    expect((await handle.result()).outcome).toBe('completed');
  } finally {
    workers.stop();
    await fleet.stop();
  }
  // What the database was asked and did: the retry found the first backup under way and waited (as often as it
  // asked), then asked whether it had finished, and backed up no more. Nothing was refused: the lab refuses a backup
  // beside another.
  const seen = labOps(lab)
    .filter((op) => op.host === 'db' && /^(backup|under-way|finished)/.test(op.op))
    .map((op) => `${op.op.split(' ')[0]} ${op.result}${op.op.startsWith('backup') ? '' : ` ${op.message}`}`)
    .filter((line, index, lines) => line !== lines[index - 1]);
  expect(seen).toEqual(['under-way ok 0', 'backup fault', 'under-way ok 1', 'backup ok', 'under-way ok 0', 'finished ok 1']);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
}, 120_000);

it('an empty checksum is refused before the backup, and the operator is asked', async () => {
  const lab = freshLab({ hosts: 2 });
  const plan = labPlan(hostIds(PROFILES.appv!, 2));
  // A checksum command that prints nothing: an empty line equals an empty line, and would prove any restore.
  const silent = { ...plan, database: { ...plan.database, checksum: { ...plan.database.checksum!, run: 'echo' } } };
  await approvedRun(temporal.client, silent, lab, async (handle) => {
    const { awaitingOperator } = await atGuidedFailure(handle);
    expect(awaitingOperator?.reason).toContain('the checksum command printed nothing');
    await handle.terminate('the test is over');
  });
  expect(labOps(lab).filter((op) => op.host === 'db')).toEqual([]);
});

it('a backup that does not read back as taken stops the run before the schema gate, with nothing upgraded; a retry takes a good one', async () => {
  const lab = freshLab({ hosts: 2 });
  const checksumBefore = labStatus(lab).database.checksum;
  // The backup command succeeds, but the file it leaves is cut short: only reading it back shows it.
  labFault(lab, 'db', 'backup', 'truncate');
  const plan = labPlan(hostIds(PROFILES.appv!, 2));
  const gated = { ...plan, gates: { ...plan.gates, beforeSchemaUpgrade: { instructions: 'the backup is verified', approvers: [], quorum: 1 } } };
  await approvedRun(temporal.client, gated, lab, async (handle) => {
    const { awaitingOperator, backup, decisions } = await atGuidedFailure(handle);
    expect(awaitingOperator?.reason).toContain('backup verification on appv-01: the backup reads back with checksum');
    expect(awaitingOperator?.reason).toContain(`not the database's ${checksumBefore} taken before it`);
    // Not the rollback's backup, and the schema gate never opened.
    expect(backup).toBeUndefined();
    expect(decisions.map((d) => d.gate)).toEqual(['beforeOffline']);
    const state = labStatus(lab);
    expect(state.database).toEqual({ schema: '4.1-SP1', checksum: checksumBefore });
    expect(state.hosts.every((h) => h.version === '4.1-SP1')).toBe(true);
    expect(labOps(lab).filter((op) => op.op.startsWith('install'))).toEqual([]);

    await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
    await atGate(handle, 'beforeSchemaUpgrade');
    expect((await handle.query(statusQuery)).backup?.checksum).toBe(checksumBefore);
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
    expect((await handle.result()).outcome).toBe('completed');
    await recordHistory(handle, 'backup-verified');
  });
  expect(labOps(lab).filter((op) => op.host === 'db' && /^(backup|verify-backup)/.test(op.op)).map((op) => `${op.op.split(' ')[0]} ${op.result}`)).toEqual([
    'backup fault',
    'backup ok',
    'verify-backup ok',
    'backup ok',
    'verify-backup ok',
  ]);
  expect(labStatus(lab).hosts.every((h) => h.version === '4.5')).toBe(true);
});

it('a rollback whose worker is killed with SIGKILL during the restore restores once and ends fully back', async () => {
  const lab = freshLab({ hosts: 3 });
  const checksumBefore = labStatus(lab).database.checksum;
  labFault(lab, 'appv-03', 'install', 'always');
  const plan = quickRetries(labPlan(hostIds(PROFILES.appv!, 3)));
  const workers = await workerToKill(lab, 'rollback-kill9');
  try {
    const handle = await workers.startPastGate(plan);
    await atGuidedFailure(handle);
    labFault(lab, 'appv-03', 'install', 'clear');
    labFault(lab, 'db', 'restore', { delaySeconds: 4 });
    await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'olga' }] });
    await waitFor(async () => (running(`labhost db restore ${plan.fleet}-before-`) ? true : undefined), 'the restore to run');
    await workers.replace();
    expect((await handle.result()).outcome).toBe('rolled-back');
  } finally {
    workers.stop();
  }
  expect(labOps(lab).filter((op) => op.host === 'db' && op.op.startsWith('restore')).map((op) => op.result)).toEqual(['fault', 'ok']);
  const state = labStatus(lab);
  expect(state.database).toEqual({ schema: '4.1-SP1', checksum: checksumBefore });
  expect(state.hosts.every((h) => h.version === '4.1-SP1' && h.services.AppVServer === 'running' && h.online)).toBe(true);
}, 120_000);
