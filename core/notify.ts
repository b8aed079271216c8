/**
 * Notifications, the pure half: which targets hear about an event, and the bodies they are sent (Cutover's own JSON,
 * or Slack-compatible text and blocks). The workflow builds the body (so it is in the history, next to the event) and
 * an activity only posts it (activities/notify.ts), with the webhook's URL resolved on the worker.
 */
import { failedHostText, gateProgressText } from './details';
import type { NotifyEventName, NotifyTarget } from './plan';
import type { AwaitingOperator, PendingGate, RunResult } from './status';

/** Which run: what every message names, and how its commands address it. */
export interface RunRef {
  fleet: string;
  workflowId: string;
  /** The run as the `cutover` command names it: the fleet, when the workflow id is the CLI's for it. */
  cliName: string;
  source: string;
  target: string;
  /** Whether decisions must be signed (a trust file's policy), or a name is enough (the lab, the demo). */
  signed: boolean;
}

export type NotifyEvent =
  | { event: 'gate-opened'; gate: PendingGate }
  | { event: 'operator-needed'; awaiting: AwaitingOperator }
  | { event: 'completed' | 'rolled-back' | 'rejected' | 'failed'; hosts: number; reason?: string; backup?: RunResult['backup'] };

/** What a message says, whatever its format. */
export interface Notification {
  event: NotifyEventName;
  title: string;
  /** Paragraphs for people. */
  lines: string[];
  /** The exact commands that answer it, for a gate or a failure. */
  commands: string[];
  /** How to answer from the Temporal Web UI instead. */
  webUi?: string;
  details: Record<string, unknown>;
}

/** A message lists at most this many failed hosts by name: a fleet of thousands gets a count of the rest. */
export const HOSTS_LISTED = 10;
/** Slack refuses a section over 3,000 characters and a header over 150. */
const SECTION_CHARS = 3_000;
const HEADER_CHARS = 150;

export function targetsFor(targets: readonly NotifyTarget[] | undefined, event: NotifyEventName): NotifyTarget[] {
  return (targets ?? []).filter((target) => target.events.includes(event));
}

function decisionCommand(run: RunRef, decision: string, extra = ''): string {
  const who = run.signed ? '--key ~/.cutover/keys/YOUR_NAME.key' : '--as YOUR_NAME';
  return `npx cutover ${decision} ${run.cliName}${extra} ${who}`;
}

function gateOpened(run: RunRef, gate: PendingGate): Notification {
  const input = run.signed ? `the input \`npx cutover token approve ${run.cliName} --key YOUR.key\` prints` : '`{"approver": "your name"}`';
  return {
    event: 'gate-opened',
    title: `${run.fleet}: gate ${gate.gate} is waiting for approval`,
    lines: [
      `${run.source} → ${run.target}, ${gateProgressText(gate)}`,
      gate.instructions,
      ...(gate.unreachable ? [`This gate cannot be approved: ${gate.unreachable}`] : []),
    ],
    commands: [decisionCommand(run, 'approve', ` --gate ${gate.gate}`), decisionCommand(run, 'reject', ` --gate ${gate.gate} --comment "why"`)],
    webUi: `workflow ${run.workflowId} → Send a Signal → approve (or reject), with ${input}`,
    details: { gate: gate.gate, instructions: gate.instructions, approvers: gate.approvers, quorum: gate.quorum, ...(gate.expiresAt ? { expiresAt: gate.expiresAt } : {}) },
  };
}

function operatorNeeded(run: RunRef, awaiting: AwaitingOperator): Notification {
  const listed = awaiting.hosts.slice(0, HOSTS_LISTED);
  const more = awaiting.hosts.length - listed.length;
  const skip = awaiting.skippable[0];
  return {
    event: 'operator-needed',
    title: `${run.fleet}: ${awaiting.rollingBack ? 'the rollback' : 'the upgrade'} waits for an operator`,
    lines: [
      awaiting.reason,
      ...listed.map((host) => `• ${failedHostText(host)}`),
      ...(more > 0 ? [`… and ${more} more failed host(s)`] : []),
      ...(awaiting.expiresAt ? [`Rolls back by itself at ${awaiting.expiresAt} without a decision.`] : []),
    ],
    commands: [
      decisionCommand(run, 'retry'),
      ...(skip ? [decisionCommand(run, 'skip', ` --host ${skip}`)] : []),
      decisionCommand(run, 'rollback'),
    ],
    webUi: `workflow ${run.workflowId} → Send a Signal → ${awaiting.options.join(', ')}, with ${run.signed ? 'the input `npx cutover token` prints' : '`{"operator": "your name"}`'}`,
    details: {
      phase: awaiting.phase,
      ...(awaiting.step ? { step: awaiting.step } : {}),
      rollingBack: awaiting.rollingBack,
      reason: awaiting.reason,
      failedHosts: awaiting.hosts.length,
      hosts: listed.map(({ host, error }) => ({ host, error })),
      options: awaiting.options,
    },
  };
}

const ENDINGS = {
  completed: (run: RunRef) => `${run.fleet} is upgraded to ${run.target}`,
  'rolled-back': (run: RunRef) => `${run.fleet} was rolled back to ${run.source}`,
  rejected: (run: RunRef) => `${run.fleet}: the upgrade to ${run.target} was rejected`,
  failed: (run: RunRef) => `${run.fleet}: the upgrade to ${run.target} failed`,
} as const;

function ended(run: RunRef, event: Extract<NotifyEvent, { hosts: number }>): Notification {
  return {
    event: event.event,
    title: ENDINGS[event.event](run),
    lines: [`${event.hosts} host(s), ${run.source} → ${run.target}.`, ...(event.reason ? [event.reason] : []), ...(event.backup ? [`Backup ${event.backup.name}, checksum ${event.backup.checksum}.`] : [])],
    commands: [`npx cutover status ${run.cliName}`],
    details: { hosts: event.hosts, ...(event.reason ? { reason: event.reason } : {}), ...(event.backup ? { backup: event.backup } : {}) },
  };
}

export function describeEvent(run: RunRef, event: NotifyEvent): Notification {
  if (event.event === 'gate-opened') return gateOpened(run, event.gate);
  if (event.event === 'operator-needed') return operatorNeeded(run, event.awaiting);
  return ended(run, event);
}

/** The body Cutover posts: the generic JSON, or Slack's incoming-webhook message. */
export function messageBody(run: RunRef, notification: Notification, format: NotifyTarget['format']): unknown {
  return format === 'slack' ? slackBody(run, notification) : jsonBody(run, notification);
}

function jsonBody(run: RunRef, notification: Notification): unknown {
  return {
    source: 'cutover',
    event: notification.event,
    fleet: run.fleet,
    workflowId: run.workflowId,
    title: notification.title,
    text: notification.lines.join('\n'),
    commands: notification.commands,
    ...(notification.webUi ? { webUi: notification.webUi } : {}),
    details: notification.details,
  };
}

/** Slack's mrkdwn reads &, < and > as markup: a plan's instructions or a host's error are text. */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function section(text: string) {
  return { type: 'section', text: { type: 'mrkdwn', text: cut(text, SECTION_CHARS) } };
}

/** `text` is what notifications and clients without blocks show; the blocks lay the same out. */
function slackBody(run: RunRef, notification: Notification): unknown {
  const commands = notification.commands.map((command) => `\`${slackEscape(command)}\``).join('\n');
  return {
    text: cut(slackEscape(notification.title), SECTION_CHARS),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: cut(notification.title, HEADER_CHARS) } },
      section(notification.lines.map(slackEscape).join('\n')),
      ...(commands ? [section(`*From a terminal:*\n${commands}`)] : []),
      ...(notification.webUi ? [section(`*From the Web UI:* ${slackEscape(notification.webUi)}`)] : []),
      { type: 'context', elements: [{ type: 'mrkdwn', text: cut(`Cutover · ${slackEscape(run.fleet)} · \`${slackEscape(run.workflowId)}\``, SECTION_CHARS) }] },
    ],
  };
}
