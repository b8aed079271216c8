/** The pure parts of running at scale: sites and per-step batch sizes in the planner, the failure threshold, the
 * compact form children get and return, and how batches are grouped and windowed. */
import { describe, expect, it } from 'vitest';
import { failureLimit, validatePlan } from '../../core/plan';
import { type StepBatch, planRun, siteTaskQueue } from '../../core/planner';
import { groupsOf, segments, windowFor } from '../../core/batching';
import { compactBatch, compactOutcomes, expandBatch, expandOutcomes } from '../../workflows/compact';
import { FAILED_TAILS_CHARS, OUTPUT_TAIL_MAX, OutputBudget, RECORDS_CHARS, keepEnd, recordedOutputs, tailShare } from '../../core/budget';
import { OUTPUT_TAIL_CHARS } from '../../transport/transport';
import { withChildProgress } from '../../core/progress';
import type { RunStatus } from '../../core/status';
import { fleetOf, rawExample, validExample } from './fixtures';

const BACKUP = 'backup-1';
const hostsOf = (batch: StepBatch) => batch.tasks.map((task) => task.host);

describe('sites and batch sizes in the planner', () => {
  it('never mixes sites in a batch, and names the site so its activity goes to the site queue', () => {
    const plan = fleetOf(6, (raw) => {
      raw.hosts[2].site = 'branch';
      raw.hosts[4].site = 'branch';
    });
    const drain = planRun(plan, { backup: BACKUP }).phases.drain.batches;
    expect(drain.map((b) => [b.site, hostsOf(b)])).toEqual([
      [undefined, ['h1', 'h2', 'h4', 'h6']],
      ['branch', ['h3', 'h5']],
    ]);
    expect(siteTaskQueue('cutover', 'branch')).toBe('cutover@branch');
  });

  it('puts the database commands on the site of the database host', () => {
    const plan = fleetOf(3, (raw) => (raw.hosts[0].site = 'dc'));
    const backup = planRun(plan, { backup: BACKUP }).phases.backup.database;
    expect(backup.map((t) => [t.action, t.site])).toEqual([
      ['checksum', 'dc'],
      ['backup', 'dc'],
      ['verifyBackup', 'dc'],
    ]);
  });

  it("a step's own batchSize splits its batches, within waves of execution.batchSize", () => {
    const plan = fleetOf(7, (raw) => {
      raw.execution = { batchSize: 3 };
      raw.roles['management-server'].steps.upgrade.batchSize = 1;
    });
    const rest = planRun(plan, { backup: BACKUP }).phases.upgradeRest.batches;
    expect(rest.map((b) => [b.step, b.wave, hostsOf(b)])).toEqual([
      ['upgrade', 0, ['h2']],
      ['upgrade', 0, ['h3']],
      ['upgrade', 0, ['h4']],
      ['start', 0, ['h2', 'h3', 'h4']],
      ['upgrade', 1, ['h5']],
      ['upgrade', 1, ['h6']],
      ['upgrade', 1, ['h7']],
      ['start', 1, ['h5', 'h6', 'h7']],
    ]);
  });
});

describe('failure threshold', () => {
  it('is a count or a percentage of the phase hosts', () => {
    expect(failureLimit(0, 100)).toBe(0);
    expect(failureLimit(3, 100)).toBe(3);
    expect(failureLimit('5%', 1000)).toBe(50);
    expect(failureLimit('2.5%', 100)).toBe(2);
    expect(failureLimit('100%', 7)).toBe(7);
  });

  it('rejects a malformed threshold, naming the path', () => {
    const raw = rawExample();
    raw.execution = { failureThreshold: '150%' };
    const result = validatePlan(raw);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.message).toContain('→ at execution.failureThreshold');
    expect(result.message).toContain('a percentage such as "5%"');
  });
});

describe('what children get and return', () => {
  const plan = fleetOf(5);
  const [stop] = planRun(plan, { backup: BACKUP }).phases.stop.batches as [StepBatch];

  it('keeps a batch of one command definition as a template and host ids, and restores it exactly', () => {
    const compact = compactBatch(stop);
    expect(compact).toMatchObject({ hosts: ['h1', 'h2', 'h3', 'h4', 'h5'], command: 'labhost {{host}} stop', undo: 'labhost {{host}} start' });
    expect('transports' in compact).toBe(false);
    expect(expandBatch(compact)).toEqual(stop);
    expect(JSON.stringify(compact).length).toBeLessThan(JSON.stringify(stop).length / 2);
  });

  it('keeps tasks as they are when a command is not the same template for every host', () => {
    const odd = { ...stop, tasks: stop.tasks.map((task, i) => (i === 2 ? { ...task, command: `${task.command} --force` } : task)) };
    expect(compactBatch(odd)).toHaveProperty('tasks');
    expect(expandBatch(compactBatch(odd))).toEqual(odd);
    // The host id inside another word of the command: the template would not restore it.
    const inside = { ...stop, tasks: [{ ...stop.tasks[0]!, host: 'a', command: 'labhost a stop' }] };
    expect(expandBatch(compactBatch(inside))).toEqual(inside);
  });

  it('keeps per-host transports when not every host is local', () => {
    const ssh = { kind: 'ssh' as const, address: '10.0.0.3', port: 22, user: 'svc' };
    const mixed = { ...stop, tasks: stop.tasks.map((task, i) => (i === 2 ? { ...task, transport: ssh } : task)) };
    expect(expandBatch(compactBatch(mixed))).toEqual(mixed);
  });

  it('returns successes by name, with output only where the parent reads it', () => {
    const outcomes = [
      { host: 'h1', ok: true, exitCode: 0, outputTail: 'services stopped\n', attempt: 1 },
      { host: 'h2', ok: false, exitCode: 2, outputTail: 'REFUSED: users signed in\n', attempt: 3 },
    ];
    const compact = compactOutcomes(stop, outcomes, 4096);
    expect(compact).toEqual({ ok: ['h1'], failed: [outcomes[1]] });
    expect(expandOutcomes(compact).map((o) => [o.host, o.ok])).toEqual([
      ['h1', true],
      ['h2', false],
    ]);
    const version = compactOutcomes({ ...stop, step: 'version' }, [{ ...outcomes[0]!, outputTail: '4.1-SP1\n' }], 4096);
    expect(expandOutcomes(version)[0]?.outputTail).toBe('4.1-SP1\n');
  });

  it('keeps the end of each output within the share it is given, marked where it was cut', () => {
    const report = `${'x'.repeat(3000)}\nvalidation: 12 packages OK\n`;
    const outcomes = [
      { host: 'h1', ok: true, exitCode: 0, outputTail: report, attempt: 1 },
      { host: 'h2', ok: false, exitCode: 2, outputTail: report, attempt: 1 },
    ];
    const compact = compactOutcomes({ ...stop, record: true }, outcomes, 100);
    expect(compact.tails?.h1).toHaveLength(100);
    expect(compact.tails?.h1?.startsWith('…')).toBe(true);
    expect(compact.tails?.h1?.endsWith('validation: 12 packages OK\n')).toBe(true);
    expect(compact.failed[0]?.outputTail).toBe(compact.tails?.h1);
  });
});

describe('grouping and windows', () => {
  const batch = (step: StepBatch['step'], hosts: string[], wave?: number): StepBatch => ({
    step,
    role: 'r',
    maxParallel: 4,
    timeoutMs: 1000,
    retry: { maxAttempts: 1, initialInterval: '1s', backoff: 1, maxInterval: '1s' },
    tasks: hosts.map((host) => ({ host, command: 'true', transport: { kind: 'local' } })),
    ...(wave === undefined ? {} : { wave }),
  });

  it('runs side by side only consecutive batches of one step and wave', () => {
    const batches = [batch('upgrade', ['a'], 0), batch('upgrade', ['b'], 0), batch('start', ['a', 'b'], 0), batch('upgrade', ['c'], 1)];
    expect(segments(batches).map((s) => s.map(hostsOf))).toEqual([[['a'], ['b']], [['a', 'b']], [['c']]]);
    expect(windowFor([batch('upgrade', ['a']), batch('upgrade', ['b'])])).toBe(4);
    expect(windowFor([batch('drain', ['a', 'b', 'c'])])).toBe(1);
  });

  it('groups whole waves (or batches) up to the host limit, one wave a group when waves are gated', () => {
    const waves = [batch('upgrade', ['a'], 0), batch('start', ['a'], 0), batch('upgrade', ['b'], 1), batch('start', ['b'], 1), batch('upgrade', ['c'], 2), batch('start', ['c'], 2)];
    expect(groupsOf(waves, { maxHosts: 2, wavePerGroup: false }).map((g) => g.length)).toEqual([4, 2]);
    expect(groupsOf(waves, { maxHosts: 2, wavePerGroup: true }).map((g) => g.length)).toEqual([2, 2, 2]);
    const flat = [batch('drain', ['a', 'b']), batch('drain', ['c', 'd']), batch('drain', ['e'])];
    expect(groupsOf(flat, { maxHosts: 4, wavePerGroup: false }).map((g) => g.flatMap(hostsOf))).toEqual([['a', 'b', 'c', 'd'], ['e']]);
    // A batch larger than the limit is a group of its own: a child runs whole batches.
    expect(groupsOf(flat, { maxHosts: 1, wavePerGroup: false }).map((g) => g.flatMap(hostsOf))).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('caps the batches of a group, cutting only a wave that alone has more, into consecutive groups', () => {
    // One-host batches, as a long installer runs: a wave of 3 upgrades then 3 starts.
    const wave = [...['a', 'b', 'c'].map((h) => batch('upgrade', [h], 0)), ...['a', 'b', 'c'].map((h) => batch('start', [h], 0))];
    const next = [batch('upgrade', ['d'], 1), batch('start', ['d'], 1)];
    const limits = { maxHosts: 100, maxBatches: 4 };
    expect(groupsOf([...wave, ...next], { ...limits, wavePerGroup: false }).map((g) => g.map((b) => `${b.step}:${hostsOf(b)}`))).toEqual([
      ['upgrade:a', 'upgrade:b', 'upgrade:c', 'start:a'],
      ['start:b', 'start:c', 'upgrade:d', 'start:d'],
    ]);
    // Gated waves: each piece of a cut wave is a group, and two waves never share one.
    expect(groupsOf([...wave, ...next], { ...limits, wavePerGroup: true }).map((g) => g.length)).toEqual([4, 2, 2]);
    const drains = ['a', 'b', 'c', 'd', 'e'].map((h) => batch('drain', [h]));
    expect(groupsOf(drains, { maxHosts: 100, maxBatches: 2, wavePerGroup: false }).map((g) => g.length)).toEqual([2, 2, 1]);
  });
});

describe('output budgets', () => {
  it('shares a budget among the outputs, whole for a small fleet, the end of each for a large one', () => {
    expect(tailShare(RECORDS_CHARS, 10)).toBe(OUTPUT_TAIL_MAX);
    expect(tailShare(RECORDS_CHARS, 1_000)).toBe(Math.floor(RECORDS_CHARS / 1_000));
    expect(tailShare(RECORDS_CHARS, 1_000_000)).toBe(64);
    expect(tailShare(RECORDS_CHARS, 1_000_000, 16)).toBe(16);
    expect(OUTPUT_TAIL_MAX).toBe(OUTPUT_TAIL_CHARS);
    expect(keepEnd('abcdef', 6)).toBe('abcdef');
    expect(keepEnd('abcdef', 4)).toBe('…def');
    expect(keepEnd('abcdef', 0)).toBe('');
  });

  it('counts the outputs a plan may record: recorded steps of every host, again for a rollback, the rehearsal, the prerequisites', () => {
    const plan = validExample((raw) => {
      raw.roles['management-server'].steps.upgrade.record = true;
    });
    expect(recordedOutputs(plan)).toBe(2 * plan.hosts.length + 1 + plan.prerequisites.length);
  });

  it('records 10,000 hosts\' long reports twice (upgrade and rollback) within the budget, counting what it could not keep', () => {
    const hosts = 10_000;
    const budget = new OutputBudget(RECORDS_CHARS, 2 * hosts);
    const report = `${'validated package '.repeat(300)}\nresult: OK\n`;
    const kept: string[] = [];
    for (let i = 0; i < 2 * hosts; i++) {
      const output = budget.keep(report);
      if (output !== undefined) kept.push(output);
    }
    // Each kept the end of the report down to the floor; the floor spends the budget before the last outputs.
    expect(kept[0]).toHaveLength(64);
    expect(kept[0]?.endsWith('result: OK\n')).toBe(true);
    expect(kept.join('').length).toBeLessThanOrEqual(RECORDS_CHARS);
    expect(budget.notKept).toBe(2 * hosts - kept.length);
    expect(budget.notKept).toBeGreaterThan(0);
    // A small fleet keeps each report whole, up to a transport's whole tail.
    const small = new OutputBudget(RECORDS_CHARS, 20);
    const whole = report.slice(-OUTPUT_TAIL_MAX);
    expect(small.keep(whole)).toBe(whole);
  });

  it('keeps failed tails of 10,000 hosts, twice in the status, within their budget', () => {
    const share = tailShare(FAILED_TAILS_CHARS, 10_000, 16);
    expect(share).toBe(16);
    expect(2 * 10_000 * share).toBeLessThanOrEqual(2 * FAILED_TAILS_CHARS * 1.25);
  });
});

describe('progress inside child workflows', () => {
  const base: RunStatus = {
    fleet: 'f',
    source: '4.1-SP1',
    target: '4.5',
    phase: 'upgrading',
    hosts: { a: { state: 'offline' }, b: { state: 'offline' }, c: { state: 'offline' } },
    hostCounts: { offline: 3 },
    decisions: [],
    records: [],
    undoLog: [],
    children: [{ workflowId: 'run/upgradeRest-1', phase: 'upgradeRest', hosts: 3 }],
  };

  it('moves the hosts of finished batches on, marks failed ones, and recounts', () => {
    const status = withChildProgress(base, [
      {
        batches: [
          { step: 'upgrade', ok: ['a', 'b'], failed: ['c'] },
          { step: 'start', ok: ['a'], failed: [] },
        ],
      },
    ]);
    expect(status.hosts).toMatchObject({ a: { state: 'started', step: 'start' }, b: { state: 'upgraded' }, c: { state: 'failed', step: 'upgrade' } });
    expect(status.hostCounts).toEqual({ started: 1, upgraded: 1, failed: 1 });
    expect(base.hosts.a?.state).toBe('offline');
    // The parent decides whether a version printed is one the upgrade path accepts.
    expect(withChildProgress(base, [{ batches: [{ step: 'version', ok: ['a'], failed: [] }] }]).hosts.a?.state).toBe('offline');
    expect(withChildProgress(base, [])).toBe(base);
  });
});
