/**
 * The undo log, the saga's record: every step's undo is written before the step runs, because a step that was cut
 * off (cancellation, a lost worker, a failure half-way) may have changed the host too; undos are safe to run on an
 * unchanged host. Rollback (core/rollback.ts) replays it in the order a shared database needs. Pure.
 */
import type { StepBatch } from './planner';
import type { UndoRecord, UndoSummary } from './status';

export class UndoLog {
  readonly records: UndoRecord[] = [];
  /** Undos already in the log (`step/host`), so a retried batch does not record them twice. */
  private readonly recorded = new Set<string>();

  /** Records the undo of each host of `batch` that has one and has none recorded yet, before the batch runs. */
  beforeBatch(phase: string, batch: StepBatch): void {
    const undoable = batch.tasks.filter((task) => task.undo && !this.recorded.has(`${batch.step}/${task.host}`));
    if (undoable.length === 0) return;
    for (const task of undoable) this.recorded.add(`${batch.step}/${task.host}`);
    this.records.push({
      phase,
      step: batch.step,
      hosts: undoable.map((task) => task.host),
      undo: undoable.map((task) => ({ host: task.host, command: task.undo as string })),
    });
  }

  /** The backup is undone by restoring it; its checksum proves the restore. */
  backup(phase: string, name: string, checksum: string): void {
    this.records.push({ phase, step: 'backup', hosts: [], undo: { restoreBackup: name, checksum } });
  }

  /** What the status shows: each record's step and host count, without the commands (they grow with the fleet). */
  summary(): UndoSummary[] {
    return this.records.map((record) => ({
      phase: record.phase,
      step: record.step,
      hosts: record.hosts.length,
      ...(Array.isArray(record.undo) ? {} : { restoreBackup: record.undo.restoreBackup }),
    }));
  }
}
