/**
 * What the machine's `runPhase` and `runRollback` do: a phase's database commands and batches of host steps, the
 * prerequisites at the end of preflight, and rollback by compensation. Each returns the event the machine takes next.
 */
import { isCancellation, patched } from '@temporalio/workflow';
import { backupReadBackProblem, checksumProblem } from '../core/checksum';
import type { Failure, UpgradeEvent } from '../core/machine';
import { type PhaseName, type SingleHostTask, planRun, sourcesChangePlan } from '../core/planner';
import { procedurePhase } from '../core/procedure';
import { OFFLINE_GATE, offlineConfirmation } from '../core/operator';
import { planRollback } from '../core/rollback';
import { failureMessage, singleHostActivity } from './activities';
import type { FleetRun } from './fleetRun';
import { planOptions } from './versions';
import { type PhaseBatches, runPhaseBatches } from './phaseBatches';
import { waitAtGate } from './waits';

type FailedEvent = Extract<UpgradeEvent, { type: 'PHASE_FAILED' | 'ROLLBACK_FAILED' }>;

/** A single-host task that failed for good: the event that says so, its host and error for the operator. */
function taskFailed(type: FailedEvent['type'], prefix: string, task: SingleHostTask, error: unknown): FailedEvent {
  if (isCancellation(error)) throw error;
  const message = failureMessage(error);
  const failure: Failure = { hosts: [{ host: task.host, error: `database ${task.action} failed`, outputTail: message }] };
  return { type, reason: `${prefix}database ${task.action} on ${task.host} failed: ${message}`, failure };
}

/**
 * Why a checksum proves nothing (core/checksum.ts), or undefined. Runs from before this check took any checksum, so
 * they replay; the marker is written only when a checksum is refused.
 */
function refusedChecksum(run: FleetRun, checksum: string): string | undefined {
  const problem = checksumProblem(checksum, run.plan.database.checksumPattern);
  return problem && patched('checksum-proof') ? problem : undefined;
}

function checksumFailed(type: FailedEvent['type'], prefix: string, task: SingleHostTask, problem: string, error = 'the checksum proves nothing'): FailedEvent {
  const failure: Failure = { hosts: [{ host: task.host, error, outputTail: problem }] };
  return { type, reason: `${prefix}database ${task.action === 'verifyBackup' ? 'backup verification' : 'checksum'} on ${task.host}: ${problem}`, failure };
}

async function runTask(run: FleetRun, task: SingleHostTask) {
  return singleHostActivity(task, run.heartbeatTimeoutMs)(task);
}

/** Preflight's last part: each prerequisite checked by its command, or confirmed by a person. */
async function checkPrerequisites(run: FleetRun): Promise<UpgradeEvent> {
  for (const prerequisite of run.planned.prerequisites) {
    if ('confirm' in prerequisite) {
      const decision = await waitAtGate(run, `prerequisite:${prerequisite.name}`, prerequisite.confirm);
      if (decision.type === 'GATE_REJECTED') return decision;
      continue;
    }
    try {
      const outcome = await runTask(run, prerequisite.check);
      run.record(`prerequisite:${prerequisite.name}`, prerequisite.check.host, outcome.outputTail);
    } catch (error) {
      return taskFailed('PHASE_FAILED', `prerequisite ${prerequisite.name} is not met: `, prerequisite.check, error);
    }
  }
  return { type: 'PHASE_SUCCEEDED' };
}

/**
 * The rehearsal, before anything changes: behind its gate, a backup of its own, then the schema upgrade tried on its
 * copy. Rejecting the gate, or a failed rehearsal, ends the run with nothing touched.
 */
async function rehearse(run: FleetRun): Promise<UpgradeEvent> {
  if (run.planned.rehearsal.length === 0) return { type: 'PHASE_SUCCEEDED' };
  const decision = await waitAtGate(run, 'beforeRehearsal');
  if (decision.type === 'GATE_REJECTED') return decision;
  for (const task of run.planned.rehearsal) {
    try {
      const outcome = await runTask(run, task);
      if (task.action === 'rehearse') run.record('rehearse', task.host, outcome.outputTail);
    } catch (error) {
      return taskFailed('PHASE_FAILED', 'the rehearsal failed, nothing was changed: ', task, error);
    }
  }
  return { type: 'PHASE_SUCCEEDED' };
}

/**
 * The phase's database commands in order: the checksum, the backup, its verification, and the rehearsal behind its
 * own gate. A backup that is verified becomes the rollback's only once it read back as taken: until then the
 * database is unchanged, and a rollback restores nothing.
 */
async function runDatabaseTasks(run: FleetRun, phase: PhaseName): Promise<UpgradeEvent | undefined> {
  let checksum = '';
  const tasks = run.planned.phases[phase].database;
  const recordedAfter = tasks.some((task) => task.action === 'verifyBackup') ? 'verifyBackup' : 'backup';
  for (const task of tasks) {
    if (task.action === 'rehearse' && run.plan.gates.beforeRehearsal && !run.approvedWithin('beforeRehearsal')) {
      const decision = await waitAtGate(run, 'beforeRehearsal');
      if (decision.type === 'GATE_REJECTED') return decision;
      run.rememberApproval('beforeRehearsal');
    }
    let result;
    try {
      result = await runTask(run, task);
    } catch (error) {
      return taskFailed('PHASE_FAILED', `${procedurePhase(phase).title}: `, task, error);
    }
    if (task.action === 'checksum') {
      checksum = result.result;
      const problem = refusedChecksum(run, checksum);
      if (problem) return checksumFailed('PHASE_FAILED', `${procedurePhase(phase).title}: `, task, problem);
    }
    if (task.action === 'verifyBackup') {
      const problem = backupReadBackProblem(result.result, checksum, run.plan.database.checksumPattern);
      if (problem) return checksumFailed('PHASE_FAILED', `${procedurePhase(phase).title}: `, task, problem, 'the backup does not read back as taken');
    }
    if (task.action === recordedAfter) run.recordBackup(run.planned.backup, checksum);
    if (task.action === 'rehearse') run.record('rehearse', task.host, result.outputTail);
  }
  return undefined;
}

/**
 * Hosts that failed preflight are left out of the run only once someone confirms they are offline or decommissioned
 * (core/operator.ts): the approval is the recorded confirmation. Undefined when they cannot be left out.
 */
async function confirmedOffline(run: FleetRun, failure: Failure): Promise<UpgradeEvent | undefined> {
  const gate = run.versions.confirmsOfflineSkips ? offlineConfirmation(run.plan, failure.hosts) : undefined;
  if (!gate) return undefined;
  const decision = await waitAtGate(run, OFFLINE_GATE, gate);
  // Neither drained nor stopped, so the rollback has nothing of theirs to undo either.
  if (decision.type === 'GATE_APPROVED') run.skip(failure.hosts.map((h) => h.host), true);
  return decision;
}

/** The gate before each wave of the remaining hosts, once per wave: a retried phase does not ask again. */
function waveGate(run: FleetRun): Pick<PhaseBatches, 'beforeWave'> {
  if (!run.plan.gates.beforeEachBatch) return {};
  return {
    beforeWave: async (wave) => {
      if (run.approvedWithin('beforeEachBatch', wave)) return undefined;
      const decision = await waitAtGate(run, 'beforeEachBatch');
      if (decision.type === 'GATE_REJECTED') return decision;
      run.rememberApproval('beforeEachBatch', wave);
      return undefined;
    },
  };
}

export async function runPhase(run: FleetRun, phase: PhaseName): Promise<UpgradeEvent> {
  const stopped = await runDatabaseTasks(run, phase);
  if (stopped) return stopped;
  const outcome = await runPhaseBatches(run, run.planned.phases[phase].batches, {
    label: phase,
    skipping: run.skipped,
    threshold: run.plan.execution.failureThreshold,
    ...waveGate(run),
  });
  if ('event' in outcome) return outcome.event;
  if ('problem' in outcome) {
    const confirmed = phase === 'preflight' ? await confirmedOffline(run, outcome.failure) : undefined;
    if (confirmed?.type !== 'GATE_APPROVED') return confirmed ?? { type: 'PHASE_FAILED', reason: `${procedurePhase(phase).title}: ${outcome.problem}`, failure: outcome.failure };
  }
  if (phase === 'preflight') {
    // Planning a 10,000-host run takes about 0.3 s of the workflow task: only again when it would change.
    if (run.versions.perHostVersions && sourcesChangePlan(run.plan, run.status.versions)) {
      run.planned = planRun(run.plan, { backup: run.planned.backup, ...planOptions(run.plan, run.versions), ...(run.status.versions ? { sources: run.status.versions } : {}) });
    }
    const unmet = await checkPrerequisites(run);
    return unmet.type === 'PHASE_SUCCEEDED' ? rehearse(run) : unmet;
  }
  return { type: 'PHASE_SUCCEEDED' };
}

/** Restores the database from this run's backup, once, and proves it by the checksum. */
async function restoreDatabase(run: FleetRun, step: Extract<ReturnType<typeof planRollback>[number], { kind: 'restore' }>): Promise<UpgradeEvent | undefined> {
  if (run.restored) return undefined;
  let checksum: string;
  try {
    await runTask(run, step.restore);
    checksum = (await runTask(run, step.checksum)).result;
  } catch (error) {
    return taskFailed('ROLLBACK_FAILED', 'rollback: ', step.restore, error);
  }
  const problem = refusedChecksum(run, checksum);
  if (problem) return checksumFailed('ROLLBACK_FAILED', 'rollback: ', step.checksum, problem);
  if (checksum !== step.expectedChecksum) {
    const failure: Failure = { hosts: [{ host: step.restore.host, error: 'restored database differs from the backup', outputTail: checksum }] };
    return { type: 'ROLLBACK_FAILED', reason: `rollback: the restored database's checksum ${checksum} is not the backup's ${step.expectedChecksum}`, failure };
  }
  run.restored = true;
  return undefined;
}

/** Compensation, in the order a shared database needs (core/rollback.ts). */
export async function runRollback(run: FleetRun): Promise<UpgradeEvent> {
  for (const step of planRollback(run.plan, run.undoLog.records, run.status.versions)) {
    if (step.kind === 'restore') {
      const failed = await restoreDatabase(run, step);
      if (failed) return failed;
      continue;
    }
    const outcome = await runPhaseBatches(run, step.batches, { label: step.name, skipping: run.rollbackSkipped, threshold: 0 });
    if ('problem' in outcome) return { type: 'ROLLBACK_FAILED', reason: `rollback: ${outcome.problem}`, failure: outcome.failure };
  }
  return { type: 'ROLLBACK_SUCCEEDED' };
}
