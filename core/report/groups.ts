/** Hosts grouped by outcome, so a report of 10,000 hosts shows a few groups, failures first. Pure. */
import type { HostRow, HostVerdict, ReportModel } from './model';

export interface HostGroup {
  verdict: HostVerdict;
  /** "4.1-SP1 → 4.5", or with the step that failed. */
  label: string;
  hosts: HostRow[];
}

const ORDER: HostVerdict[] = ['failed', 'skipped', 'rolled back', 'not finished', 'not upgraded', 'upgraded'];

function failedStep(row: HostRow): string | undefined {
  return Object.entries(row.steps).find(([, step]) => !step.ok)?.[0];
}

export function hostGroups(model: ReportModel): HostGroup[] {
  const groups = new Map<string, HostGroup>();
  for (const row of model.hosts) {
    const step = row.verdict === 'failed' ? failedStep(row) : undefined;
    const label = `${row.startVersion ?? '?'} → ${row.finalVersion ?? '?'}${step ? `, ${step} failed` : ''}`;
    const key = `${row.verdict}|${label}`;
    const group = groups.get(key) ?? { verdict: row.verdict, label, hosts: [] };
    group.hosts.push(row);
    groups.set(key, group);
  }
  return [...groups.values()].sort((a, b) => ORDER.indexOf(a.verdict) - ORDER.indexOf(b.verdict) || b.hosts.length - a.hosts.length);
}

export function verdictCounts(model: ReportModel): Partial<Record<HostVerdict, number>> {
  const counts: Partial<Record<HostVerdict, number>> = {};
  for (const row of model.hosts) counts[row.verdict] = (counts[row.verdict] ?? 0) + 1;
  return counts;
}
