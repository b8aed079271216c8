/** planRun turns a validated plan into the exact phases and batches the workflow runs; formatPreview prints them. */
import { describe, expect, it } from 'vitest';
import { type RunPlan, type StepBatch, backupName, backupNamePreview, describeBatch, planRun, rollbackDatabaseTasks, sourcesChangePlan } from '../../core/planner';
import { formatPreview } from '../../core/preview';
import { PHASES } from '../../core/procedure';
import { fleetOf, validExample } from './fixtures';

const BACKUP = 'appv-lab-before-4.5-run1';

/** [step, host ids] per batch: the shape most ordering assertions care about. */
const shape = (batches: StepBatch[]) => batches.map((batch) => [batch.step, batch.tasks.map((task) => task.host)]);
const allBatches = (run: RunPlan) => PHASES.flatMap((phase) => run.phases[phase].batches);

describe('planRun', () => {
  it('upgrades the DB owner alone, with its own upgrade command, before anyone else', () => {
    const run = planRun(validExample(), { backup: BACKUP });
    expect(run.owner).toBe('appv-01');
    expect(shape(run.phases.upgradeOwner.batches)).toEqual([
      ['upgrade', ['appv-01']],
      ['start', ['appv-01']],
    ]);
    expect(run.phases.upgradeOwner.batches.map((b) => b.role)).toEqual(['db-owner', 'management-server']);
    expect(run.phases.upgradeOwner.batches[0]?.tasks[0]?.command).toBe('labhost appv-01 install 4.5 --upgrade-schema');
    expect(PHASES.indexOf('upgradeOwner')).toBeLessThan(PHASES.indexOf('upgradeRest'));
  });

  it('finds the owner wherever it is listed', () => {
    const plan = validExample((raw) => {
      raw.hosts[0].roles = ['management-server'];
      raw.hosts[2].roles = ['db-owner', 'management-server'];
    });
    const run = planRun(plan, { backup: BACKUP });
    expect(run.owner).toBe('appv-03');
    expect(shape(run.phases.upgradeOwner.batches)).toEqual([
      ['upgrade', ['appv-03']],
      ['start', ['appv-03']],
    ]);
    expect(shape(run.phases.upgradeRest.batches)).toEqual([
      ['upgrade', ['appv-01', 'appv-02', 'appv-04']],
      ['start', ['appv-01', 'appv-02', 'appv-04']],
    ]);
  });

  it('upgrades and starts every other host exactly once in upgradeRest, never the owner', () => {
    const run = planRun(fleetOf(7, (raw) => (raw.execution.batchSize = 3)), { backup: BACKUP });
    const rest = ['h2', 'h3', 'h4', 'h5', 'h6', 'h7'];
    for (const step of ['upgrade', 'start'] as const) {
      const hosts = run.phases.upgradeRest.batches.filter((b) => b.step === step).flatMap((b) => b.tasks.map((t) => t.host));
      expect(hosts).toEqual(rest);
    }
  });

  it('splits the rest into waves of batchSize, each upgraded then started', () => {
    const run = planRun(fleetOf(5, (raw) => (raw.execution.batchSize = 2)), { backup: BACKUP });
    expect(shape(run.phases.upgradeRest.batches)).toEqual([
      ['upgrade', ['h2', 'h3']],
      ['start', ['h2', 'h3']],
      ['upgrade', ['h4', 'h5']],
      ['start', ['h4', 'h5']],
    ]);
    // Fleet-wide steps are chunked by batchSize too, the last batch taking the remainder.
    expect(shape(run.phases.drain.batches)).toEqual([
      ['drain', ['h1', 'h2']],
      ['drain', ['h3', 'h4']],
      ['drain', ['h5']],
    ]);
  });

  it('never mixes command definitions in one batch', () => {
    const plan = fleetOf(4, (raw) => {
      raw.roles['reporting-server'] = structuredClone(raw.roles['management-server']);
      raw.roles['reporting-server'].steps.drain.run = 'report {{host}} drain';
      raw.hosts[1].roles = ['reporting-server'];
      raw.hosts[3].roles = ['reporting-server'];
    });
    const drain = planRun(plan, { backup: BACKUP }).phases.drain.batches;
    expect(drain.map((b) => [b.role, b.tasks.map((t) => t.command)])).toEqual([
      ['management-server', ['labhost h1 drain', 'labhost h3 drain']],
      ['reporting-server', ['report h2 drain', 'report h4 drain']],
    ]);
  });

  it('checksums, backs up, then reads the backup back on the owner in the backup phase, with the backup name rendered', () => {
    const { backup } = planRun(validExample(), { backup: BACKUP }).phases;
    expect(backup.batches).toEqual([]);
    expect(backup.database.map((task) => [task.action, task.host, task.command])).toEqual([
      ['checksum', 'appv-01', 'labhost db checksum'],
      ['backup', 'appv-01', `labhost db backup ${BACKUP}`],
      ['verifyBackup', 'appv-01', `labhost db verify-backup ${BACKUP}`],
    ]);
    expect(backup.database.map((task) => task.timeoutMs)).toEqual([60_000, 600_000, 600_000]);
    // Runs from before database.verifyBackup never read their backup back, and replay so.
    expect(planRun(validExample(), { backup: BACKUP, backupVerified: false }).phases.backup.database.map((task) => task.action)).toEqual(['checksum', 'backup']);
  });

  it('runs database commands on database.host when given, restore included', () => {
    const plan = validExample((raw) => (raw.database.host = 'appv-03'));
    const run = planRun(plan, { backup: BACKUP });
    expect([...run.phases.backup.database, ...run.phases.verify.database].map((task) => task.host)).toEqual(['appv-03', 'appv-03', 'appv-03', 'appv-03']);
    expect(run.phases.verify.database[0]?.command).toBe('labhost db verify 4.5');
    expect(rollbackDatabaseTasks(plan, BACKUP).restore).toMatchObject({ action: 'restore', host: 'appv-03', command: `labhost db restore ${BACKUP}`, timeoutMs: 600_000 });
  });

  it('has each backup and restore, and only those, ask database.underWay first', () => {
    const plan = validExample();
    const run = planRun(plan, { backup: BACKUP });
    const asked = { command: 'labhost db under-way', timeoutMs: 60_000 };
    expect([...run.phases.backup.database, ...run.phases.verify.database].map((task) => [task.action, task.underWay])).toEqual([
      ['checksum', undefined],
      ['backup', asked],
      ['verifyBackup', undefined],
      ['verify', undefined],
    ]);
    expect(rollbackDatabaseTasks(plan, BACKUP).restore.underWay).toEqual(asked);
    expect(planRun(validExample((raw) => delete raw.database.underWay), { backup: BACKUP }).phases.backup.database[1]?.underWay).toBeUndefined();
  });

  it("gives every batch the plan's maxParallel and its step's timeout and retry", () => {
    const run = planRun(validExample((raw) => (raw.execution.maxParallel = 3)), { backup: BACKUP });
    const batches = allBatches(run);
    expect(batches.length).toBeGreaterThan(0);
    for (const batch of batches) expect(batch.maxParallel).toBe(3);

    const version = run.phases.preflight.batches[0];
    expect(version).toMatchObject({ step: 'version', timeoutMs: 30_000, retry: { maxAttempts: 3, initialInterval: '1s', backoff: 2, maxInterval: '1m' } });
    const upgrade = run.phases.upgradeRest.batches[0];
    expect(upgrade).toMatchObject({ step: 'upgrade', timeoutMs: 1_800_000, retry: { maxAttempts: 3, initialInterval: '2s' } });
    expect(run.phases.drain.batches[0]?.timeoutMs).toBe(120_000);
  });

  it('takes retry settings from the step that defines them', () => {
    const plan = validExample((raw) => (raw.roles['management-server'].steps.online.retry = { maxAttempts: 7 }));
    const run = planRun(plan, { backup: BACKUP });
    expect(run.phases.online.batches.map((b) => b.retry.maxAttempts)).toEqual([7]);
    expect(run.phases.verify.batches.map((b) => b.retry.maxAttempts)).toEqual([3]);
  });

  it('renders every host command with its host id and the plan values', () => {
    const run = planRun(validExample(), { backup: BACKUP });
    for (const batch of allBatches(run)) {
      for (const task of batch.tasks) {
        expect(task.command).not.toContain('{{');
        expect(task.command).toContain(` ${task.host} `);
      }
    }
    expect(run.phases.preflight.batches[0]?.tasks.map((t) => t.command)).toEqual([
      'labhost appv-01 version',
      'labhost appv-02 version',
      'labhost appv-03 version',
      'labhost appv-04 version',
    ]);
    expect(run.phases.verify.batches[0]?.tasks[1]?.command).toBe('labhost appv-02 verify 4.5');
  });

  it("plans again after preflight only when a host started elsewhere than the plan's source: otherwise the plan would not change", () => {
    const plan = validExample();
    const atSource = Object.fromEntries(plan.hosts.map((host) => [host.id, plan.source]));
    expect(sourcesChangePlan(plan, undefined)).toBe(false);
    expect(sourcesChangePlan(plan, atSource)).toBe(false);
    expect(planRun(plan, { backup: BACKUP, sources: atSource })).toEqual(planRun(plan, { backup: BACKUP }));
    const oneElsewhere = { ...atSource, 'appv-03': '4.0' };
    expect(sourcesChangePlan(plan, oneElsewhere)).toBe(true);
    expect(planRun(plan, { backup: BACKUP, sources: oneElsewhere }).phases.upgradeRest.batches[0]?.tasks.find((t) => t.host === 'appv-03')?.undo).toBe('labhost appv-03 install 4.0');
  });

  it('renders undo commands, and leaves them out for steps without one', () => {
    const run = planRun(validExample(), { backup: BACKUP });
    expect(run.phases.drain.batches[0]?.tasks[1]?.undo).toBe('labhost appv-02 online');
    expect(run.phases.upgradeRest.batches[0]?.tasks[0]).toMatchObject({ host: 'appv-02', undo: 'labhost appv-02 install 4.1-SP1' });
    expect(run.phases.upgradeOwner.batches[0]?.tasks[0]?.undo).toBe('labhost appv-01 install 4.1-SP1');
    expect(run.phases.preflight.batches[0]?.tasks[0]).not.toHaveProperty('undo');
  });

  it('lists the enabled gates in run order', () => {
    expect(planRun(validExample(), { backup: BACKUP }).gates).toEqual(['beforeOffline']);
    const plan = validExample((raw) => (raw.gates.beforeOnline = { quorum: 2 }));
    expect(planRun(plan, { backup: BACKUP }).gates).toEqual(['beforeOffline', 'beforeOnline']);
  });
});

describe('formatPreview', () => {
  const plan = validExample((raw) => {
    raw.gates.beforeSchemaUpgrade = { approvers: ['alice', 'bob'], quorum: 2, timeout: '4h', instructions: 'Check the backup.' };
    raw.gates.beforeOnline = {};
  });
  const preview = formatPreview(planRun(plan, { backup: BACKUP }), plan);

  it('prints the phases and gates in the order they run', () => {
    const order = [
      'Preflight',
      'GATE beforeOffline',
      'Drain',
      'Take offline',
      'Back up',
      'GATE beforeSchemaUpgrade',
      'Upgrade the DB-owning host',
      'Upgrade the remaining hosts',
      'Verify',
      'GATE beforeOnline',
      'Bring every host back online',
    ];
    const positions = order.map((text) => preview.indexOf(text));
    expect(positions).not.toContain(-1);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('describes each gate, the fleet and a rendered sample command', () => {
    expect(preview).toContain('Fleet appv-lab: 4.1-SP1 → 4.5, 4 hosts, DB owner appv-01, database APPVDB');
    expect(preview).toContain('GATE beforeSchemaUpgrade: 2 approval(s) from alice, bob, expires after 4h');
    expect(preview).toContain('GATE beforeOnline: 1 approval(s) from anyone');
    expect(preview).toContain(`database backup on appv-01: labhost db backup ${BACKUP}`);
    expect(preview).toContain('e.g. appv-02: labhost appv-02 install 4.5   (undo: labhost appv-02 install 4.1-SP1)');
  });

  it('leaves out gates the plan does not enable', () => {
    const plain = validExample();
    const text = formatPreview(planRun(plain, { backup: BACKUP }), plain);
    expect(text).toContain('GATE beforeOffline');
    expect(text).not.toContain('GATE beforeSchemaUpgrade');
    expect(text).not.toContain('GATE beforeOnline');
  });

  it('shows the gates a phase opens inside it: before the rehearsal, and before each wave', () => {
    const gated = validExample((raw) => {
      raw.database.rehearse = { run: 'labhost db rehearse {{backup}}' };
      raw.gates.beforeRehearsal = { instructions: 'Check the copy.' };
      raw.gates.beforeEachBatch = {};
    });
    const text = formatPreview(planRun(gated, { backup: BACKUP }), gated);
    expect(text).toMatch(
      /\n2\. GATE beforeRehearsal, after the checks, before the rehearsal: a fresh backup, and the schema upgrade tried on its copy: 1 approval\(s\) from anyone\n {5}Check the copy\.\n3\. Rehearse the schema upgrade on a copy, before anything changes\n {5}database backup on appv-01: labhost db backup appv-lab-before-4\.5-run1-rehearsal\n {5}database rehearse on appv-01: labhost db rehearse appv-lab-before-4\.5-run1-rehearsal\n4\. GATE beforeOffline/,
    );
    expect(text).toMatch(/\d+\. GATE beforeEachBatch, before each wave of the remaining hosts: .*\n.*\n\d+\. Upgrade the remaining hosts/);
  });
});

describe('describeBatch and backupName', () => {
  it('names up to three hosts, and a range beyond', () => {
    const run = planRun(fleetOf(5), { backup: BACKUP });
    expect(describeBatch(run.phases.upgradeOwner.batches[0]!)).toBe('upgrade on h1');
    expect(describeBatch({ ...run.phases.drain.batches[0]!, tasks: run.phases.drain.batches[0]!.tasks.slice(0, 3) })).toBe('drain on h1, h2, h3');
    expect(describeBatch(run.phases.drain.batches[0]!)).toBe('drain on h1 … h5 (5 hosts)');
  });

  it('builds the backup name from a cleaned, shortened run id', () => {
    expect(backupName('appv-lab', '4.5', '0197-ab:cd_ef-1234567890')).toBe('appv-lab-before-4.5-0197abcdef12');
  });

  it('names the backup the same way in the preview, before there is a run', () => {
    expect(backupNamePreview('appv-lab', '4.5')).toBe('appv-lab-before-4.5-<run>');
  });
});
