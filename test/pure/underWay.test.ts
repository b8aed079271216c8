/** database.underWay: what a backup or restore asks first, so that it never runs beside another. */
import { describe, expect, it } from 'vitest';
import { validatePlan } from '../../core/plan';
import { planRun } from '../../core/planner';
import { UNDER_WAY_POLL_MS, underWayAnswer, underWayBudgetMs } from '../../core/underWay';
import { type RawPlan, rawExample, refusal, validExample } from './fixtures';

/** The example plan with its hosts reached over ssh and no database.underWay. */
function overSsh(raw: RawPlan): void {
  delete raw.database.underWay;
  raw.transport = { kind: 'ssh', user: 'svc-cutover', key: 'file:/etc/cutover/id_ed25519', knownHosts: '/etc/cutover/known_hosts' };
}

describe('database.underWay', () => {
  it('is read as a count, as sqlcmd prints it right-aligned', () => {
    expect(underWayAnswer('0')).toEqual({ count: 0 });
    expect(underWayAnswer('          2')).toEqual({ count: 2 });
  });

  it('is refused with what it must print when its last line is not a count', () => {
    for (const line of ['', '(1 rows affected)', 'busy', '-1', '1.5']) {
      expect(underWayAnswer(line), line).toEqual({ problem: expect.stringContaining('is not a count: database.underWay must print how many backups or restores') });
    }
  });

  it('is required where the database host is reached over ssh, and only there', () => {
    const { message, issues } = refusal(overSsh);
    expect(issues.map((issue) => issue.path)).toEqual([['database', 'underWay']]);
    expect(message).toContain('the database commands run on appv-01 over ssh, where the worker keeps no journal of them: add database.underWay');
    expect(message).toContain('→ at database.underWay');
    // Local: the worker's journal knows what its commands did. Over ssh with underWay: the database tells.
    expect(validExample((raw) => delete raw.database.underWay).database.underWay).toBeUndefined();
    expect(validExample((raw) => (overSsh(raw), (raw.database.underWay = { run: 'labhost db under-way' }))).database.underWay).toEqual({ run: 'labhost db under-way', timeout: '1m' });
  });

  it('is not asked of a run from before plans were normalized, which replays the validation it started with', () => {
    const raw = rawExample();
    overSsh(raw);
    expect(validatePlan(raw, { asBeforeNormalized: true }).ok).toBe(true);
  });

  it('takes a command and its timeout only', () => {
    const { issues } = refusal((raw) => (raw.database.underWay = { run: 'labhost db under-way', retry: { maxAttempts: 3 } }));
    expect(issues.map((issue) => issue.path)).toEqual([['database', 'underWay']]);
  });

  it("lengthens a backup's activity by the wait, so the backup itself keeps its whole timeout", () => {
    const backup = planRun(validExample(), { backup: 'b' }).phases.backup.database.find((task) => task.action === 'backup')!;
    expect(underWayBudgetMs(backup)).toBe(600_000 + 60_000 + UNDER_WAY_POLL_MS);
    expect(underWayBudgetMs({ ...backup, underWay: undefined })).toBe(0);
  });
});
