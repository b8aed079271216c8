/**
 * The README's "Starting a run" done from the Temporal Web UI, in a real headless Chromium (Debian's, driven by
 * playwright-core): Start Workflow with examples/appv-lab.json, approve with Send a Signal, see the run complete.
 * The start and the approval go through the browser only; the Temporal client just observes.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Browser } from 'playwright-core';
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

describe('the Temporal Web UI', () => {
  it('starts upgradeFleet from Start Workflow with the README JSON, approves it with Send a Signal, shows it Completed', async () => {
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
      client = new Client({ connection: await Connection.connect({ address: server.address }) });
      workerConnection = await NativeConnection.connect({ address: server.address });
      const worker = await createCutoverWorker({ connection: workerConnection, taskQueue, workflowBundle: bundle, lab: true, commandEnv: { CUTOVER_LAB_DIR: lab } });
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

        await step(page, 'send signal', async () => {
          await page.goto(`${server.uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
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
            await dialog.getByRole('option', { name: /^approve\b/ }).click();
          } else {
            await typed.fill('approve');
          }
          const data = dialog.getByRole('textbox', { name: 'Data' });
          await data.click();
          await page.keyboard.insertText('{"approver": "ui-tester"}');
          expect(JSON.parse(await data.innerText())).toEqual({ approver: 'ui-tester' });
          await dialog.getByRole('button', { name: 'Submit' }).click();
          await page.getByText('Workflow signaled.').first().waitFor();
        });

        const result = await resultWithin(handle, 60_000);
        expect(result.outcome).toBe('completed');
        expect(result.decisions).toMatchObject([{ gate: 'beforeOffline', approver: 'ui-tester', decision: 'approve' }]);

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
