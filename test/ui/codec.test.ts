/**
 * Encrypted payloads in the Temporal Web UI (issue 16), in headless Chromium. A dev server started as `cutover dev`
 * starts it, with `--ui-codec-endpoint` at a codec server: the run's page shows the decoded input and current
 * details. The same server restarted on its database file without the endpoint: the page shows encoded data only.
 * And the codec server refuses a request that does not come from the UI. Screenshots: test/ui/artifacts/.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Browser, Page } from 'playwright-core';
import { describe, expect, inject, it } from 'vitest';
import { AesGcmCodec } from '../../codec/codec';
import { cutoverDataConverter } from '../../codec/dataConverter';
import { loadCodecKeys } from '../../codec/keys';
import { startCodecServer } from '../../codec/server';
import { freePort } from '../../stack/devServer';
import { createCutoverWorker } from '../../worker/worker';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { atGate, freshLab, labPlan, ROOT, uniqueId, waitFor, workflowBundle } from '../helpers';
import { launchChromium, startUiServer, step } from './browser';

const ARTIFACTS = join(ROOT, 'test', 'ui', 'artifacts');
const KEY_ENV = { CUTOVER_CODEC_KEYS: 'ui=env:CUTOVER_CODEC_KEY_UI', CUTOVER_CODEC_KEY_UI: randomBytes(32).toString('base64') };

/** The page's text, that of its frames too (the UI renders current details' Markdown in a frame of its own). */
async function pageText(page: Page): Promise<string> {
  const texts = await Promise.all(page.frames().map((frame) => frame.locator('body').innerText().catch(() => '')));
  return texts.join('\n');
}

/** Waits until the page (frames included) shows `expected`: decoding is asynchronous, a request per payload. */
async function untilShown(page: Page, expected: RegExp): Promise<string> {
  return waitFor(async () => {
    const text = await pageText(page);
    return expected.test(text) ? text : undefined;
  }, `the page to show ${expected}`, 20_000);
}

/**
 * The run's page as a person looks at it: its current details (User Metadata), then its first event, the start, with
 * the input. A screenshot of each once it shows what `expect` says; returns the text of both.
 */
async function runPage(page: Page, uiUrl: string, workflowId: string, name: string, expect: { details: RegExp; input: RegExp }): Promise<string> {
  return step(page, `run page ${name}`, async () => {
    await page.goto(`${uiUrl}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    await page.getByTestId('execution-status').filter({ visible: true }).waitFor();
    await page.getByText('User Metadata', { exact: true }).first().click();
    const details = await untilShown(page, expect.details);
    await page.screenshot({ path: join(ARTIFACTS, `${name}-details.png`), fullPage: true });
    await page.getByText('Event History', { exact: false }).first().click();
    await page.getByText('Workflow Execution Started').filter({ visible: true }).first().click();
    const input = await untilShown(page, expect.input);
    await page.screenshot({ path: join(ARTIFACTS, `${name}-input.png`), fullPage: true });
    return `${details}\n${input}`;
  });
}

describe('the Web UI with encrypted payloads', () => {
  it('shows the decoded input and current details with the codec server, encoded data without it', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const converter = cutoverDataConverter(KEY_ENV);
    const lab = freshLab({ hosts: 3 });
    const plan = labPlan(['appv-01', 'appv-02', 'appv-03']);
    const workflowId = uniqueId(plan.fleet);
    const taskQueue = uniqueId('cutover-ui-codec');
    const [port, uiPort] = [await freePort(), await freePort()];
    const dbFile = join(mkdtempSync(join(tmpdir(), 'cutover-ui-codec-')), 'temporal.db');
    const codec = await startCodecServer({ port: 0, origins: [`http://localhost:${uiPort}`], localUi: true }, new AesGcmCodec(loadCodecKeys(KEY_ENV) ?? []));
    let server = await startUiServer(inject('temporalBinary'), { port, uiPort, dbFile, uiCodecEndpoint: codec.url });
    let browser: Browser | undefined;
    const workerConnection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection: await Connection.connect({ address: server.address }), dataConverter: converter });
    try {
      const worker = await createCutoverWorker({ connection: workerConnection, taskQueue, workflowBundle: await workflowBundle(converter.failureConverterPath), dataConverter: converter, lab: true, commandEnv: { CUTOVER_LAB_DIR: lab } });
      browser = await launchChromium();
      const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
      page.setDefaultTimeout(20_000);
      await worker.runUntil(async () => {
        const handle = await client.workflow.start(upgradeFleet, { taskQueue, workflowId, args: [plan] });
        await atGate(handle, 'beforeOffline');

        // The current details, and the input: the plan's hosts and commands.
        const decoded = await runPage(page, server.uiUrl, workflowId, 'codec-decoded', { details: /Waiting for approval at gate/, input: /"labhost db backup \{\{backup\}\}"/ });
        expect(decoded).toContain('"product": "Microsoft App-V 4.5 management servers"');

        // Without the endpoint (the same server, restarted on its database file), the UI has only ciphertext.
        await server.stop();
        server = await startUiServer(inject('temporalBinary'), { port, uiPort, dbFile });
        // The input is ciphertext (base64); current details the UI cannot read are none.
        const encoded = await runPage(page, server.uiUrl, workflowId, 'codec-encoded', { details: /No Current Details/, input: /Input\s+"[A-Za-z0-9+/]{500,}={0,2}"/ });
        for (const plain of ['appv-0', 'labhost', 'App-V 4.5', 'Waiting for approval']) expect(encoded).not.toContain(plain);
      });

      // A request that is not the UI's: no origin (curl, a script), or another site's page in the same browser.
      const sealed = await converter.payloadCodecs?.[0]?.encode([{ metadata: {}, data: Buffer.from('"x"') }]);
      const body = JSON.stringify({ payloads: sealed?.map((p) => ({ metadata: { encoding: Buffer.from(p.metadata?.encoding ?? []).toString('base64'), 'encryption-key-id': Buffer.from(p.metadata?.['encryption-key-id'] ?? []).toString('base64') }, data: Buffer.from(p.data ?? []).toString('base64') })) });
      const bare = await fetch(`${codec.url}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default' }, body });
      expect(bare.status).toBe(403);
      const foreign = await fetch(`${codec.url}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'https://elsewhere.example' }, body });
      expect(foreign.status).toBe(403);
    } finally {
      await browser?.close();
      await client.connection.close();
      await workerConnection.close();
      await server.stop();
      await codec.close();
    }
  });
});
