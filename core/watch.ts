/**
 * `cutover watch` (and `npm start`'s progress): a run's status as a view, decided without I/O. The model says, per
 * phase, how many hosts are done, failed, skipped or still to go; what is under way; what the run waits for and the
 * exact command that answers it; the failed hosts with their error line. Two renderings: a frame of lines a live
 * renderer redraws (client/watch.ts, log-update), and facts, one line each, for a terminal that cannot redraw.
 */
import { approveCommand, failedHostText, gateProgressText, operatorCommands } from './details';
import type { HostState, HostStatus, RunStatus } from './status';

/** A phase as the view draws it: the two upgrade phases are one bar (which host owns the DB is not in the status). */
interface BarSpec {
  name: string;
  /** How far a host's state must have got for the phase to be done on it (index in FORWARD). */
  reach: number;
  steps: string[];
  phases: string[];
}

const FORWARD: HostState[] = ['pending', 'checked', 'drained', 'offline', 'upgraded', 'started', 'verified', 'online'];
const ROLLED_BACK: HostState[] = ['downgraded', 'rolled-back'];

const BARS: BarSpec[] = [
  { name: 'preflight', reach: 1, steps: ['version'], phases: ['preflight'] },
  { name: 'drain', reach: 2, steps: ['drain'], phases: ['draining'] },
  { name: 'stop', reach: 3, steps: ['stop'], phases: ['taking-offline'] },
  { name: 'upgrade', reach: 5, steps: ['upgrade', 'start'], phases: ['upgrading-db-owner', 'upgrading-hosts'] },
  { name: 'verify', reach: 6, steps: ['verify'], phases: ['verifying'] },
  { name: 'online', reach: 7, steps: ['online'], phases: ['bringing-online'] },
];

const ROLLBACK_STEPS = ['rollback-drain', 'rollback-stop', 'downgrade', 'rollback-start', 'rollback-verify', 'rollback-online'];

export interface PhaseBar {
  name: string;
  done: number;
  failed: number;
  skipped: number;
  remaining: number;
  /** The phase the run is in now. */
  current: boolean;
}

export interface WatchModel {
  workflowId: string;
  title: string;
  phase: string;
  bars: PhaseBar[];
  backup: string;
  underWay: string[];
  gate?: { heading: string; instructions: string; approve: string; unreachable?: string };
  operator?: { heading: string; choose: string[]; expiresAt?: string };
  failed: string[];
  /** Failed hosts beyond those listed. */
  moreFailed: number;
  failure?: string;
  /** What a person must do before the run goes on; the watch stops there. */
  waitingFor?: 'gate' | 'operator';
}

/** Failed hosts listed by name; the rest are counted (`cutover status` lists them all). */
export const FAILED_LISTED = 8;
const BAR_WIDTH = 30;

type Place = 'done' | 'failed' | 'skipped' | 'remaining';

/** Where one host stands in one forward phase. */
function placeIn(bar: number, host: HostStatus): Place {
  const spec = BARS[bar] as BarSpec;
  if (host.state === 'failed' || host.state === 'skipped') {
    const at = BARS.findIndex((b) => b.steps.includes(host.step ?? ''));
    // A host that failed during the rollback had gone forward: the rollback bar shows its failure.
    if (at < 0) return ROLLBACK_STEPS.includes(host.step ?? '') ? 'done' : 'remaining';
    if (bar < at) return 'done';
    if (bar > at) return host.state === 'skipped' ? 'skipped' : 'remaining';
    return host.state;
  }
  return FORWARD.indexOf(host.state) >= spec.reach ? 'done' : 'remaining';
}

function emptyBar(name: string, current: boolean): PhaseBar {
  return { name, done: 0, failed: 0, skipped: 0, remaining: 0, current };
}

function forwardBars(status: RunStatus, hosts: HostStatus[]): PhaseBar[] {
  return BARS.map((spec, i) => {
    const bar = emptyBar(spec.name, spec.phases.includes(status.phase));
    for (const host of hosts) bar[placeIn(i, host)]++;
    return bar;
  });
}

function rollbackBar(status: RunStatus, hosts: HostStatus[]): PhaseBar | undefined {
  const rolling = status.phase === 'rolling-back' || status.phase === 'rolled-back' || status.awaitingOperator?.rollingBack === true;
  if (!rolling && !hosts.some((host) => ROLLED_BACK.includes(host.state))) return undefined;
  const bar = emptyBar('rollback', status.phase === 'rolling-back');
  for (const host of hosts) {
    if (host.state === 'rolled-back') bar.done++;
    else if (host.state === 'failed' && ROLLBACK_STEPS.includes(host.step ?? '')) bar.failed++;
    else if (host.state === 'skipped') bar.skipped++;
    else bar.remaining++;
  }
  return bar;
}

function backupText(status: RunStatus): string {
  if (status.backup) return `done: ${status.backup.name} (checksum ${status.backup.checksum.slice(0, 12)}…)`;
  return status.phase === 'backing-up' ? 'under way' : 'not yet';
}

function underWayText(status: RunStatus): string[] {
  const batches = (status.batches ?? []).map((batch) => {
    const more = batch.hostCount - batch.hosts.length;
    return `${batch.step} on ${batch.hosts.join(', ')}${more > 0 ? ` (+${more} more)` : ''}${batch.wave !== undefined ? `, wave ${batch.wave + 1}` : ''}`;
  });
  const children = (status.children ?? []).map((child) => `${child.phase} on ${child.hosts} hosts in child workflow ${child.workflowId}`);
  return [...batches, ...children];
}

const ENDED_BY_FAILURE = new Set(['failed', 'rolling-back', 'rolled-back', 'rejected', 'awaiting-operator']);

export function watchModel(workflowId: string, status: RunStatus): WatchModel {
  const hosts = Object.entries(status.hosts);
  const failedHosts = hosts.filter(([, host]) => host.state === 'failed');
  const gate = status.pendingGate;
  const waiting = status.awaitingOperator;
  const rollback = rollbackBar(status, hosts.map(([, host]) => host));
  return {
    workflowId,
    title: `${workflowId}: ${status.fleet} ${status.source} → ${status.target}`,
    phase: status.phase,
    bars: [...forwardBars(status, hosts.map(([, host]) => host)), ...(rollback ? [rollback] : [])],
    backup: backupText(status),
    underWay: underWayText(status),
    ...(gate
      ? {
          gate: {
            heading: `Waiting for approval at gate ${gate.gate} ${gateProgressText(gate)}`,
            instructions: gate.instructions,
            approve: approveCommand(workflowId, status),
            ...(gate.unreachable ? { unreachable: gate.unreachable } : {}),
          },
        }
      : {}),
    ...(waiting
      ? {
          operator: {
            heading: `Waiting for an operator${waiting.rollingBack ? ' (during rollback)' : ''}: ${waiting.reason}`,
            choose: operatorCommands(workflowId, waiting),
            ...(waiting.expiresAt ? { expiresAt: waiting.expiresAt } : {}),
          },
        }
      : {}),
    failed: failedHosts.slice(0, FAILED_LISTED).map(([id, host]) => failedHostText({ host: id, error: host.error ?? `${host.step ?? 'a step'} failed`, outputTail: host.outputTail ?? '' })),
    moreFailed: Math.max(0, failedHosts.length - FAILED_LISTED),
    // The status keeps the last failure after an operator answered it: shown only while it is why the run stops.
    ...(status.failure && ENDED_BY_FAILURE.has(status.phase) ? { failure: status.failure } : {}),
    ...(gate ? { waitingFor: 'gate' as const } : waiting ? { waitingFor: 'operator' as const } : {}),
  };
}

function total(bar: PhaseBar): number {
  return bar.done + bar.failed + bar.skipped + bar.remaining;
}

/** A bar of BAR_WIDTH cells: █ done, ✖ failed, ▒ skipped, ░ still to go. Every non-zero part gets at least one cell. */
export function barCells(bar: PhaseBar, width = BAR_WIDTH): string {
  const all = total(bar);
  if (all === 0) return ' '.repeat(width);
  const parts: [number, string][] = [
    [bar.done, '█'],
    [bar.failed, '✖'],
    [bar.skipped, '▒'],
  ];
  let used = 0;
  let cells = '';
  for (const [count, glyph] of parts) {
    const n = count === 0 ? 0 : Math.min(width - used, Math.max(1, Math.round((count / all) * width)));
    cells += glyph.repeat(n);
    used += n;
  }
  // Remaining hosts keep at least one cell, so a bar is full only when nothing is left.
  if (bar.remaining > 0 && used === width) cells = cells.slice(0, width - 1);
  return cells.padEnd(width, '░');
}

export function barCounts(bar: PhaseBar): string {
  const parts = [`${bar.done}/${total(bar)} done`];
  if (bar.failed) parts.push(`${bar.failed} failed`);
  if (bar.skipped) parts.push(`${bar.skipped} skipped`);
  if (bar.remaining) parts.push(`${bar.remaining} to go`);
  return parts.join(', ');
}

/** A line cut at spaces to `width` columns; its continuations indented under its text. */
export function wrapLine(line: string, width: number): string[] {
  const indent = ' '.repeat(Math.min(line.length - line.trimStart().length + 4, Math.floor(width / 2)));
  const lines: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const cut = rest.lastIndexOf(' ', width);
    const at = cut > indent.length ? cut : width;
    lines.push(rest.slice(0, at).trimEnd());
    rest = indent + rest.slice(at).trimStart();
  }
  return [...lines, rest];
}

/**
 * The frame a live renderer draws, wrapped at spaces to the terminal's `width`; `now` is the time shown (the
 * client's clock, not the run's).
 */
export function watchFrame(model: WatchModel, now: string, width = 120): string[] {
  return frameLines(model, now).flatMap((line) => wrapLine(line, width));
}

function frameLines(model: WatchModel, now: string): string[] {
  const lines = [`${model.title}    phase: ${model.phase}    ${now}`, ''];
  for (const bar of model.bars) {
    lines.push(`${bar.current ? '▶' : ' '} ${bar.name.padEnd(10)} ${barCells(bar)}  ${barCounts(bar)}`);
    if (bar.name === 'stop') lines.push(`  ${'backup'.padEnd(10)} ${model.backup}`);
  }
  if (model.underWay.length) lines.push('', ...model.underWay.map((text, i) => `${i === 0 ? 'Under way: ' : '           '}${text}`));
  if (model.gate) {
    lines.push('', model.gate.heading, `  ${model.gate.instructions}`);
    if (model.gate.unreachable) lines.push(`  This gate cannot be approved: ${model.gate.unreachable}`);
    lines.push(`  approve with: ${model.gate.approve}`);
  }
  if (model.failed.length) {
    lines.push('', 'Failed hosts:', ...model.failed.map((text) => `  ✖ ${text}`));
    if (model.moreFailed) lines.push(`  … and ${model.moreFailed} more (cutover status ${model.workflowId})`);
  }
  if (model.operator) {
    lines.push('', model.operator.heading, ...model.operator.choose.map((command, i) => `  ${i === 0 ? 'choose: ' : '    or: '}${command}`));
    if (model.operator.expiresAt) lines.push(`  rolls back automatically at ${model.operator.expiresAt}`);
  }
  // While an operator is asked, the failure is the question just above.
  if (model.failure && !model.operator) lines.push('', `Failure: ${model.failure}`);
  return lines;
}

/** The view as facts, one line each, keyed so that a change of one is one new line. */
export function watchFacts(model: WatchModel): Map<string, string> {
  const facts = new Map<string, string>([['phase', `phase ${model.phase}`]]);
  for (const bar of model.bars) facts.set(`bar:${bar.name}`, `${bar.name}: ${barCounts(bar)}`);
  facts.set('backup', `backup: ${model.backup}`);
  facts.set('underWay', `under way: ${model.underWay.join('; ') || 'nothing'}`);
  if (model.gate) facts.set('gate', `${model.gate.heading}: ${model.gate.instructions} Approve with: ${model.gate.approve}`);
  model.failed.forEach((text) => facts.set(`failed:${text.slice(0, text.indexOf(':'))}`, `failed ${text}`));
  if (model.moreFailed) facts.set('moreFailed', `and ${model.moreFailed} more failed hosts`);
  if (model.operator) facts.set('operator', `${model.operator.heading} Choose: ${model.operator.choose.join(' | ')}`);
  // As in the frame: while an operator is asked, the failure is the question.
  if (model.failure && !model.operator) facts.set('failure', `failure: ${model.failure}`);
  return facts;
}

/** The facts that are new or changed since `before`, in the view's order: what a plain terminal prints. */
export function changedFacts(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([key, line]) => before.get(key) !== line).map(([, line]) => line);
}
