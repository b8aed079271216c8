/**
 * Notifications on a real run: a local HTTP receiver stands for a team's webhooks (Cutover's JSON and Slack's format)
 * and a closed port for a dead one. The gate, a failed host and the end arrive with their bodies, the dead target's
 * failure is in the status, the run completes regardless, and the webhooks' URLs (secrets) are nowhere in the history.
 */
import { randomUUID } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatStatus } from '../../client/format';
import { labFault } from '../../lab/lab';
import { approveUpdate, retryUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { allText, atGate, atGuidedFailure, freshLab, labPlan, labWorker, quickRetries, recordHistory, uniqueId, useTemporalClient, waitFor } from '../helpers';

const temporal = useTemporalClient();

interface Received {
  path: string;
  body: { event?: string; text?: string; [key: string]: unknown };
}

const received: Received[] = [];
let receiver: Server;
let base: string;
/** A port nothing listens on: every try is refused at once. */
let deadPort: number;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

beforeAll(async () => {
  receiver = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      received.push({ path: request.url ?? '', body: JSON.parse(text) as Received['body'] });
      response.end('ok');
    });
  });
  base = `http://127.0.0.1:${await listen(receiver)}`;
  const closed = createServer();
  deadPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
});

afterAll(() => {
  receiver.close();
  for (const name of ['CUTOVER_TEST_HOOK_JSON', 'CUTOVER_TEST_HOOK_SLACK', 'CUTOVER_TEST_HOOK_DEAD']) delete process.env[name];
});

function arrived(path: string, event: string): Promise<Received> {
  return waitFor(async () => received.find((r) => r.path === path && (r.body.event === event || (event === 'slack' && r.body.blocks))), `${event} at ${path}`, 15_000);
}

describe('notifications', () => {
  it('tells the webhooks of the gate, a failure and the end; a dead one fails in the status and the run completes', async () => {
    // The paths stand for the secret part of a webhook URL (Slack's is a token): none may reach the history.
    const jsonPath = `/json/${randomUUID()}`;
    const slackPath = `/slack/${randomUUID()}`;
    process.env.CUTOVER_TEST_HOOK_JSON = `${base}${jsonPath}`;
    process.env.CUTOVER_TEST_HOOK_SLACK = `${base}${slackPath}`;
    process.env.CUTOVER_TEST_HOOK_DEAD = `http://127.0.0.1:${deadPort}/hook`;
    const lab = freshLab({ hosts: 2 });
    // appv-02's installer fails until its retries are spent: the run waits for an operator, who retries.
    labFault(lab, 'appv-02', 'install', { times: 2 });
    const plan = quickRetries(labPlan(['appv-01', 'appv-02'], {
      notify: [
        { name: 'ops-json', url: 'env:CUTOVER_TEST_HOOK_JSON', format: 'json', events: ['gate-opened', 'operator-needed', 'completed', 'rolled-back', 'failed', 'rejected'] },
        { name: 'ops-slack', url: 'env:CUTOVER_TEST_HOOK_SLACK', format: 'slack', events: ['gate-opened'] },
        { name: 'dead', url: 'env:CUTOVER_TEST_HOOK_DEAD', format: 'json', events: ['gate-opened', 'completed'] },
      ],
    }));
    const { worker, taskQueue, close } = await labWorker(lab);
    try {
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
        await atGate(handle, 'beforeOffline');

        const gate = await arrived(jsonPath, 'gate-opened');
        expect(gate.body).toMatchObject({
          source: 'cutover',
          fleet: plan.fleet,
          workflowId: handle.workflowId,
          title: `${plan.fleet}: gate beforeOffline is waiting for approval`,
          commands: [`npx cutover approve ${handle.workflowId} --gate beforeOffline --as YOUR_NAME`, expect.stringContaining('npx cutover reject')],
          details: { gate: 'beforeOffline', instructions: plan.gates.beforeOffline.instructions },
        });
        const slack = await arrived(slackPath, 'slack');
        expect(slack.body.text).toBe(`${plan.fleet}: gate beforeOffline is waiting for approval`);

        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'beforeOffline' }] });
        await atGuidedFailure(handle);
        const failure = await arrived(jsonPath, 'operator-needed');
        expect(failure.body).toMatchObject({
          title: `${plan.fleet}: the upgrade waits for an operator`,
          commands: [`npx cutover retry ${handle.workflowId} --as YOUR_NAME`, `npx cutover skip ${handle.workflowId} --host appv-02 --as YOUR_NAME`, `npx cutover rollback ${handle.workflowId} --as YOUR_NAME`],
          details: { step: 'upgrade', failedHosts: 1, hosts: [{ host: 'appv-02', error: expect.stringContaining('exit') }] },
        });
        expect(failure.body.text).toContain('• appv-02: ');

        await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
        expect((await handle.result()).outcome).toBe('completed');

        const done = received.find((r) => r.path === jsonPath && r.body.event === 'completed');
        expect(done?.body).toMatchObject({ title: `${plan.fleet} is upgraded to 4.5`, details: { hosts: 2, backup: { name: expect.any(String) } } });
        // Slack's target asked for the gate only.
        expect(received.filter((r) => r.path === slackPath)).toHaveLength(1);

        const { notifications } = await handle.query(statusQuery);
        const byTarget = (target: string) => notifications?.filter((n) => n.target === target).map(({ event, state }) => ({ event, state }));
        expect(byTarget('ops-json')).toEqual([
          { event: 'gate-opened', state: 'sent' },
          { event: 'operator-needed', state: 'sent' },
          { event: 'completed', state: 'sent' },
        ]);
        expect(byTarget('dead')).toEqual([
          { event: 'gate-opened', state: 'failed' },
          { event: 'completed', state: 'failed' },
        ]);
        expect(notifications?.find((n) => n.target === 'dead')?.error).toMatch(/notify target dead: fetch failed \(.*ECONNREFUSED/);
        // `cutover status` says so too.
        expect(formatStatus(handle.workflowId, await handle.query(statusQuery))).toMatch(/✖ notify dead \(completed\) failed: notify target dead: fetch failed/);

        const history = allText(await handle.fetchHistory()).join('\n');
        expect(history).toContain('env:CUTOVER_TEST_HOOK_JSON');
        for (const secret of [jsonPath, slackPath]) expect(history.includes(secret), 'a webhook URL is in the history').toBe(false);
        await recordHistory(handle, 'notifications');
        // Every change asked before the plan's local activity (workflows/versions.ts), as today's runs do.
        await recordHistory(handle, 'every-change');
      });
    } finally {
      await close();
    }
  });
});
