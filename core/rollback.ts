/**
 * Rollback by compensation, ordered for a shared database. Every completed step recorded its undo (the undo log);
 * replaying those blindly in reverse would downgrade the DB owner while the schema is still new. So the undos are
 * replayed in the order the procedures require: users off again, every service stopped (a restore needs it), the
 * database restored from this run's backup and its checksum compared (in-place; a new-database upgrade left the old
 * database intact, so nothing is restored), upgraded hosts returned to the version each started at (and pointed
 * back at the old database), services started, the old version verified, hosts back online.
 */
import { type Host, type HostStepName, type UpgradePlan, renderStep } from './plan';
import { type HostSources, type SingleHostTask, type RollbackStepName, type StepBatch, hostValues, makeBatches, rollbackDatabaseTasks, templateValues } from './planner';
import type { UndoRecord } from './status';

export type RollbackStep =
  | { kind: 'hosts'; name: RollbackStepName; batches: StepBatch[] }
  | { kind: 'restore'; restore: SingleHostTask; checksum: SingleHostTask; expectedChecksum: string };

function undoCommands(undoLog: UndoRecord[], step: HostStepName): Map<string, string> {
  const commands = new Map<string, string>();
  for (const record of undoLog) {
    if (record.step !== step || !Array.isArray(record.undo)) continue;
    for (const { host, command } of record.undo) commands.set(host, command);
  }
  return commands;
}

/** `sources`: each host's starting version, which its verify expects after the rollback (else the plan's source). */
export function planRollback(plan: UpgradePlan, undoLog: UndoRecord[], sources?: HostSources): RollbackStep[] {
  const hostsById = new Map(plan.hosts.map((host) => [host.id, host]));
  const backup = undoLog.flatMap((record) => (Array.isArray(record.undo) ? [] : [record.undo]))[0];
  // While rolling back, {{database}} is the database the hosts return to: the old one of a new-database upgrade.
  const base = templateValues(plan, backup?.restoreBackup ?? '', plan.source);
  const values = { ...base, database: base.previousDatabase };
  const steps: RollbackStep[] = [];

  const replay = (name: RollbackStepName, forward: HostStepName, policy: HostStepName, order: 'forward' | 'reverse' = 'forward') => {
    const commands = undoCommands(undoLog, forward);
    const hosts = [...commands.keys()].map((id) => hostsById.get(id) as Host);
    if (order === 'reverse') hosts.reverse();
    if (hosts.length > 0) {
      steps.push({ kind: 'hosts', name, batches: makeBatches(plan, name, policy, hosts, (host) => ({ command: commands.get(host.id) as string })) });
    }
  };
  const run = (name: RollbackStepName, step: HostStepName, hosts: Host[]) => {
    if (hosts.length === 0) return;
    steps.push({
      kind: 'hosts',
      name,
      batches: makeBatches(plan, name, step, hosts, (host, definition) => renderStep(definition, hostValues(values, host, sources, true))),
    });
  };

  replay('rollback-drain', 'online', 'drain');
  if (plan.database.strategy === 'new-database') {
    // The old database was never changed: no restore. Every service stops before the old version is reinstalled.
    if (undoCommands(undoLog, 'upgrade').size > 0) run('rollback-stop', 'stop', plan.hosts);
  } else if (backup) {
    run('rollback-stop', 'stop', plan.hosts);
    steps.push({ kind: 'restore', ...rollbackDatabaseTasks(plan, backup.restoreBackup), expectedChecksum: backup.checksum });
  }
  replay('downgrade', 'upgrade', 'upgrade', 'reverse');
  replay('rollback-start', 'stop', 'start');
  // Hosts that were stopped or upgraded: a console-only host has no stop, yet its downgrade is verified too.
  const touched = new Set([...undoCommands(undoLog, 'stop').keys(), ...undoCommands(undoLog, 'upgrade').keys()]);
  run('rollback-verify', 'verify', [...touched].map((id) => hostsById.get(id) as Host));
  replay('rollback-online', 'drain', 'online');
  return steps;
}
