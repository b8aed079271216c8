/**
 * `cutover report`'s model and renderings, from histories made up here: what a run did per phase, batch, host and
 * decision; a rollback; and a 10,000-host run whose HTML stays small enough for a browser to open at once.
 */
import { describe, expect, it } from 'vitest';
import { type RunEvent, type RunHistory, reportHtml, reportMarkdown, reportModel, timelineSvg } from '../../core/report';
import { parseReportOptions } from '../../core/report/options';
import { MAX_BARS } from '../../core/report/svg';

const T0 = Date.parse('2026-11-30T22:00:00Z');
const STEPS = ['version', 'drain', 'stop', 'upgrade', 'start', 'verify', 'online'] as const;
const PHASE_OF: Record<string, string> = {
  version: 'preflight',
  drain: 'draining',
  stop: 'taking-offline',
  upgrade: 'upgrading-hosts',
  start: 'upgrading-hosts',
  verify: 'verifying',
  online: 'bringing-online',
};

interface Options {
  hosts: number;
  /** Hosts whose upgrade fails (and, with rollBack, the run rolls back). */
  failUpgrade?: string[];
  rollBack?: boolean;
  batchSize?: number;
  /** Run every step in children (by the compact form only: no child history fetched). */
  inChildren?: boolean;
}

/** A history as client/report.ts would decode it: a plan, the phases, each step's batches, the end. */
function history(options: Options): RunHistory {
  const ids = Array.from({ length: options.hosts }, (_, i) => `appv-${String(i + 1).padStart(5, '0')}`);
  const failing = new Set(options.failUpgrade ?? []);
  const events: RunEvent[] = [];
  let id = 1;
  let at = T0;
  // Each kind of event without its id and time, which push gives it.
  type Bare = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, 'id' | 'at'> : never) : never;
  const push = (event: Bare, ms = 0) => {
    at += ms;
    events.push({ ...event, id: id++, at } as RunEvent);
    return id - 1;
  };
  push({
    kind: 'workflowStarted',
    input: { fleet: 'appv-prod', product: 'App-V 4.5', source: '4.1-SP1', target: '4.5', hosts: ids.map((host, i) => ({ id: host, roles: i === 0 ? ['management-server', 'db-owner'] : ['management-server'] })), followUp: ['Check the App-V clients refresh'] },
  });
  let phase = '';
  let upgradeFailed = false;
  for (const step of STEPS) {
    if (step === 'drain') {
      push({ kind: 'phase', phase: 'awaiting-approval' });
      at += 3_600_000;
    }
    if (PHASE_OF[step] !== phase) {
      phase = PHASE_OF[step] as string;
      push({ kind: 'phase', phase });
    }
    // A rolled-back run stops after the failed step; otherwise the failed hosts take no later step.
    if (upgradeFailed && options.rollBack) break;
    const size = options.batchSize ?? 200;
    const running = upgradeFailed ? ids.filter((host) => !failing.has(host)) : ids;
    for (let from = 0; from < running.length; from += size) {
      const hosts = running.slice(from, from + size);
      const outcomes = hosts.map((host) => ({
        host,
        ok: !(step === 'upgrade' && failing.has(host)),
        exitCode: step === 'upgrade' && failing.has(host) ? 1 : 0,
        outputTail: step === 'version' ? '4.1-SP1' : step === 'upgrade' && failing.has(host) ? 'installer: disk full' : 'ok',
        attempt: 1,
      }));
      if (options.inChildren) {
        const child = `cutover-appv-prod/${phase}-${from}`;
        push({ kind: 'childStarted', workflowId: child, input: { batches: [{ step, hosts, command: 'labhost {{host}} x' }] } });
        push({ kind: 'childClosed', workflowId: child, result: { batches: [{ ok: outcomes.filter((o) => o.ok).map((o) => o.host), failed: outcomes.filter((o) => !o.ok), ...(step === 'version' ? { tails: Object.fromEntries(hosts.map((h) => [h, '4.1-SP1'])) } : {}) }] } }, 20_000);
      } else {
        const scheduled = push({ kind: 'activityScheduled', activityType: 'runHostStep', input: { step, tasks: hosts.map((host) => ({ host, command: 'x' })) } });
        push({ kind: 'activityClosed', scheduledId: scheduled, result: outcomes }, 2_000);
      }
    }
    if (step === 'stop') {
      push({ kind: 'phase', phase: 'backing-up' });
      const backup = push({ kind: 'activityScheduled', activityType: 'runDatabaseTask', input: { action: 'backup', host: ids[0] } });
      push({ kind: 'activityClosed', scheduledId: backup, result: { action: 'backup', result: 'APPVDB.bak', outputTail: '' } }, 5_000);
    }
    if (step === 'upgrade' && failing.size) upgradeFailed = true;
  }
  const decisions = [{ gate: 'beforeOffline', approver: 'alice', decision: 'approve', key: 'SHA256:abc', at: new Date(T0 + 3_600_000).toISOString() }];
  if (options.rollBack) {
    push({ kind: 'phase', phase: 'awaiting-operator' });
    decisions.push({ gate: 'guided-failure', approver: 'olga', decision: 'rollback', key: 'SHA256:def', at: new Date(at + 60_000).toISOString() });
    push({ kind: 'phase', phase: 'rolling-back' }, 60_000);
    const scheduled = push({ kind: 'activityScheduled', activityType: 'runHostStep', input: { step: 'downgrade', tasks: ids.filter((h) => !failing.has(h)).map((host) => ({ host })) } });
    push({ kind: 'activityClosed', scheduledId: scheduled, result: ids.filter((h) => !failing.has(h)).map((host) => ({ host, ok: true, exitCode: 0, outputTail: 'ok', attempt: 1 })) }, 4_000);
    push({ kind: 'phase', phase: 'rolled-back' });
  }
  push(
    {
      kind: 'workflowClosed',
      status: 'completed',
      result: {
        outcome: options.rollBack ? 'rolled-back' : 'completed',
        fleet: 'appv-prod',
        target: '4.5',
        hosts: ids.length,
        backup: { name: 'APPVDB.bak', checksum: 'f673701737fdd9a7' },
        decisions,
        records: [{ step: 'upgrade', host: ids[0], output: 'package validation: AppVServer validated for 4.5' }],
        ...(options.rollBack ? { reason: 'rollback chosen by olga' } : { followUp: ['Check the App-V clients refresh'] }),
      },
    },
    1_000,
  );
  return { workflowId: 'cutover-appv-prod', events, children: {} };
}

describe('the report model', () => {
  it('has the phases with their times, each batch with its hosts, the database tasks and the decisions', () => {
    const model = reportModel(history({ hosts: 4 }));
    expect(model).toMatchObject({ fleet: 'appv-prod', product: 'App-V 4.5', source: '4.1-SP1', target: '4.5', outcome: 'completed', unreadable: 0 });
    expect(model.phases.map((p) => p.phase)).toEqual(['preflight', 'awaiting-approval', 'draining', 'taking-offline', 'backing-up', 'upgrading-hosts', 'verifying', 'bringing-online']);
    const gate = model.phases[1];
    expect(gate && gate.end - gate.start).toBe(3_600_000);
    expect(model.batches.map((b) => [b.step, b.hosts, b.end - b.start])).toEqual(STEPS.map((step) => [step, 4, 2_000]));
    expect(model.database).toEqual([expect.objectContaining({ action: 'backup', host: 'appv-00001', ok: true, result: 'APPVDB.bak' })]);
    expect(model.decisions.map((d) => `${d.gate} ${d.decision} ${d.approver}`)).toEqual(['beforeOffline approve alice']);
    expect(model.followUp).toEqual(['Check the App-V clients refresh']);
    expect(model.backup).toEqual({ name: 'APPVDB.bak', checksum: 'f673701737fdd9a7' });
  });

  it("gives every host its starting and final version and each step's outcome and time", () => {
    const model = reportModel(history({ hosts: 3 }));
    expect(model.steps).toEqual([...STEPS]);
    for (const row of model.hosts) {
      expect(row).toMatchObject({ startVersion: '4.1-SP1', finalVersion: '4.5', verdict: 'upgraded' });
      expect(Object.keys(row.steps)).toEqual([...STEPS]);
      expect(row.steps.upgrade).toEqual({ ok: true, ms: 2_000, runs: 1 });
    }
  });

  it('reports a failure and the rollback: the failed host with its error, the others back at their version', () => {
    const model = reportModel(history({ hosts: 4, failUpgrade: ['appv-00003'], rollBack: true }));
    expect(model.outcome).toBe('rolled-back');
    expect(model.reason).toBe('rollback chosen by olga');
    expect(model.failures).toEqual([expect.objectContaining({ host: 'appv-00003', step: 'upgrade', error: 'upgrade failed: installer: disk full' })]);
    expect(model.rollback).toBeDefined();
    const byId = Object.fromEntries(model.hosts.map((row) => [row.id, row]));
    expect(byId['appv-00003']).toMatchObject({ verdict: 'failed', finalVersion: '4.1-SP1' });
    expect(byId['appv-00001']).toMatchObject({ verdict: 'rolled back', finalVersion: '4.1-SP1' });
    expect(model.followUp).toEqual([]);
  });

  it('reports a run still open as running, up to its last event, without a checklist', () => {
    // Cut where it starts verifying: upgraded, not yet verified nor online.
    const open = history({ hosts: 2 });
    open.events = open.events.slice(0, open.events.findIndex((event) => event.kind === 'phase' && event.phase === 'verifying'));
    const model = reportModel(open);
    expect(model.outcome).toBe('running');
    expect(model.end).toBe(open.events.at(-1)?.at);
    expect(model.followUp).toEqual([]);
    expect(model.hosts.map((row) => [row.verdict, row.finalVersion])).toEqual([
      ['not finished', '4.5'],
      ['not finished', '4.5'],
    ]);
  });

  it('reads a failed run from its failure: the reason, and the decisions, records and backup of its last status', () => {
    const failed = history({ hosts: 2 });
    const closed = failed.events.at(-1);
    if (closed?.kind !== 'workflowClosed') throw new Error('the made-up history ends with its close');
    const result = closed.result as { decisions: unknown[]; records: unknown[]; backup: unknown };
    failed.events[failed.events.length - 1] = { ...closed, status: 'failed', result: undefined, failure: 'verify failed on appv-00002', details: { decisions: result.decisions, records: result.records, backup: result.backup, phase: 'failed' } };
    const model = reportModel(failed);
    expect(model).toMatchObject({ outcome: 'failed', reason: 'verify failed on appv-00002', backup: { name: 'APPVDB.bak' }, followUp: [], unreadable: 0 });
    expect(model.decisions).toHaveLength(1);
    expect(model.records).toHaveLength(1);
  });

  it('counts a payload that does not fit its schema instead of failing', () => {
    const broken = history({ hosts: 2 });
    const scheduled = broken.events.find((e) => e.kind === 'activityScheduled');
    if (scheduled?.kind === 'activityScheduled') scheduled.input = { step: 42 };
    const model = reportModel(broken);
    expect(model.unreadable).toBe(1);
    expect(model.batches).toHaveLength(STEPS.length - 1);
  });
});

describe('the renderings', () => {
  it('HTML is self-contained: inline CSS and SVG, nothing fetched, no script; text is escaped', () => {
    const made = history({ hosts: 4, failUpgrade: ['appv-00002'], rollBack: true });
    const closed = made.events.at(-1);
    if (closed?.kind === 'workflowClosed') (closed.result as { reason: string }).reason = 'rollback chosen by <olga> & co';
    const html = reportHtml(reportModel(made));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<style>');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|<link|src=|href="http/);
    expect(html).toContain('rollback chosen by &lt;olga&gt; &amp; co');
    expect(html).toContain('APPVDB.bak');
    expect(html).toContain('f673701737fdd9a7');
  });

  it('Markdown has the outcome, the decisions, the failed hosts, the backup and the checklist', () => {
    const md = reportMarkdown(reportModel(history({ hosts: 4, failUpgrade: ['appv-00002'] })));
    expect(md).toContain('## Cutover appv-prod: 4.1-SP1 → 4.5: **completed**');
    expect(md).toContain('| beforeOffline | approve | alice | 23:00:00 |  |');
    expect(md).toContain('| appv-00002 | 4.1-SP1 | upgrade failed: installer: disk full |');
    expect(md).toContain('Backup `APPVDB.bak`, checksum `f673701737fdd9a7`.');
    expect(md).toContain('- [ ] Check the App-V clients refresh');
  });

  it('the timeline shades the rollback and marks the decision that chose it', () => {
    const svg = timelineSvg(reportModel(history({ hosts: 4, failUpgrade: ['appv-00003'], rollBack: true })));
    expect(svg).toMatch(/<rect [^>]*fill="#c62828" opacity="0.08"\/>/);
    expect(svg).toContain('>rollback</text>');
    expect(svg).toContain('2. ✖ guided-failure: rollback by olga at');
  });

  it('the timeline cuts a long wait to a short break and draws each batch with its host count', () => {
    const svg = timelineSvg(reportModel(history({ hosts: 4 })));
    expect(svg).toContain('1 h 00 m with nothing running');
    expect(svg.match(/<rect[^>]*fill="#2e7d32"/g)).toHaveLength(STEPS.length);
    expect(svg).toContain('1. ✔ beforeOffline: approve by alice at 23:00:00');
  });
});

describe('a 10,000-host run', () => {
  const made = history({ hosts: 10_000, failUpgrade: ['appv-00042', 'appv-09000'], inChildren: true, batchSize: 1000 });
  const manyBatches = history({ hosts: 10_000, batchSize: 50 });

  it('makes a report whose HTML a browser opens at once: hosts grouped by outcome, size bounded', () => {
    const started = Date.now();
    const model = reportModel(made);
    const html = reportHtml(model);
    const md = reportMarkdown(model);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(model.hosts).toHaveLength(10_000);
    expect(model.children).toBe(0);
    expect(model.hosts.filter((row) => row.verdict === 'failed').map((row) => row.id)).toEqual(['appv-00042', 'appv-09000']);
    expect(html.length).toBeLessThan(1_000_000);
    expect(md.length).toBeLessThan(20_000);
    // Two groups: the failed hosts open, the 9,998 upgraded ones collapsed with 200 rows and the rest by id.
    const summaries = [...html.matchAll(/<details( open)?><summary>([^<]*)<\/summary>/g)].map((m) => `${m[1] ?? ''}${m[2]}`);
    expect(summaries.filter((s) => !s.startsWith('upgrade on'))).toEqual([' openfailed: 2 host(s), 4.1-SP1 → 4.1-SP1, upgrade failed', 'upgraded: 9,998 host(s), 4.1-SP1 → 4.5', '9,798 more hosts with this outcome']);
    expect(html.match(/<tr>/g)?.length).toBeLessThan(250);
  });

  it('summarises the timeline: one bar per step and phase past the bar limit', () => {
    const model = reportModel(manyBatches);
    expect(model.batches).toHaveLength(7 * 200);
    const svg = timelineSvg(model);
    expect(svg.match(/<rect[^>]*fill="#2e7d32"/g)).toHaveLength(7);
    expect(svg).toContain('10000 hosts, 200 batches');
    expect(svg.length).toBeLessThan(50_000);
    expect(model.batches.length).toBeGreaterThan(MAX_BARS);
  });
});

describe("cutover report's options", () => {
  it('takes a file per kind, and refuses a name of another kind (so one file for two reports) or an unknown option, naming each', () => {
    expect(parseReportOptions({ html: 'r.html', md: 'r.md', svg: 't.svg' })).toEqual({ ok: true, options: { html: 'r.html', md: 'r.md', svg: 't.svg' } });
    expect(parseReportOptions({})).toEqual({ ok: true, options: {} });
    const refused = parseReportOptions({ html: 'report.md', md: 'report.md', pdf: 'x.pdf' });
    expect(refused.ok).toBe(false);
    const message = refused.ok ? '' : refused.message;
    expect(message).toContain("the html report's file name must end in .html or .htm (--html)");
    expect(message).toContain('Unrecognized key: "pdf"');
    expect(message).not.toContain('\n');
    const twice = parseReportOptions({ html: 'r.html', md: 'r.html' });
    expect(twice.ok ? '' : twice.message).toContain("the md report's file name must end in .md or .markdown (--md)");
  });
});
