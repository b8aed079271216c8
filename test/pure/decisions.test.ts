/**
 * The run's domain decisions that the workflow once made inline, now reachable without a server: the version
 * verdict, what a batch's outcomes mean, the failure summary, the undo log, where a phase's batches run, and the
 * words of the Web UI's current details.
 */
import { describe, expect, it } from 'vitest';
import { childGroups, runsInChildren } from '../../core/batching';
import { detailsMarkdown, failedHostText, gateProgressText, hostCountsText, startingVersionsText } from '../../core/details';
import { notWaitingReason, offlineConfirmation } from '../../core/operator';
import { type HostOutcome, failureSummary, judgeOutcomes, phaseProblem, versionVerdict } from '../../core/outcomes';
import { type StepBatch, planRun } from '../../core/planner';
import type { RunStatus } from '../../core/status';
import { UndoLog } from '../../core/undoLog';
import { fleetOf } from './fixtures';

const APPV = { source: '4.1', target: '4.5', upgradePaths: { '4.5': ['4.1', '4.1-SP1'] } };
const ok = (host: string, outputTail = ''): HostOutcome => ({ host, ok: true, exitCode: 0, outputTail, attempt: 1 });
const failed = (host: string, outputTail: string): HostOutcome => ({ host, ok: false, exitCode: 2, outputTail, attempt: 3 });

describe('the version verdict', () => {
  it('accepts a host at the plan source', () => {
    expect(versionVerdict(APPV, 'appv-02', '4.1')).toBeUndefined();
  });

  it('accepts a host at any version on the upgrade path: each rolls back to its own', () => {
    expect(versionVerdict(APPV, 'appv-03', '4.1-SP1')).toBeUndefined();
  });

  it('refuses a host off the upgrade path with both of the seed remedies', () => {
    expect(versionVerdict(APPV, 'appv-02', '4.0')).toBe('appv-02 is at 4.0: 4.5 can only be installed over 4.1 or 4.1-SP1; upgrade it to 4.1 or 4.1-SP1 first, or uninstall it');
    expect(versionVerdict(APPV, 'appv-02', '')).toContain('appv-02 is at (no version printed)');
  });

  it('runs from before per-host versions refuse a host on the path but not at the source', () => {
    expect(versionVerdict(APPV, 'appv-03', '4.1-SP1', { perHost: false })).toMatch(/^appv-03 is at 4.1-SP1, but the plan's source is 4.1: a rollback returns hosts to the source/);
  });
});

describe('hosts that failed preflight', () => {
  const failedAt = (...hosts: string[]) => hosts.map((host) => ({ host, error: 'version failed (exit 255) after 3 attempt(s)', outputTail: 'ssh: connect to host: No route to host' }));

  it('are left out only behind a confirmation that each is offline or decommissioned', () => {
    const gate = offlineConfirmation(fleetOf(3), failedAt('h2', 'h3'));
    expect(gate?.instructions).toMatch(/^Preflight failed on 2 host\(s\): h2 \(version failed .*\); h3 .*the schema upgrade needs every server sharing APPVDB offline\. Approve only to confirm each is offline or decommissioned/);
    expect(gate).toMatchObject({ approvers: [], quorum: 1 });
  });

  it('never include the DB owner or a role that may not be skipped: the run fails as before', () => {
    expect(offlineConfirmation(fleetOf(3), failedAt('h1', 'h2'))).toBeUndefined();
    // A host that answered 4.0 is running: it is upgraded to 4.1 or uninstalled first, never left out.
    expect(offlineConfirmation(fleetOf(3), [{ host: 'h2', error: 'h2 is at 4.0: 4.5 can only be installed over 4.1 or 4.1-SP1; upgrade it to 4.1 or 4.1-SP1 first, or uninstall it', outputTail: '4.0' }])).toBeUndefined();
    // Unreachable over ssh is offered; a rejected host key or a missing secret is the plan's or the worker's problem.
    const sshFailure = (outputTail: string) => [{ host: 'h2', error: 'version failed (exit -1) after 3 attempt(s)', outputTail }];
    expect(offlineConfirmation(fleetOf(3), sshFailure('cannot reach h2: connect ECONNREFUSED'))).toBeDefined();
    expect(offlineConfirmation(fleetOf(3), sshFailure('host key of h2 is SHA256:x, not the pinned SHA256:y'))).toBeUndefined();
    expect(offlineConfirmation(fleetOf(3, (raw) => (raw.roles['management-server'].allowSkip = false)), failedAt('h2'))).toBeUndefined();
  });

  it('a skip sent meanwhile is refused with the way to confirm', () => {
    expect(notWaitingReason('offline-confirmation')).toContain('is left out by approving gate offline-confirmation, the confirmation that it is offline or decommissioned');
    expect(notWaitingReason('beforeOffline')).toBe('the run is not waiting for an operator');
  });

  it('shows the versions preflight found, a few hosts each', () => {
    expect(startingVersionsText({ a: '4.1-SP1', b: '4.1', c: '4.1-SP1', d: '4.1-SP1', e: '4.1-SP1' })).toBe('4.1-SP1 on 4 hosts (a, c, d, …), 4.1 on b');
    expect(startingVersionsText(undefined)).toBe('');
  });

  it('names a fleet of 10,000 hosts in one line, in the order preflight found them', () => {
    const versions = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`appv-${i + 1}`, i % 1000 === 999 ? '4.1' : '4.1-SP1']));
    expect(startingVersionsText(versions)).toBe('4.1-SP1 on 9990 hosts (appv-1, appv-2, appv-3, …), 4.1 on 10 hosts (appv-1000, appv-2000, appv-3000, …)');
  });
});

describe('judging a batch', () => {
  const batch = (step: StepBatch['step']) => ({ step }) as StepBatch;

  it('reads the version step by the last line printed, and a failed command by its exit and attempts', () => {
    const judged = judgeOutcomes(APPV, batch('version'), [ok('a', 'App-V Management Server\n4.1\n'), ok('b', '4.0'), failed('c', 'no route')], 4096);
    expect(judged.succeeded.map((o) => o.host)).toEqual(['a']);
    expect(judged.failed.map((f) => [f.host, f.error])).toEqual([
      ['b', expect.stringContaining('b is at 4.0')],
      ['c', 'version failed (exit 2) after 3 attempt(s)'],
    ]);
  });

  it('cuts each failed host output to its share', () => {
    const [failure] = judgeOutcomes(APPV, batch('upgrade'), [failed('a', 'x'.repeat(100))], 20).failed;
    expect(failure?.outputTail).toHaveLength(20);
    expect(failure?.outputTail.startsWith('…')).toBe(true);
  });

  it('summarises a failure by its first ten hosts, each with its last output line', () => {
    const failures = Array.from({ length: 12 }, (_, i) => ({ host: `h${i + 1}`, error: 'upgrade failed (exit 1) after 3 attempt(s)', outputTail: `step 1\nFAULT ${i + 1}\n` }));
    const summary = failureSummary('upgrade', failures);
    expect(summary).toMatch(/^upgrade failed on 12 host\(s\): h1: upgrade failed \(exit 1\) after 3 attempt\(s\) \(FAULT 1\); h2:/);
    expect(summary).toContain('h10: ');
    expect(summary).not.toContain('h11: ');
    expect(summary.endsWith('; and 2 more (see the status)')).toBe(true);
    expect(phaseProblem([summary], 12)).toBe(summary);
    expect(phaseProblem(['upgrade failed on 1 host(s): a', 'start failed on 1 host(s): b'], 2)).toBe('2 host(s) failed: upgrade failed on 1 host(s): a; start failed on 1 host(s): b');
  });
});

describe('the undo log', () => {
  const plan = fleetOf(3);
  const run = planRun(plan, { backup: 'b-1' });

  it('records each host undo once, before its step runs, and the backup to restore', () => {
    const log = new UndoLog();
    const [drain] = run.phases.drain.batches as [StepBatch];
    log.beforeBatch('draining', drain);
    log.beforeBatch('draining', drain);
    log.backup('backing-up', 'b-1', 'sum-1');
    expect(log.records.map((r) => [r.phase, r.step, r.hosts])).toEqual([
      ['draining', 'drain', ['h1', 'h2', 'h3']],
      ['backing-up', 'backup', []],
    ]);
    expect(log.records[0]?.undo).toEqual(drain.tasks.map((t) => ({ host: t.host, command: t.undo })));
    expect(log.summary()).toEqual([
      { phase: 'draining', step: 'drain', hosts: 3 },
      { phase: 'backing-up', step: 'backup', hosts: 0, restoreBackup: 'b-1' },
    ]);
  });

  it('records nothing for a step without undo (verify)', () => {
    const log = new UndoLog();
    for (const batch of run.phases.verify.batches) log.beforeBatch('verifying', batch);
    expect(log.records).toEqual([]);
  });
});

describe('where a phase runs', () => {
  const asked: string[] = [];
  const yes = (patch: string) => (asked.push(patch), true);

  it('runs in the workflow while the phase is small, and asks no patch', () => {
    asked.length = 0;
    const plan = fleetOf(5);
    expect(runsInChildren(planRun(plan, { backup: 'b' }).phases.drain.batches, plan.execution.hostsPerWorkflow, yes)).toBe(false);
    expect(asked).toEqual([]);
  });

  it('goes to children over hostsPerWorkflow hosts, asking only the rule that applies', () => {
    asked.length = 0;
    const plan = fleetOf(5, (raw) => (raw.execution = { hostsPerWorkflow: 2 }));
    expect(runsInChildren(planRun(plan, { backup: 'b' }).phases.drain.batches, 2, yes)).toBe(true);
    expect(asked).toEqual(['host-steps-in-child-workflows']);
    asked.length = 0;
    expect(runsInChildren(planRun(plan, { backup: 'b' }).phases.drain.batches, 2, (patch) => (asked.push(patch), false))).toBe(false);
    expect(asked).toEqual(['host-steps-in-child-workflows']);
  });

  it('goes to children over 64 batches even on a small fleet (one-host batches of a long step)', () => {
    const plan = fleetOf(70, (raw) => (raw.roles['management-server'].steps.upgrade.batchSize = 1));
    const batches = planRun(plan, { backup: 'b' }).phases.upgradeRest.batches;
    asked.length = 0;
    expect(runsInChildren(batches, plan.execution.hostsPerWorkflow, yes)).toBe(true);
    expect(asked).toEqual(['children-by-batch-count']);
  });

  it('cuts children by the batch budget only when it changes the groups, and asks then only', () => {
    const oneHost = (i: number): StepBatch => ({ step: 'upgrade', role: 'r', wave: 0, tasks: [{ host: `h${i}`, command: 'x', transport: { kind: 'local' } }], maxParallel: 10, timeoutMs: 1, retry: { maxAttempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '1s' } });
    const limits = { maxHosts: 10_000, wavePerGroup: false };
    asked.length = 0;
    expect(childGroups([oneHost(1), oneHost(2)], limits, yes).map((g) => g.length)).toEqual([2]);
    expect(asked).toEqual([]);
    const wave = Array.from({ length: 1001 }, (_, i) => oneHost(i));
    expect(childGroups(wave, limits, yes).map((g) => g.length)).toEqual([1000, 1]);
    expect(asked).toEqual(['child-batch-budget']);
    expect(childGroups(wave, limits, () => false).map((g) => g.length)).toEqual([1001]);
  });
});

describe('the current details', () => {
  const status: RunStatus = {
    fleet: 'appv-lab',
    source: '4.1',
    target: '4.5',
    phase: 'awaiting-approval',
    hosts: {},
    hostCounts: { offline: 3, failed: 1 },
    decisions: [],
    records: [],
    undoLog: [],
    pendingGate: { gate: 'beforeOnline', instructions: 'Check the smoke tests.', approvers: ['alice', 'bob'], quorum: 2, approvedBy: ['alice'], expiresAt: '2026-12-01T00:00:00.000Z' },
  };

  it('says the host counts, the gate with its quorum, and how to approve', () => {
    expect(hostCountsText(status.hostCounts)).toBe('3 offline, 1 failed');
    expect(gateProgressText(status.pendingGate!)).toBe('(1/2, approvers: alice, bob, expires 2026-12-01T00:00:00.000Z)');
    const markdown = detailsMarkdown(status);
    expect(markdown.split('\n\n')).toEqual([
      '**Cutover** appv-lab: 4.1 → 4.5',
      '**Phase:** awaiting-approval',
      '**Hosts:** 3 offline, 1 failed',
      '**Waiting for approval at gate `beforeOnline`** (1/2, approvers: alice, bob, expires 2026-12-01T00:00:00.000Z)',
      'Check the smoke tests.',
      'Send the signal `approve` with `{"approver": "your name"}` (or `reject`).',
    ]);
  });

  it('lists each failed host with its last line and the choices, skip only where a host may be skipped', () => {
    const host = { host: 'appv-03', error: 'upgrade failed (exit 1) after 3 attempt(s)', outputTail: 'copying\nFAULT: disk full\n' };
    expect(failedHostText(host)).toBe('appv-03: upgrade failed (exit 1) after 3 attempt(s) — FAULT: disk full');
    const waiting = { phase: 'upgrading-hosts', rollingBack: false, reason: 'upgrade failed', hosts: [host], options: ['retry', 'rollback'] as const, skippable: [] };
    const markdown = detailsMarkdown({ ...status, pendingGate: undefined, awaitingOperator: { ...waiting, options: [...waiting.options] } });
    expect(markdown).toContain('**Waiting for an operator:** upgrade failed');
    expect(markdown).toContain('- appv-03: upgrade failed (exit 1) after 3 attempt(s) — FAULT: disk full');
    expect(markdown).toContain('Send `retry`, or `rollback` with `{"operator": "your name"}`.');
    expect(detailsMarkdown({ ...status, pendingGate: undefined, awaitingOperator: { ...waiting, options: ['retry', 'skip', 'rollback'], skippable: ['appv-03'] } })).toContain(
      'Send `retry`, `skip` (with `"host"`), or `rollback`',
    );
  });
});
