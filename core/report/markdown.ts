/**
 * The report as Markdown for a change ticket: the outcome, phases, decisions, failures, hosts by outcome, the
 * backup, records and the follow-up checklist. Shorter than the HTML: at most MD_ROWS rows per table. Pure.
 */
import { hostGroups, verdictCounts } from './groups';
import type { ReportModel } from './model';
import { clockTime, dateTime, duration } from './text';

export const MD_ROWS = 50;
const IDS_SHOWN = 20;
const RECORD_LINES = 15;

/** A table cell: one line, no pipe that would end the cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function table(head: string[], rows: string[][], total = rows.length): string[] {
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.slice(0, MD_ROWS).map((row) => `| ${row.map(cell).join(' | ')} |`)];
  if (total > MD_ROWS) lines.push('', `…and ${total - MD_ROWS} more.`);
  return lines;
}

function phases(model: ReportModel): string[] {
  return table(
    ['phase', 'from (UTC)', 'to', 'took'],
    model.phases.map((p) => [p.phase, clockTime(p.start), clockTime(p.end), duration(p.end - p.start)]),
  );
}

function hosts(model: ReportModel): string[] {
  const groups = hostGroups(model);
  const lines = table(
    ['outcome', 'hosts', 'versions', 'which'],
    groups.map((g) => [g.verdict, String(g.hosts.length), g.label, `${g.hosts.slice(0, IDS_SHOWN).map((h) => h.id).join(', ')}${g.hosts.length > IDS_SHOWN ? ` …(+${g.hosts.length - IDS_SHOWN})` : ''}`]),
  );
  const failed = model.hosts.filter((row) => row.verdict === 'failed');
  if (failed.length) {
    lines.push('', '**Failed hosts**', '');
    lines.push(...table(['host', 'start', 'error'], failed.map((row) => [row.id, row.startVersion ?? '?', Object.values(row.steps).find((s) => !s.ok)?.error ?? '']), failed.length));
  }
  return lines;
}

function records(model: ReportModel): string[] {
  if (!model.records.length) return ['None.'];
  const shown = model.records.slice(0, 10).flatMap((r) => {
    const lines = r.output.split('\n');
    const kept = lines.slice(0, RECORD_LINES).join('\n') + (lines.length > RECORD_LINES ? `\n… (${lines.length - RECORD_LINES} more lines in the HTML report)` : '');
    return [`<details><summary>${r.step} on ${r.host}</summary>`, '', '```', kept.replace(/```/g, "'''"), '```', '</details>', ''];
  });
  return model.records.length > 10 ? [...shown, `…and ${model.records.length - 10} more records in the HTML report.`] : shown;
}

export function reportMarkdown(model: ReportModel): string {
  const counts = verdictCounts(model);
  const lines = [
    `## Cutover ${model.fleet}: ${model.source} → ${model.target}: **${model.outcome}**`,
    '',
    `Run \`${model.workflowId}\`, ${dateTime(model.start)} to ${dateTime(model.end)} (${duration(model.end - model.start)}).` +
      ` Hosts: ${model.hosts.length}; ${Object.entries(counts).map(([verdict, n]) => `${n} ${verdict}`).join(', ')}.`,
    ...(model.reason ? ['', `Why it did not complete: ${model.reason}`] : []),
    '',
    '### Phases',
    '',
    ...phases(model),
    '',
    '### Decisions',
    '',
    ...(model.decisions.length
      ? table(['gate', 'decision', 'by', 'at (UTC)', 'comment'], model.decisions.map((d) => [d.gate, `${d.decision}${d.host ? ` ${d.host}` : ''}`, d.approver, clockTime(Date.parse(d.at)), d.comment ?? '']), model.decisions.length)
      : ['None.']),
    '',
    '### Failures',
    '',
    ...(model.failures.length
      ? table(['at (UTC)', 'host', 'step', 'error'], model.failures.map((f) => [clockTime(f.at), f.host, f.step, f.error]), model.failures.length)
      : ['No host-step failed.']),
    '',
    '### Hosts',
    '',
    ...hosts(model),
    '',
    '### Database',
    '',
    model.backup ? `Backup \`${model.backup.name}\`, checksum \`${model.backup.checksum}\`.` : 'No backup was taken.',
    ...(model.rollback ? ['', `Rolled back from ${clockTime(model.rollback.start)} to ${clockTime(model.rollback.end)} UTC.`] : []),
    '',
    '### Records',
    '',
    ...records(model),
    '',
    '### Follow-up',
    '',
    ...(model.followUp.length ? model.followUp.map((item) => `- [ ] ${item}`) : ['None.']),
    '',
  ];
  return lines.join('\n');
}
