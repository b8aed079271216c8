/**
 * What a run is doing, in words: the Web UI's current details (Markdown), and the phrases the terminal shares with
 * them (client/format.ts, stack/demo.ts), so the UI and the CLI describe a gate or a failure the same way. Pure.
 */
import { HOST_STATES, type AwaitingOperator, type PendingGate, type RunStatus } from './status';
import { lastLine } from './text';

/** "3 pending, 2 checked": every host state that has hosts, in the order a host goes through them. */
export function hostCountsText(counts: RunStatus['hostCounts']): string {
  return HOST_STATES.filter((state) => counts[state])
    .map((state) => `${counts[state]} ${state}`)
    .join(', ');
}

/**
 * "4.1-SP1 on 3 hosts (appv-01, appv-03, appv-ws-01), 4.1 on appv-02": the versions preflight found, each with up to
 * three of its hosts, so a fleet of thousands stays one line. Empty before preflight, and for runs from before.
 */
export function startingVersionsText(versions: RunStatus['versions']): string {
  const byVersion = new Map<string, string[]>();
  for (const [host, version] of Object.entries(versions ?? {})) {
    const hosts = byVersion.get(version);
    if (hosts) hosts.push(host);
    else byVersion.set(version, [host]);
  }
  return [...byVersion]
    .map(([version, hosts]) => {
      const named = `${hosts.slice(0, 3).join(', ')}${hosts.length > 3 ? ', …' : ''}`;
      return hosts.length === 1 ? `${version} on ${named}` : `${version} on ${hosts.length} hosts (${named})`;
    })
    .join(', ');
}

/** "(1/2, approvers: alice, bob, expires ...)": how far the gate's quorum is, who may decide, until when. */
export function gateProgressText(gate: PendingGate): string {
  return `(${gate.approvedBy.length}/${gate.quorum}, approvers: ${gate.approvers.join(', ') || 'anyone'}${gate.expiresAt ? `, expires ${gate.expiresAt}` : ''})`;
}

/** One failed host: its error and the last line it printed. */
export function failedHostText(host: AwaitingOperator['hosts'][number]): string {
  const printed = lastLine(host.outputTail);
  return `${host.host}: ${host.error}${printed ? ` — ${printed}` : ''}`;
}

/** The command that approves the pending gate: with a key where the worker takes signed decisions only, by name where it accepts names. */
export function approveCommand(workflowId: string, status: Pick<RunStatus, 'trust'>): string {
  if (status.trust?.decisions !== 'signed') return `cutover approve ${workflowId} --as NAME`;
  return `cutover approve ${workflowId} --key YOUR.key (for the Web UI: cutover token approve ${workflowId} --key YOUR.key)`;
}

/** The commands an operator chooses from: retry, skip (naming the hosts it may skip), rollback. */
export function operatorCommands(workflowId: string, waiting: AwaitingOperator): string[] {
  const skipHosts = waiting.skippable.length > 1 ? `ID... (of ${waiting.skippable.join(', ')})` : waiting.skippable.join('');
  return waiting.options.map((option) => `cutover ${option} ${workflowId} --as NAME${option === 'skip' ? ` --host ${skipHosts}` : ''}`);
}

function gateMarkdown(gate: PendingGate, signed: boolean, workflowId: string): string[] {
  return [
    `**Waiting for approval at gate \`${gate.gate}\`** ${gateProgressText(gate)}`,
    gate.instructions,
    ...(gate.unreachable ? [`**This gate cannot be approved:** ${gate.unreachable}`] : []),
    signed
      ? `Send the signal \`approve\` (or \`reject\`) with the input that \`cutover token approve ${workflowId} --key YOUR.key\` prints: \`{"token": "cutover1...."}\`.`
      : 'Send the signal `approve` with `{"approver": "your name"}` (or `reject`).',
  ];
}

function operatorMarkdown(waiting: AwaitingOperator): string[] {
  const skip = waiting.skippable.length ? '`skip` (with `"host"`), ' : '';
  return [
    `**Waiting for an operator:** ${waiting.reason}`,
    ...waiting.hosts.map((host) => `- ${failedHostText(host)}`),
    `Send \`retry\`, ${skip}or \`rollback\` with \`{"operator": "your name"}\`${waiting.expiresAt ? `; rolls back at ${waiting.expiresAt}` : ''}.`,
  ];
}

/** The run's current details in the Web UI: phase, hosts, and what it waits for, with how to answer. */
export function detailsMarkdown(status: RunStatus, workflowId = 'RUN'): string {
  const lines = [`**Cutover** ${status.fleet}: ${status.source} → ${status.target}`, `**Phase:** ${status.phase}`, `**Hosts:** ${hostCountsText(status.hostCounts)}`];
  const started = startingVersionsText(status.versions);
  if (started) lines.push(`**Started at:** ${started} (a rollback returns each host there)`);
  if (status.pendingGate) lines.push(...gateMarkdown(status.pendingGate, status.trust?.decisions === 'signed', workflowId));
  if (status.awaitingOperator) lines.push(...operatorMarkdown(status.awaitingOperator));
  if (status.failure) lines.push(`**Failure:** ${status.failure}`);
  return lines.join('\n\n');
}
