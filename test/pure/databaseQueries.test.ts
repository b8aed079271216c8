/** What a backup or restore asks the database first, so that it never runs beside another, nor twice. */
import { describe, expect, it } from 'vitest';
import { validatePlan } from '../../core/plan';
import { planRun } from '../../core/planner';
import { FINISHED_COUNTS, UNDER_WAY_COUNTS, UNDER_WAY_POLL_MS, askingBudgetMs, countAnswer } from '../../core/databaseQueries';
import { type RawPlan, rawExample, refusal, validExample } from './fixtures';

/** The example plan with its hosts reached over ssh and no database.underWay. */
function overSsh(raw: RawPlan): void {
  delete raw.database.underWay;
  raw.transport = { kind: 'ssh', user: 'svc-cutover', key: 'file:/etc/cutover/id_ed25519', knownHosts: '/etc/cutover/known_hosts' };
}

describe('database.underWay and finished', () => {
  it('is read as a count, as sqlcmd prints it right-aligned', () => {
    expect(countAnswer('0', 'database.underWay', UNDER_WAY_COUNTS)).toEqual({ count: 0 });
    expect(countAnswer('          2', 'database.underWay', UNDER_WAY_COUNTS)).toEqual({ count: 2 });
  });

  it('is refused with what it must print when its last line is not a count', () => {
    for (const line of ['', '(1 rows affected)', 'busy', '-1', '1.5']) {
      expect(countAnswer(line, 'database.backup.finished', FINISHED_COUNTS), line).toEqual({
        problem: expect.stringContaining('is not a count: database.backup.finished must print how many times this backup or restore has finished, 0 when none'),
      });
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

  it("lengthens a backup's activity by the wait and the questions, so the backup itself keeps its whole timeout", () => {
    const plan = validExample((raw) => (raw.database.backup.finished = { run: 'labhost db finished backup {{backup}}', timeout: '30s' }));
    const backup = planRun(plan, { backup: 'b' }).phases.backup.database.find((task) => task.action === 'backup')!;
    expect(backup.finished).toEqual({ command: 'labhost db finished backup b', timeoutMs: 30_000 });
    expect(askingBudgetMs(backup)).toBe(600_000 + 60_000 + UNDER_WAY_POLL_MS + 30_000);
    expect(askingBudgetMs({ ...backup, underWay: undefined, finished: undefined })).toBe(0);
  });
});
