/** Rollback planning, pure: the undo log replayed in the order a shared database requires. */
import { describe, expect, it } from 'vitest';
import { planRun } from '../../core/planner';
import { planRollback, type RollbackStep } from '../../core/rollback';
import type { UndoRecord } from '../../core/status';
import { validExample } from './fixtures';

const BACKUP = 'appv-lab-before-4.5-run1';

/** The undo log a run leaves after completing the given forward steps (in the example's order). */
function undoLogAfter(steps: string[], sources?: Record<string, string>): UndoRecord[] {
  const run = planRun(validExample(), { backup: BACKUP, ...(sources ? { sources } : {}) });
  const log: UndoRecord[] = [];
  const batches = [...run.phases.drain.batches, ...run.phases.stop.batches, ...run.phases.upgradeOwner.batches, ...run.phases.upgradeRest.batches];
  for (const step of steps) {
    if (step === 'backup') {
      log.push({ phase: 'backing-up', step: 'backup', hosts: [], undo: { restoreBackup: BACKUP, checksum: 'abc' } });
      continue;
    }
    const [name, scope] = step.split(':');
    const ownerBatch = (b: (typeof batches)[number]) => b.tasks.length === 1 && b.tasks[0]?.host === 'appv-01';
    const inScope = (b: (typeof batches)[number]) => scope === 'all' || (scope === 'owner') === ownerBatch(b);
    for (const batch of batches.filter((b) => b.step === name && inScope(b))) {
      log.push({ phase: 'x', step: batch.step, hosts: batch.tasks.map((t) => t.host), undo: batch.tasks.map((t) => ({ host: t.host, command: t.undo as string })) });
    }
  }
  return log;
}

const shape = (steps: RollbackStep[]) =>
  steps.map((step) => (step.kind === 'restore' ? `restore ${step.restore.command} expecting ${step.expectedChecksum}` : `${step.name}: ${step.batches.flatMap((b) => b.tasks.map((t) => t.command)).join(' | ')}`));

describe('planRollback', () => {
  it('after the schema upgrade: stop all, restore, downgrade, start, verify the source, online', () => {
    const steps = planRollback(validExample(), undoLogAfter(['drain:all', 'stop:all', 'backup', 'upgrade:owner', 'start:owner', 'upgrade:rest']));
    expect(shape(steps)).toEqual([
      'rollback-stop: labhost appv-01 stop | labhost appv-02 stop | labhost appv-03 stop | labhost appv-04 stop',
      `restore labhost db restore ${BACKUP} expecting abc`,
      'downgrade: labhost appv-04 install 4.1-SP1 | labhost appv-03 install 4.1-SP1 | labhost appv-02 install 4.1-SP1 | labhost appv-01 install 4.1-SP1',
      'rollback-start: labhost appv-01 start | labhost appv-02 start | labhost appv-03 start | labhost appv-04 start',
      'rollback-verify: labhost appv-01 verify 4.1-SP1 | labhost appv-02 verify 4.1-SP1 | labhost appv-03 verify 4.1-SP1 | labhost appv-04 verify 4.1-SP1',
      'rollback-online: labhost appv-01 online | labhost appv-02 online | labhost appv-03 online | labhost appv-04 online',
    ]);
  });

  it('before any backup: only what was done is undone, and the database is left alone', () => {
    const log = undoLogAfter(['drain:all']).map((record) => ({ ...record, hosts: record.hosts.slice(0, 2), undo: (record.undo as { host: string; command: string }[]).slice(0, 2) }));
    expect(shape(planRollback(validExample(), log))).toEqual(['rollback-online: labhost appv-01 online | labhost appv-02 online']);
  });

  it('returns each host to the version preflight found on it, and verifies that one', () => {
    const sources = { 'appv-01': '4.1-SP1', 'appv-02': '4.1', 'appv-03': '4.1-SP1', 'appv-04': '4.1' };
    const steps = planRollback(validExample(), undoLogAfter(['drain:all', 'stop:all', 'backup', 'upgrade:owner', 'start:owner', 'upgrade:rest'], sources), sources);
    expect(shape(steps).filter((line) => /^(downgrade|rollback-verify)/.test(line))).toEqual([
      'downgrade: labhost appv-04 install 4.1 | labhost appv-03 install 4.1-SP1 | labhost appv-02 install 4.1 | labhost appv-01 install 4.1-SP1',
      'rollback-verify: labhost appv-01 verify 4.1-SP1 | labhost appv-02 verify 4.1 | labhost appv-03 verify 4.1-SP1 | labhost appv-04 verify 4.1',
    ]);
  });

  it('a new-database upgrade restores nothing: every service stops, each host goes back to the old version and database', () => {
    const plan = validExample((raw) => {
      delete raw.database.restore;
      Object.assign(raw.database, { strategy: 'new-database', name: 'NEWDB', previous: 'OLDDB' });
      raw.database.verify.run = 'labhost db verify {{target}} --database {{database}}';
      for (const role of ['management-server', 'db-owner']) raw.roles[role].steps.upgrade.undo = 'labhost {{host}} install {{source}} --database {{previousDatabase}}';
      raw.roles['management-server'].steps.verify.run = 'labhost {{host}} verify {{version}} --database {{database}}';
    });
    const run = planRun(plan, { backup: BACKUP });
    const upgraded = [...run.phases.upgradeOwner.batches, ...run.phases.upgradeRest.batches].filter((b) => b.step === 'upgrade' || b.step === 'start');
    const log: UndoRecord[] = [...run.phases.drain.batches, ...run.phases.stop.batches, ...upgraded].map((batch) => ({
      phase: 'x',
      step: batch.step,
      hosts: batch.tasks.map((t) => t.host),
      undo: batch.tasks.map((t) => ({ host: t.host, command: t.undo as string })),
    }));
    const lines = shape(planRollback(plan, log));
    expect(lines.map((line) => line.split(':')[0])).toEqual(['rollback-stop', 'downgrade', 'rollback-start', 'rollback-verify', 'rollback-online']);
    expect(lines[1]).toContain('labhost appv-04 install 4.1-SP1 --database OLDDB');
    expect(lines[3]).toContain('labhost appv-02 verify 4.1-SP1 --database OLDDB');
  });

  it('an empty undo log needs no rollback at all', () => {
    expect(planRollback(validExample(), [])).toEqual([]);
  });
});
