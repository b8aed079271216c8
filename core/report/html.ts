/**
 * The report as one self-contained HTML file (inline CSS and SVG, no script, nothing fetched): for people, opened
 * from a ticket. Bounded at any fleet size: hosts come in groups by outcome, each a collapsed table of at most
 * ROWS_PER_GROUP hosts, the others of the group listed by id; decisions and failures past their caps are counted.
 */
import { hostGroups, verdictCounts, type HostGroup } from './groups';
import type { HostRow, ReportModel } from './model';
import { timelineSvg } from './svg';
import { clockTime, dateTime, duration, escapeXml as e } from './text';

export const ROWS_PER_GROUP = 200;
export const MAX_TABLE_ROWS = 500;
/** Small runs show every group open; larger ones open only the failures. */
const OPEN_ALL_BELOW = 50;

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#212121;margin:0;background:#fafafa}
main{max-width:1140px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e0e0e0;padding-bottom:4px}
.sub{color:#616161}.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600;font-size:13px;vertical-align:middle}
.completed{background:#2e7d32}.failed,.rolled-back,.rejected,.cancelled,.terminated,.timed-out{background:#c62828}.running,.continued-as-new{background:#f9a825;color:#212121}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}.card{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:22px}.card.bad b{color:#c62828}.card.good b{color:#2e7d32}
.timeline{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:10px;overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5;white-space:nowrap}td:not(:last-child){white-space:nowrap}td.ok{color:#2e7d32}td.bad{color:#c62828;font-weight:600}
details{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:8px 0;padding:6px 10px}summary{cursor:pointer;font-weight:600}
pre{background:#263238;color:#eceff1;padding:8px;border-radius:4px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
.ids{font-family:ui-monospace,monospace;font-size:12px;color:#424242}.muted{color:#757575}
ul.check{list-style:none;padding-left:4px}ul.check li::before{content:"☐ ";font-size:16px}
code{background:#eceff1;padding:1px 4px;border-radius:3px}
`;

function header(model: ReportModel): string {
  return `<h1>Cutover report: ${e(model.fleet)} <span class="badge ${e(model.outcome)}">${e(model.outcome)}</span></h1>
<div class="sub">${model.product ? `${e(model.product)} · ` : ''}${e(model.source)} → ${e(model.target)} · run <code>${e(model.workflowId)}</code></div>
<div class="sub">${dateTime(model.start)} to ${dateTime(model.end)} (${duration(model.end - model.start)})${model.children ? ` · ${model.children} child workflow(s)` : ''}</div>
${model.reason ? `<p><b>Why it did not complete:</b> ${e(model.reason)}</p>` : ''}`;
}

function cards(model: ReportModel): string {
  const counts = verdictCounts(model);
  const card = (label: string, n: number, tone = '') => `<div class="card ${tone}"><b>${n.toLocaleString('en')}</b>${e(label)}</div>`;
  return `<div class="cards">${card('hosts', model.hosts.length)}${card('upgraded', counts.upgraded ?? 0, 'good')}${card('failed', counts.failed ?? 0, counts.failed ? 'bad' : '')}${
    counts.skipped ? card('skipped', counts.skipped, 'bad') : ''
  }${counts['rolled back'] ? card('rolled back', counts['rolled back'], 'bad') : ''}${card('batches', model.batches.length)}${card('decisions', model.decisions.length)}</div>`;
}

function stepCell(row: HostRow, step: string): string {
  const result = row.steps[step];
  if (!result) return '<td class="muted">–</td>';
  const runs = result.runs > 1 ? ` ×${result.runs}` : '';
  return result.ok ? `<td class="ok">✔ ${duration(result.ms)}${runs}</td>` : `<td class="bad" title="${e(result.error ?? '')}">✖ ${duration(result.ms)}${runs}</td>`;
}

function hostTable(model: ReportModel, rows: HostRow[]): string {
  const head = `<tr><th>host</th><th>start</th><th>final</th>${model.steps.map((step) => `<th>${e(step)}</th>`).join('')}<th>error</th></tr>`;
  const body = rows.map((row) => {
    const error = Object.values(row.steps).find((step) => !step.ok)?.error ?? '';
    return `<tr><td>${e(row.id)}</td><td>${e(row.startVersion ?? '?')}</td><td>${e(row.finalVersion ?? '?')}</td>${model.steps.map((step) => stepCell(row, step)).join('')}<td>${e(error)}</td></tr>`;
  });
  return `<table>${head}${body.join('')}</table>`;
}

function groupSection(model: ReportModel, group: HostGroup): string {
  const open = group.verdict === 'failed' || model.hosts.length < OPEN_ALL_BELOW ? ' open' : '';
  const shown = group.hosts.slice(0, ROWS_PER_GROUP);
  const rest = group.hosts.slice(ROWS_PER_GROUP);
  const more = rest.length
    ? `<details><summary>${rest.length.toLocaleString('en')} more hosts with this outcome</summary><p class="ids">${e(rest.map((row) => row.id).join(', '))}</p></details>`
    : '';
  return `<details${open}><summary>${e(group.verdict)}: ${group.hosts.length.toLocaleString('en')} host(s), ${e(group.label)}</summary>${hostTable(model, shown)}${more}</details>`;
}

function decisionsTable(model: ReportModel): string {
  if (!model.decisions.length) return '<p class="muted">No decisions.</p>';
  // Columns that no decision fills (a run decided by name has no keys) are left out.
  const optional = (['host', 'comment', 'key'] as const).filter((field) => model.decisions.some((d) => d[field]));
  const rows = model.decisions.slice(0, MAX_TABLE_ROWS).map(
    (d, i) =>
      `<tr><td>${i + 1}</td><td>${e(d.gate)}</td><td>${e(d.decision)}</td><td>${e(d.approver)}</td><td>${e(clockTime(Date.parse(d.at)))}</td>${optional
        .map((field) => `<td${field === 'key' ? ' class="ids"' : ''}>${e(d[field] ?? '')}</td>`)
        .join('')}</tr>`,
  );
  const more = model.decisions.length > MAX_TABLE_ROWS ? `<p class="muted">and ${model.decisions.length - MAX_TABLE_ROWS} more</p>` : '';
  return `<table><tr><th>#</th><th>gate</th><th>decision</th><th>by</th><th>at (UTC)</th>${optional.map((field) => `<th>${field}</th>`).join('')}</tr>${rows.join('')}</table>${more}`;
}

function failuresTable(model: ReportModel): string {
  if (!model.failures.length) return '<p class="muted">No host-step failed.</p>';
  const rows = model.failures.slice(0, MAX_TABLE_ROWS).map((f) => `<tr><td>${e(clockTime(f.at))}</td><td>${e(f.host)}</td><td>${e(f.step)}</td><td>${e(f.error)}</td></tr>`);
  const more = model.failures.length > MAX_TABLE_ROWS ? `<p class="muted">and ${model.failures.length - MAX_TABLE_ROWS} more</p>` : '';
  return `<table><tr><th>at (UTC)</th><th>host</th><th>step</th><th>error</th></tr>${rows.join('')}</table>${more}`;
}

function databaseSection(model: ReportModel): string {
  const backup = model.backup ? `<p>Backup <code>${e(model.backup.name)}</code>, checksum <code>${e(model.backup.checksum)}</code></p>` : '<p class="muted">No backup was taken.</p>';
  const rows = model.database.map(
    (t) => `<tr><td>${e(clockTime(t.start))}</td><td>${e(t.action)}</td><td>${e(t.host)}</td><td class="${t.ok ? 'ok' : 'bad'}">${t.ok ? '✔' : '✖'} ${duration(t.end - t.start)}</td><td>${e(t.result ?? '')}</td></tr>`,
  );
  return `${backup}${rows.length ? `<table><tr><th>at (UTC)</th><th>task</th><th>host</th><th>outcome</th><th>result</th></tr>${rows.join('')}</table>` : ''}`;
}

function recordsSection(model: ReportModel): string {
  if (!model.records.length) return '<p class="muted">No records.</p>';
  const items = model.records.map((r) => `<details><summary>${e(r.step)} on ${e(r.host)}</summary><pre>${e(r.output)}</pre></details>`);
  const notKept = model.recordsNotKept ? `<p class="muted">${model.recordsNotKept} more outputs were not kept (the run's record budget).</p>` : '';
  return items.join('') + notKept;
}

function followUpSection(model: ReportModel): string {
  if (!model.followUp.length) return '<p class="muted">None.</p>';
  return `<ul class="check">${model.followUp.map((item) => `<li>${e(item)}</li>`).join('')}</ul>`;
}

export function reportHtml(model: ReportModel): string {
  const sections = [
    header(model),
    cards(model),
    `<h2>Timeline</h2><div class="timeline">${timelineSvg(model)}</div>`,
    `<h2>Decisions</h2>${decisionsTable(model)}`,
    `<h2>Failures</h2>${failuresTable(model)}`,
    `<h2>Hosts</h2>${hostGroups(model).map((group) => groupSection(model, group)).join('')}`,
    `<h2>Database</h2>${databaseSection(model)}`,
    `<h2>Records</h2>${recordsSection(model)}`,
    `<h2>Follow-up</h2>${followUpSection(model)}`,
    `<p class="muted">Made by <code>cutover report</code> from the history of ${e(model.workflowId)}${model.children ? ` and its ${model.children} child workflow(s)` : ''}.${
      model.unreadable ? ` ${model.unreadable} record(s) of the history could not be read and are left out.` : ''
    }</p>`,
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cutover report: ${e(model.fleet)} ${e(model.source)} → ${e(model.target)} (${e(model.outcome)})</title>
<style>${CSS}</style></head>
<body><main>
${sections.join('\n')}
</main></body></html>
`;
}
