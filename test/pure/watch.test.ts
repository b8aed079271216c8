/** `cutover watch`'s view, decided from a status without a server: the bars, what waits, the facts of a plain terminal. */
import { describe, expect, it } from 'vitest';
import type { HostStatus, RunStatus } from '../../core/status';
import { FAILED_LISTED, barCells, changedFacts, watchFacts, watchFrame, watchModel, wrapLine } from '../../core/watch';

function status(hosts: Record<string, HostStatus>, extra: Partial<RunStatus> = {}): RunStatus {
  return { fleet: 'appv-lab', source: '4.1-SP1', target: '4.5', phase: 'upgrading-hosts', hosts, hostCounts: {}, decisions: [], records: [], undoLog: [], ...extra };
}

const MID_UPGRADE = status(
  {
    'appv-01': { state: 'started', step: 'start' },
    'appv-02': { state: 'upgraded', step: 'upgrade' },
    'appv-03': { state: 'failed', step: 'upgrade', error: 'upgrade failed (exit 1) after 3 attempt(s)', outputTail: 'copying\nFAULT: disk full\n' },
    'appv-04': { state: 'skipped', step: 'upgrade' },
    'appv-05': { state: 'offline', step: 'stop' },
  },
  { batches: [{ step: 'upgrade', hosts: ['appv-05'], hostCount: 1, wave: 0 }], backup: { name: 'appv-lab-before-4.5-x', checksum: 'f673701737fdd9a717fea1b4' } },
);

describe('the watch view model', () => {
  it('counts each phase: done before the step a host failed or was skipped at, failed or skipped there, and the current phase marked', () => {
    const bars = Object.fromEntries(watchModel('cutover-appv-lab', MID_UPGRADE).bars.map((bar) => [bar.name, bar]));
    expect(bars.stop).toMatchObject({ done: 5, failed: 0, remaining: 0, current: false });
    // appv-01 started (done), appv-02 upgraded but not started (to go), appv-05 offline (to go).
    expect(bars.upgrade).toMatchObject({ done: 1, failed: 1, skipped: 1, remaining: 2, current: true });
    expect(bars.verify).toMatchObject({ done: 0, failed: 0, skipped: 1, remaining: 4 });
    expect(bars.rollback).toBeUndefined();
  });

  it('draws every part of a bar in proportion, at least one cell each, full only when nothing is left', () => {
    const bar = { name: 'upgrade', done: 1, failed: 1, skipped: 1, remaining: 97, current: true };
    expect(barCells(bar, 30)).toBe(`█✖▒${'░'.repeat(27)}`);
    expect(barCells({ ...bar, done: 999, failed: 0, skipped: 0, remaining: 1 }, 30)).toBe(`${'█'.repeat(29)}░`);
    expect(barCells({ ...bar, done: 4, failed: 0, skipped: 0, remaining: 0 }, 30)).toBe('█'.repeat(30));
  });

  it('shows the batch under way, the backup, and each failed host with its error line', () => {
    const frame = watchFrame(watchModel('cutover-appv-lab', MID_UPGRADE), '08:00:00').join('\n');
    expect(frame).toContain('Under way: upgrade on appv-05, wave 1');
    expect(frame).toContain('backup     done: appv-lab-before-4.5-x (checksum f673701737fd…)');
    expect(frame).toContain('✖ appv-03: upgrade failed (exit 1) after 3 attempt(s) — FAULT: disk full');
    expect(frame).toMatch(/▶ upgrade {4}█+✖+▒+░+ {2}1\/5 done, 1 failed, 1 skipped, 2 to go/);
  });

  it('gives the pending gate with its instructions and the exact command, by key where the worker takes signed decisions only', () => {
    const gate = { gate: 'beforeOffline', instructions: 'Approve when the change window is open.', approvers: ['alice'], quorum: 1, approvedBy: [] };
    const byName = watchModel('cutover-appv-lab', status({}, { phase: 'awaiting-approval', pendingGate: gate }));
    expect(byName.waitingFor).toBe('gate');
    expect(byName.gate).toEqual({
      heading: 'Waiting for approval at gate beforeOffline (0/1, approvers: alice)',
      instructions: 'Approve when the change window is open.',
      approve: 'cutover approve cutover-appv-lab --as NAME',
    });
    const signed = watchModel('cutover-appv-lab', status({}, { pendingGate: gate, trust: { source: '/etc/cutover/trust.yaml', digest: 'd', decisions: 'signed' } }));
    expect(signed.gate?.approve).toMatch(/^cutover approve cutover-appv-lab --key YOUR\.key/);
  });

  it("gives an operator's choices as commands, and says the run waits for one", () => {
    const waiting = { phase: 'upgradeRest', rollingBack: false, reason: 'upgrade failed on 1 host(s)', hosts: [], options: ['retry', 'skip', 'rollback'] as const, skippable: ['appv-03'] };
    const model = watchModel('cutover-appv-lab', status({}, { phase: 'awaiting-operator', awaitingOperator: { ...waiting, options: [...waiting.options] }, failure: 'upgrade failed on 1 host(s)' }));
    expect(model.waitingFor).toBe('operator');
    expect(model.operator?.choose).toEqual(['cutover retry cutover-appv-lab --as NAME', 'cutover skip cutover-appv-lab --as NAME --host appv-03', 'cutover rollback cutover-appv-lab --as NAME']);
    // The failure is the operator's question: said once.
    expect(watchFrame(model, 'now').filter((line) => line.includes('upgrade failed on 1 host(s)'))).toHaveLength(1);
    expect([...watchFacts(model).values()].filter((line) => line.includes('upgrade failed on 1 host(s)'))).toHaveLength(1);
  });

  it('says why a run failed or rolls back, but not a failure an operator answered before the run completed', () => {
    const failure = 'upgrade failed on 1 host(s): appv-03';
    expect(watchModel('r', status({}, { phase: 'rolled-back', failure })).failure).toBe(failure);
    expect(watchModel('r', status({}, { phase: 'completed', failure })).failure).toBeUndefined();
  });

  it('lists a few failed hosts by name and counts the rest, at 10,000 hosts', () => {
    const hosts = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`h${i}`, { state: 'failed', step: 'verify', error: 'verify failed' } as HostStatus]));
    const model = watchModel('cutover-big', status(hosts));
    expect(model.failed).toHaveLength(FAILED_LISTED);
    expect(model.moreFailed).toBe(10_000 - FAILED_LISTED);
    expect(watchFrame(model, 'now').length).toBeLessThan(30);
  });

  it('shows a rollback bar once hosts are rolled back', () => {
    const model = watchModel('r', status({ a: { state: 'rolled-back' }, b: { state: 'downgraded' } }, { phase: 'rolling-back' }));
    expect(model.bars.at(-1)).toMatchObject({ name: 'rollback', done: 1, remaining: 1, current: true });
  });
});

describe('the frame and the plain lines', () => {
  it('wraps long lines at spaces to the width, continuations indented', () => {
    expect(wrapLine('  approve with: cutover approve cutover-appv-lab --as NAME', 30)).toEqual(['  approve with: cutover', '      approve cutover-appv-lab', '      --as NAME']);
    const frame = watchFrame(watchModel('cutover-appv-lab', MID_UPGRADE), '08:00:00', 60);
    expect(Math.max(...frame.map((line) => line.length))).toBeLessThanOrEqual(60);
  });

  it('prints only what changed, one line per fact', () => {
    const before = watchFacts(watchModel('cutover-appv-lab', MID_UPGRADE));
    const after = watchFacts(watchModel('cutover-appv-lab', { ...MID_UPGRADE, hosts: { ...MID_UPGRADE.hosts, 'appv-05': { state: 'started', step: 'start' } }, batches: [] }));
    expect(changedFacts(before, after)).toEqual(['upgrade: 2/5 done, 1 failed, 1 skipped, 1 to go', 'under way: nothing']);
    expect(changedFacts(after, after)).toEqual([]);
  });
});
