/** Human-readable renderings for the terminal. */
import { HOST_STATES, type RunStatus } from '../core/status';

export function formatStatus(workflowId: string, status: RunStatus): string {
  const counts = HOST_STATES.filter((s) => status.hostCounts[s]).map((s) => `${status.hostCounts[s]} ${s}`);
  const lines = [`${workflowId}: ${status.fleet} ${status.source} → ${status.target}`, `  phase: ${status.phase}`, `  hosts: ${counts.join(', ')}`];
  const gate = status.pendingGate;
  if (gate) {
    lines.push(
      `  waiting for approval at gate ${gate.gate} (${gate.approvedBy.length}/${gate.quorum}, approvers: ${gate.approvers.join(', ') || 'anyone'}${gate.expiresAt ? `, expires ${gate.expiresAt}` : ''})`,
      `    ${gate.instructions}`,
      `    approve with: cutover approve ${workflowId} --as NAME`,
    );
  }
  if (status.backup) lines.push(`  backup: ${status.backup.name} (checksum ${status.backup.checksum.slice(0, 16)}…)`);
  for (const [id, host] of Object.entries(status.hosts)) {
    if (host.state === 'failed') lines.push(`  ✖ ${id}: ${host.error}${host.outputTail ? `\n      ${host.outputTail.trim().split('\n').slice(-3).join('\n      ')}` : ''}`);
  }
  for (const d of status.decisions) lines.push(`  decision: ${d.gate} ${d.decision} by ${d.approver} at ${d.at}${d.comment ? ` (${d.comment})` : ''}`);
  if (status.failure) lines.push(`  failure: ${status.failure}`);
  return lines.join('\n');
}
