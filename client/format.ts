/** Human-readable renderings for the terminal. */
import { approveCommand, gateProgressText, hostCountsText, operatorCommands, startingVersionsText } from '../core/details';
import type { RunStatus } from '../core/status';

export function formatStatus(workflowId: string, status: RunStatus): string {
  const lines = [`${workflowId}: ${status.fleet} ${status.source} → ${status.target}`, `  phase: ${status.phase}`, `  hosts: ${hostCountsText(status.hostCounts)}`];
  const started = startingVersionsText(status.versions);
  if (started) lines.push(`  started at: ${started} (a rollback returns each host there)`);
  const gate = status.pendingGate;
  if (gate) {
    lines.push(
      `  waiting for approval at gate ${gate.gate} ${gateProgressText(gate)}`,
      `    ${gate.instructions}`,
      `    approve with: ${approveCommand(workflowId, status)}`,
    );
  }
  const waiting = status.awaitingOperator;
  if (waiting) {
    lines.push(`  waiting for an operator${waiting.rollingBack ? ' (during rollback)' : ''}: ${waiting.reason}`);
    for (const host of waiting.hosts) lines.push(`    ${host.host}: ${host.error}\n      ${host.outputTail.trim().split('\n').slice(-3).join('\n      ')}`);
    lines.push(`    choose: ${operatorCommands(workflowId, waiting).join('  |  ')}`);
    if (waiting.expiresAt) lines.push(`    rolls back automatically at ${waiting.expiresAt}`);
  }
  for (const child of status.children ?? []) lines.push(`  running in child workflow ${child.workflowId} (${child.phase}, ${child.hosts} hosts)`);
  if (status.backup) lines.push(`  backup: ${status.backup.name} (checksum ${status.backup.checksum.slice(0, 16)}…)`);
  // A webhook that failed stops nothing, so nothing else would say it: the people it was for were not told.
  for (const n of status.notifications ?? []) if (n.state === 'failed') lines.push(`  ✖ notify ${n.target} (${n.event}) failed: ${n.error ?? ''}`);
  for (const [id, host] of Object.entries(status.hosts)) {
    if (host.state === 'failed') lines.push(`  ✖ ${id}: ${host.error}${host.outputTail ? `\n      ${host.outputTail.trim().split('\n').slice(-3).join('\n      ')}` : ''}`);
  }
  for (const d of status.decisions) lines.push(`  decision: ${d.gate} ${d.decision} by ${d.approver} at ${d.at}${d.comment ? ` (${d.comment})` : ''}`);
  if (status.failure) lines.push(`  failure: ${status.failure}`);
  return lines.join('\n');
}
