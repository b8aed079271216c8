/**
 * The README's "Starting a run" done from the Temporal Web UI, in a real headless Chromium (Debian's, driven by
 * playwright-core): Start Workflow with examples/appv-lab.json, approve with Send a Signal, see the run complete.
 * The start and the approval go through the browser only; the Temporal client just observes.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Browser, Page } from 'playwright-core';
import { stringify } from 'yaml';
import { makeToken, readKey, writeNewKey } from '../../client/signing';
import { describe, expect, inject, it } from 'vitest';
import { validatePlan } from '../../core/plan';
import type { RunResult, RunStatus } from '../../core/status';
import { labStatus } from '../../lab/lab';
import { createCutoverWorker } from '../../worker/worker';
import { statusQuery } from '../../workflows/messages';
import type { upgradeFleet } from '../../workflows/upgradeFleet';
import { freshLab, ROOT, waitFor, workflowBundle } from '../helpers';
import { launchChromium, startUiServer, step } from './browser';

const EXAMPLE_JSON = join(ROOT, 'examples', 'appv-lab.json');

/** handle.result(), but failing in bounded time with the run's state when the approval did not get through. */
async function resultWithin(handle: WorkflowHandle<typeof upgradeFleet>, ms: number): Promise<RunResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      handle.query(statusQuery).then(
        (status) => reject(new Error(`the run did not finish within ${ms} ms of the UI signal; phase ${status.phase}, decisions ${JSON.stringify(status.decisions)}`)),
        (error: unknown) => reject(new Error(`the run did not finish within ${ms} ms of the UI signal: ${String(error)}`)),
      );
    }, ms);
  });
  try {
    return await Promise.race([handle.result(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A trust file that takes signed decisions only, and the key of the one approver it lists, "ui-tester". */
function signedOnlyTrust(): { file: string; key: string; fingerprint: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-ui-trust-'));
  const key = writeNewKey('ui-tester', join(dir, 'ui-tester.key'));
  const file = join(dir, 'trust.yaml');
  writeFileSync(
    file,
    stringify({
      approvers: [{ name: 'ui-tester', keys: [key.publicKeyLine] }],
      groups: { board: ['ui-tester'] },
      rules: [{ fleets: ['*'], gates: ['*'], actions: ['approve', 'reject'], groups: ['board'] }],
    }),
  );
  return { file, key: readKey(key.file), fingerprint: key.fingerprint };
}

/** Send a Signal from the run's page, as a person does: pick the signal, paste the input, submit. */
async function sendSignal(page: Page, uiUrl: string, workflowId: string, signal: string, input: string): Promise<void> {
  await step(page, `send signal ${signal} ${input.slice(0, 20)}`, async () => {
    await page.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
    const dialog = page.getByRole('dialog', { name: 'Send a Signal' });
    await dialog.waitFor();
    // With the worker up, the UI lists the workflow's signals (its metadata query); otherwise it asks for a name.
    const select = dialog.getByTestId('signal-select-button');
    const typed = dialog.getByRole('textbox', { name: 'Signal name' });
    await select.or(typed).waitFor();
    if (await select.isVisible()) {
      await select.click();
      await dialog.getByRole('option', { name: new RegExp(`^${signal}\\b`) }).click();
    } else {
      await typed.fill(signal);
    }
    const data = dialog.getByRole('textbox', { name: 'Data' });
    await data.click();
    await page.keyboard.insertText(input);
    expect(JSON.parse(await data.innerText())).toEqual(JSON.parse(input));
    await dialog.getByRole('button', { name: 'Submit' }).click();
    await page.getByText('Workflow signaled.').first().waitFor();
  });
}

describe('the Temporal Web UI', () => {
  it('starts upgradeFleet from Start Workflow with the README JSON, approves it with a signed token in Send a Signal, shows it Completed', async () => {
    const planJson = readFileSync(EXAMPLE_JSON, 'utf8').trim();
    // A stale example would only show up as a run failing in the UI; say so plainly first.
    const valid = validatePlan(JSON.parse(planJson));
    expect(valid.ok, `examples/appv-lab.json (the README's Web UI input) is not a valid plan:\n${valid.ok ? '' : valid.message}`).toBe(true);

    const lab = freshLab({ hosts: 4 });
    const taskQueue = `cutover-ui-${randomUUID()}`;
    const workflowId = `cutover-appv-lab-ui-${randomUUID().slice(0, 8)}`;
    const bundle = await workflowBundle();

    const server = await startUiServer(inject('temporalBinary'));
    let browser: Browser | undefined;
    let client: Client | undefined;
    let workerConnection: NativeConnection | undefined;
    try {
      const observer = new Client({ connection: await Connection.connect({ address: server.address }) });
      client = observer;
      workerConnection = await NativeConnection.connect({ address: server.address });
      const trust = signedOnlyTrust();
      const worker = await createCutoverWorker({ connection: workerConnection, taskQueue, workflowBundle: bundle, lab: true, commandEnv: { CUTOVER_LAB_DIR: lab }, trustFile: trust.file });
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.setDefaultTimeout(20_000);
      const handle = client.workflow.getHandle<typeof upgradeFleet>(workflowId);

      await worker.runUntil(async () => {
        await step(page, 'start workflow', async () => {
          await page.goto(`${server.uiUrl}/namespaces/default/workflows/start-workflow`);
          await page.getByLabel('Workflow ID').fill(workflowId);
          await page.getByLabel('Task Queue').fill(taskQueue);
          await page.getByLabel('Workflow Type').fill('upgradeFleet');
          // Input > Data is a CodeMirror editor: insertText pastes the JSON (typing it would trigger auto-closing brackets).
          const data = page.getByRole('textbox', { name: 'Data' });
          await data.click();
          await page.keyboard.insertText(planJson);
          expect(JSON.parse(await data.innerText())).toEqual(JSON.parse(planJson));
          await page.getByRole('button', { name: 'Start Workflow' }).click();
          await page.getByRole('link', { name: 'Workflow started successfully' }).waitFor();
        });

        const description = await handle.describe();
        expect(description.type).toBe('upgradeFleet');
        expect(description.taskQueue).toBe(taskQueue);

        // Preflight first; then the run waits at the approval gate.
        const atGate = await waitFor(async () => {
          const status: RunStatus = await handle.query(statusQuery);
          return status.pendingGate?.gate === 'beforeOffline' ? status : undefined;
        }, 'the beforeOffline gate');
        expect(atGate.phase).toBe('awaiting-approval');
        expect(atGate.decisions).toEqual([]);

        // What the operator sees at the gate, kept for people to look at (its path is printed).
        await step(page, 'see the gate', async () => {
          await page.goto(`${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
          await page.getByTestId('execution-status').filter({ visible: true }).waitFor();
          // The run's current details (core/details.ts): the gate, and how to approve it with a token.
          await page.getByText('User Metadata', { exact: true }).first().click();
          await page.getByText('Current Details').filter({ visible: true }).first().waitFor();
          const shot = join(tmpdir(), 'cutover-ui-gate.png');
          await page.screenshot({ path: shot, fullPage: true });
          console.log(`screenshot of the run at its gate: ${shot}`);
        });
        // A name alone is refused by this worker; the token `cutover token approve` prints is what a person pastes.
        await sendSignal(page, server.uiUrl, workflowId, 'approve', '{"approver": "ui-tester"}');
        await waitFor(async () => ((await handle.query(statusQuery)).refusedSignals === 1 ? true : undefined), 'the refused signal');
        const token = await makeToken(observer, workflowId, await handle.query(statusQuery), { decision: 'approve', keyText: trust.key, validForMs: 600_000 });
        await sendSignal(page, server.uiUrl, workflowId, 'approve', JSON.stringify({ token }));

        const result = await resultWithin(handle, 60_000);
        expect(result.outcome).toBe('completed');
        expect(result.decisions).toMatchObject([{ gate: 'beforeOffline', approver: 'ui-tester', decision: 'approve', key: trust.fingerprint }]);

        await step(page, 'see completed', async () => {
          await page.reload();
          const status = page.getByTestId('execution-status').filter({ visible: true });
          await status.getByText('Completed').waitFor();
          expect(await status.textContent()).toContain('Completed');
        });
      });

      const state = labStatus(lab);
      expect(state.hosts.map((host) => [host.id, host.version])).toEqual([
        ['appv-01', '4.5'],
        ['appv-02', '4.5'],
        ['appv-03', '4.5'],
        ['appv-04', '4.5'],
      ]);
      expect(state.database.schema).toBe('4.5');
    } finally {
      await browser?.close();
      await client?.connection.close();
      await workerConnection?.close();
      await server.stop();
    }
  });
});
