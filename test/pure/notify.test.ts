/** Notifications, pure: the plan's `notify` targets, which of them hear an event, and what each is sent. */
import { describe, expect, it } from 'vitest';
import { type RunRef, describeEvent, messageBody, targetsFor } from '../../core/notify';
import { secretRefusals } from '../../core/secretPolicy';
import type { AwaitingOperator, PendingGate } from '../../core/status';
import { parseTrustFile } from '../../core/trust';
import { refusal, validExample } from './fixtures';

const RUN: RunRef = { fleet: 'appv-prod', workflowId: 'cutover-appv-prod', cliName: 'appv-prod', source: '4.1', target: '4.5', signed: false };
const GATE: PendingGate = { gate: 'beforeOffline', instructions: 'Check change ticket CHG-1 <urgent> & the backup window.', approvers: ['alice', 'bob'], quorum: 1, approvedBy: [] };

function failure(hosts: number): AwaitingOperator {
  return {
    phase: 'upgrading-hosts',
    step: 'upgrade',
    rollingBack: false,
    reason: `upgrade failed on ${hosts} host(s)`,
    hosts: Array.from({ length: hosts }, (_, i) => ({ host: `appv-${i + 2}`, error: 'upgrade failed (exit 3)', outputTail: 'msiexec: error 1603' })),
    options: ['retry', 'skip', 'rollback'],
    skippable: ['appv-2'],
  };
}

describe('notify in the plan', () => {
  it('takes targets by reference, with json and every event as defaults', () => {
    const plan = validExample((raw) => {
      raw.notify = [{ name: 'ops-chat', url: 'env:CUTOVER_SLACK_WEBHOOK', format: 'slack', events: ['gate-opened', 'operator-needed'] }, { name: 'ticketing', url: 'file:/etc/cutover/hook' }];
    });
    expect(plan.notify).toEqual([
      { name: 'ops-chat', url: 'env:CUTOVER_SLACK_WEBHOOK', format: 'slack', events: ['gate-opened', 'operator-needed'] },
      { name: 'ticketing', url: 'file:/etc/cutover/hook', format: 'json', events: ['gate-opened', 'operator-needed', 'completed', 'rolled-back', 'failed', 'rejected'] },
    ]);
    expect(targetsFor(plan.notify, 'completed').map((t) => t.name)).toEqual(['ticketing']);
    expect(targetsFor(plan.notify, 'gate-opened').map((t) => t.name)).toEqual(['ops-chat', 'ticketing']);
    expect(targetsFor(undefined, 'completed')).toEqual([]);
  });

  it('refuses a URL written into the plan, an unknown event or format, and a name used twice, each at its path', () => {
    const { message } = refusal((raw) => {
      raw.notify = [
        { name: 'chat', url: 'https://hooks.slack.com/services/T0/B0/secret' },
        { name: 'chat', url: 'env:HOOK', format: 'teams', events: ['started'] },
      ];
    });
    expect(message).toContain('"https://hooks.slack.com/services/T0/B0/secret" is not a secret reference');
    expect(message).toContain('→ at notify[0].url');
    expect(message).toContain('→ at notify[1].format');
    expect(message).toContain('→ at notify[1].events[0]');
    const twice = refusal((raw) => {
      raw.notify = [{ name: 'chat', url: 'env:A' }, { name: 'chat', url: 'env:B' }];
    }).message;
    expect(twice).toContain('notify target "chat" is named twice');
    expect(twice).toContain('→ at notify[1].name');
  });

  it("refuses a webhook URL that names the worker's own settings, before the run starts", () => {
    const parsed = parseTrustFile({});
    if (!parsed.ok) throw new Error(parsed.message);
    const refused = secretRefusals({ notify: [{ name: 'x', url: 'env:TEMPORAL_API_KEY' }] }, parsed.policy, []);
    expect(refused).toContain("env:TEMPORAL_API_KEY is the worker's own setting");
    expect(refused).toContain('at notify.0.url');
  });
});

describe('messages', () => {
  it('a gate: its instructions, who may approve, and the exact commands by name or with a key', () => {
    const body = messageBody(RUN, describeEvent(RUN, { event: 'gate-opened', gate: GATE }), 'json');
    expect(body).toMatchObject({
      source: 'cutover',
      event: 'gate-opened',
      fleet: 'appv-prod',
      workflowId: 'cutover-appv-prod',
      title: 'appv-prod: gate beforeOffline is waiting for approval',
      commands: ['npx cutover approve appv-prod --gate beforeOffline --as YOUR_NAME', 'npx cutover reject appv-prod --gate beforeOffline --comment "why" --as YOUR_NAME'],
      webUi: 'workflow cutover-appv-prod → Send a Signal → approve (or reject), with `{"approver": "your name"}`',
      details: { gate: 'beforeOffline', instructions: GATE.instructions, approvers: ['alice', 'bob'], quorum: 1 },
    });
    expect((body as { text: string }).text).toBe('4.1 → 4.5, (0/1, approvers: alice, bob)\nCheck change ticket CHG-1 <urgent> & the backup window.');

    const signed = { ...RUN, signed: true, workflowId: 'nightly-1', cliName: 'nightly-1' };
    expect(describeEvent(signed, { event: 'gate-opened', gate: GATE })).toMatchObject({
      commands: ['npx cutover approve nightly-1 --gate beforeOffline --key ~/.cutover/keys/YOUR_NAME.key', expect.stringContaining('--key')],
      webUi: expect.stringContaining('the input `npx cutover token approve nightly-1 --key YOUR.key` prints'),
    });
  });

  it('a failure: the hosts with their errors (ten at most, then a count) and how to retry, skip or roll back', () => {
    const notification = describeEvent(RUN, { event: 'operator-needed', awaiting: failure(12) });
    expect(notification.title).toBe('appv-prod: the upgrade waits for an operator');
    expect(notification.lines).toEqual([
      'upgrade failed on 12 host(s)',
      ...Array.from({ length: 10 }, (_, i) => `• appv-${i + 2}: upgrade failed (exit 3) — msiexec: error 1603`),
      '… and 2 more failed host(s)',
    ]);
    expect(notification.commands).toEqual(['npx cutover retry appv-prod --as YOUR_NAME', 'npx cutover skip appv-prod --host appv-2 --as YOUR_NAME', 'npx cutover rollback appv-prod --as YOUR_NAME']);
    expect(notification.details).toMatchObject({ step: 'upgrade', failedHosts: 12, options: ['retry', 'skip', 'rollback'] });
  });

  it('the end: completed with the backup, rolled back or failed with the reason', () => {
    expect(describeEvent(RUN, { event: 'completed', hosts: 4, backup: { name: 'b1', checksum: 'c1' } })).toMatchObject({
      title: 'appv-prod is upgraded to 4.5',
      lines: ['4 host(s), 4.1 → 4.5.', 'Backup b1, checksum c1.'],
      commands: ['npx cutover status appv-prod'],
    });
    expect(describeEvent(RUN, { event: 'rolled-back', hosts: 4, reason: 'rollback chosen by olga' })).toMatchObject({ title: 'appv-prod was rolled back to 4.1', details: { reason: 'rollback chosen by olga' } });
    expect(describeEvent(RUN, { event: 'failed', hosts: 4, reason: 'x' }).title).toBe('appv-prod: the upgrade to 4.5 failed');
    expect(describeEvent(RUN, { event: 'rejected', hosts: 4 }).title).toBe('appv-prod: the upgrade to 4.5 was rejected');
  });

  it("Slack's format: a text fallback and blocks, with the plan's text escaped and sections within Slack's limits", () => {
    const body = messageBody(RUN, describeEvent(RUN, { event: 'gate-opened', gate: { ...GATE, instructions: `${GATE.instructions}\n${'x'.repeat(4000)}` } }), 'slack') as {
      text: string;
      blocks: { type: string; text?: { type: string; text: string } }[];
    };
    expect(body.text).toBe('appv-prod: gate beforeOffline is waiting for approval');
    expect(body.blocks.map((block) => block.type)).toEqual(['header', 'section', 'section', 'section', 'context']);
    const [, instructions, commands, webUi] = body.blocks.map((block) => block.text?.text ?? '');
    expect(instructions).toContain('Check change ticket CHG-1 &lt;urgent&gt; &amp; the backup window.');
    expect(instructions).toHaveLength(3000);
    expect(commands).toBe('*From a terminal:*\n`npx cutover approve appv-prod --gate beforeOffline --as YOUR_NAME`\n`npx cutover reject appv-prod --gate beforeOffline --comment "why" --as YOUR_NAME`');
    expect(webUi).toContain('*From the Web UI:* workflow cutover-appv-prod → Send a Signal');
  });
});
