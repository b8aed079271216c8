/**
 * The run's timeline as one SVG: the phases, each batch as a bar with its host count (red when a host failed), the
 * database tasks, the rollback, and the decisions (gates and operators' choices) with who and when. Pure.
 *
 * Bounded at any fleet size: past MAX_BARS batches, the batches of one step within one phase are drawn as one bar
 * ("N hosts, B batches"); past MAX_MARKERS decisions, the rest are counted. A long wait with nothing running (a gate
 * overnight) is drawn as a short break, so the work around it stays readable.
 */
import type { BatchSpan, ReportModel } from './model';
import { escapeXml, clockTime, duration } from './text';

export const MAX_BARS = 150;
export const MAX_MARKERS = 30;

const WIDTH = 1100;
const LABEL = 150;
const RIGHT = 20;
const LANE = 24;
const BREAK = 34;

const COLORS = {
  ok: '#2e7d32',
  failed: '#c62828',
  waiting: '#f9a825',
  phase: '#5c6bc0',
  rollback: '#c62828',
  grid: '#e0e0e0',
  text: '#212121',
  muted: '#616161',
};

interface Segment {
  from: number;
  to: number;
  x: number;
  width: number;
  collapsed: boolean;
}

/** Busy times (a batch or database task under way), merged. */
function busy(model: ReportModel): [number, number][] {
  const spans = [...model.batches, ...model.database].map((s) => [s.start, s.end] as [number, number]).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [from, to] of spans) {
    const last = merged.at(-1);
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/** The time axis, cut where nothing ran for long: such a gap gets a fixed short width. */
export function timeAxis(model: ReportModel, width = WIDTH - LABEL - RIGHT): Segment[] {
  const spans = busy(model);
  // A wait is cut when it is over 10 s and longer than half of all the time something ran.
  const working = spans.reduce((sum, [from, to]) => sum + (to - from), 0);
  const cuts: [number, number][] = [];
  let at = model.start;
  for (const [from, to] of [...spans, [model.end, model.end] as [number, number]]) {
    if (from - at > Math.max(working / 2, 10_000)) cuts.push([at, from]);
    at = Math.max(at, to);
  }
  const pieces: Omit<Segment, 'x' | 'width'>[] = [];
  at = model.start;
  for (const [from, to] of cuts) {
    if (from > at) pieces.push({ from: at, to: from, collapsed: false });
    pieces.push({ from, to, collapsed: true });
    at = to;
  }
  if (model.end > at || pieces.length === 0) pieces.push({ from: at, to: Math.max(model.end, at + 1), collapsed: false });
  const open = pieces.filter((p) => !p.collapsed).reduce((sum, p) => sum + (p.to - p.from), 0) || 1;
  const spare = width - cuts.length * BREAK;
  let x = LABEL;
  return pieces.map((piece) => {
    const w = piece.collapsed ? BREAK : ((piece.to - piece.from) / open) * spare;
    const segment = { ...piece, x, width: w };
    x += w;
    return segment;
  });
}

function xOf(axis: Segment[], time: number): number {
  // Inside a cut wait too, so what spans it (the gate's phase) keeps the break's width.
  const segment = axis.find((s) => time <= s.to) ?? (axis.at(-1) as Segment);
  const span = segment.to - segment.from || 1;
  return segment.x + (Math.min(Math.max(time, segment.from), segment.to) - segment.from) / span * segment.width;
}

/** The batches to draw: each, or past MAX_BARS one bar per step and phase. */
export function bars(model: ReportModel): (BatchSpan & { batches: number })[] {
  if (model.batches.length <= MAX_BARS) return model.batches.map((batch) => ({ ...batch, batches: 1 }));
  const groups = new Map<string, BatchSpan & { batches: number }>();
  for (const batch of model.batches) {
    // The phase it started in: the last that began by then.
    const phase = model.phases.reduce((found, p, i) => (p.start <= batch.start ? i : found), -1);
    const key = `${batch.step}/${phase}`;
    const group = groups.get(key);
    if (!group) groups.set(key, { step: batch.step, start: batch.start, end: batch.end, hosts: batch.hosts, failed: batch.failed, batches: 1 });
    else {
      group.start = Math.min(group.start, batch.start);
      group.end = Math.max(group.end, batch.end);
      group.hosts += batch.hosts;
      group.failed += batch.failed;
      group.batches++;
    }
  }
  return [...groups.values()];
}

const PHASE_NAMES: Record<string, string> = {
  'awaiting-approval': 'gate',
  'awaiting-operator': 'operator',
  'upgrading-db-owner': 'DB owner',
  'upgrading-hosts': 'upgrade',
  'taking-offline': 'offline',
  'bringing-online': 'online',
  'backing-up': 'backup',
  'rolling-back': 'rollback',
};

function phaseColor(phase: string): string {
  if (phase.startsWith('awaiting')) return COLORS.waiting;
  if (phase === 'rolling-back' || phase === 'rolled-back' || phase === 'failed') return COLORS.rollback;
  return COLORS.phase;
}

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y}" ${attrs}>${escapeXml(body)}</text>`;
}

function rect(x: number, y: number, w: number, h: number, fill: string, extra = ''): string {
  return `<rect x="${x.toFixed(1)}" y="${y}" width="${Math.max(w, 2).toFixed(1)}" height="${h}" fill="${fill}" ${extra}/>`;
}

function phaseRow(model: ReportModel, axis: Segment[], y: number): string[] {
  const out = [text(8, y + 16, 'phase', `font-weight="600"`)];
  for (const span of model.phases) {
    const x = xOf(axis, span.start);
    const w = xOf(axis, span.end) - x;
    out.push(rect(x, y + 2, w, LANE - 4, phaseColor(span.phase), `rx="3" opacity="0.85"`));
    const name = PHASE_NAMES[span.phase] ?? span.phase;
    if (w > name.length * 6.5 + 6) out.push(text(x + 4, y + 16, name, `fill="#fff" font-size="11"`));
  }
  return out;
}

function laneRows(model: ReportModel, axis: Segment[], top: number): { svg: string[]; height: number } {
  const drawn = bars(model);
  const lanes = [...model.steps, ...(model.database.length ? ['database'] : [])];
  const out: string[] = [];
  lanes.forEach((lane, i) => {
    const y = top + i * LANE;
    out.push(`<line x1="${LABEL}" x2="${WIDTH - RIGHT}" y1="${y + LANE}" y2="${y + LANE}" stroke="${COLORS.grid}"/>`, text(8, y + 16, lane));
  });
  for (const bar of drawn) {
    const y = top + lanes.indexOf(bar.step) * LANE;
    const x = xOf(axis, bar.start);
    const w = Math.max(xOf(axis, bar.end) - x, 3);
    const fill = bar.failed ? COLORS.failed : COLORS.ok;
    const label = bar.batches > 1 ? `${bar.hosts} hosts, ${bar.batches} batches` : String(bar.hosts);
    const title = `${bar.step}: ${bar.hosts} host(s)${bar.failed ? `, ${bar.failed} failed` : ''}${bar.batches > 1 ? ` in ${bar.batches} batches` : ''}, ${duration(bar.end - bar.start)}${bar.child ? ` (child ${bar.child})` : ''}`;
    out.push(`<g>${rect(x, y + 4, w, LANE - 8, fill, `rx="2"`)}<title>${escapeXml(title)}</title></g>`);
    const labelText = bar.failed ? `${label} ✖${bar.failed}` : label;
    if (w > labelText.length * 6 + 4) out.push(text(x + 3, y + 16, labelText, `fill="#fff" font-size="10"`));
    else out.push(text(x + w + 3, y + 16, labelText, `fill="${fill}" font-size="10"`));
  }
  const dbLane = top + (lanes.length - 1) * LANE;
  let labelsEnd = 0;
  for (const task of model.database) {
    const x = xOf(axis, task.start);
    const w = Math.max(xOf(axis, task.end) - x, 3);
    out.push(`<g>${rect(x, dbLane + 4, w, LANE - 8, task.ok ? '#00838f' : COLORS.failed, `rx="2"`)}<title>${escapeXml(`database ${task.action} on ${task.host}: ${task.result ?? ''}`)}</title></g>`);
    // Tasks close together share one label rather than print over each other.
    if (x + w + 3 < labelsEnd) continue;
    const near = model.database.filter((other) => other.start >= task.start && xOf(axis, other.start) - x < 60);
    const label = [...new Set(near.map((other) => other.action))].join(', ');
    const after = Math.max(...near.map((other) => xOf(axis, other.end))) + 4;
    out.push(text(after, dbLane + 16, label, `fill="${COLORS.muted}" font-size="10"`));
    labelsEnd = after + label.length * 6;
  }
  return { svg: out, height: lanes.length * LANE };
}

function decisionSymbol(decision: string): { color: string; mark: string } {
  if (decision === 'approve') return { color: COLORS.ok, mark: '✔' };
  if (decision === 'retry' || decision === 'skip') return { color: '#ef6c00', mark: '↻' };
  return { color: COLORS.failed, mark: '✖' };
}

function decisionRows(model: ReportModel, axis: Segment[], top: number, plotBottom: number): { svg: string[]; height: number } {
  const shown = model.decisions.slice(0, MAX_MARKERS);
  const out: string[] = [];
  shown.forEach((d, i) => {
    const x = xOf(axis, Date.parse(d.at));
    const { color } = decisionSymbol(d.decision);
    out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${LANE}" y2="${plotBottom}" stroke="${color}" stroke-dasharray="4 3"/>`);
    out.push(`<circle cx="${x.toFixed(1)}" cy="${plotBottom + 9}" r="8" fill="${color}"/>`, text(x - 3.5 * String(i + 1).length, plotBottom + 13, String(i + 1), `fill="#fff" font-size="10"`));
  });
  const lines = shown.map((d, i) => {
    const { mark } = decisionSymbol(d.decision);
    return `${i + 1}. ${mark} ${d.gate}: ${d.decision} by ${d.approver} at ${clockTime(Date.parse(d.at))}${d.host ? ` (host ${d.host})` : ''}${d.comment ? ` "${d.comment}"` : ''}`;
  });
  if (model.decisions.length > shown.length) lines.push(`and ${model.decisions.length - shown.length} more decisions (in the report's table)`);
  const columns = lines.length > 6 ? 2 : 1;
  const perColumn = Math.ceil(lines.length / columns);
  lines.forEach((line, i) => {
    const column = Math.floor(i / perColumn);
    out.push(text(LABEL + column * 470, top + 14 + (i % perColumn) * 16, line.length > 75 ? `${line.slice(0, 74)}…` : line, `font-size="11"`));
  });
  return { svg: out, height: perColumn * 16 + 8 };
}

function axisRow(axis: Segment[], y: number): string[] {
  const out: string[] = [];
  let lastLabel = -Infinity;
  for (const segment of axis) {
    if (segment.collapsed) {
      const mid = segment.x + segment.width / 2;
      out.push(text(mid - 6, y + 2, '⋯', `font-size="14" fill="${COLORS.muted}"`), `<title>${escapeXml(`${duration(segment.to - segment.from)} with nothing running`)}</title>`);
      out.push(text(segment.x, y + 30, duration(segment.to - segment.from), `font-size="9" fill="${COLORS.muted}"`));
      continue;
    }
    const ticks = Math.max(1, Math.floor(segment.width / 140));
    for (let i = 0; i <= ticks; i++) {
      const time = segment.from + ((segment.to - segment.from) * i) / ticks;
      const x = segment.x + (segment.width * i) / ticks;
      out.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y - 6}" y2="${y}" stroke="${COLORS.muted}"/>`);
      if (x - lastLabel < 60) continue;
      out.push(text(x - 24, y + 14, clockTime(time), `font-size="10" fill="${COLORS.muted}"`));
      lastLabel = x;
    }
  }
  return out;
}

export function timelineSvg(model: ReportModel): string {
  const axis = timeAxis(model);
  const phaseTop = 0;
  const lanesTop = LANE + 6;
  const lanes = laneRows(model, axis, lanesTop);
  const plotBottom = lanesTop + lanes.height;
  const axisY = plotBottom + 30;
  const decisions = decisionRows(model, axis, axisY + 34, plotBottom);
  const height = axisY + 34 + decisions.height;
  const rollback = model.rollback
    ? [rect(xOf(axis, model.rollback.start), 0, xOf(axis, model.rollback.end) - xOf(axis, model.rollback.start), plotBottom, COLORS.rollback, `opacity="0.08"`)]
    : [];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" font-family="system-ui, sans-serif" font-size="12" fill="${COLORS.text}" role="img" aria-label="${escapeXml(`Timeline of ${model.workflowId}`)}">`,
    ...rollback,
    ...phaseRow(model, axis, phaseTop),
    ...lanes.svg,
    ...axisRow(axis, axisY),
    ...decisions.svg,
    '</svg>',
  ].join('\n');
}
