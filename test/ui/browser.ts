/**
 * Browser plumbing for the Web UI test: Debian's Chromium driven by playwright-core (Playwright's own browser
 * download cannot work on these machines), and a dev server of our own that serves the Web UI.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort, startDevServer, type DevServer, type DevServerOptions } from '../../stack/devServer';

export const CHROMIUM = process.env.CUTOVER_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Headless Chromium; the background-networking flags keep it from phoning home on a closed network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A dev server with the Web UI (the suite's shared server is headless), on free ports; logs in a temp dir. */
export async function startUiServer(
  binary: string,
  options: Partial<Pick<DevServerOptions, 'port' | 'uiPort' | 'dbFile' | 'uiCodecEndpoint'>> = {},
): Promise<DevServer & { uiUrl: string; logFile: string }> {
  const port = options.port ?? (await freePort());
  let uiPort = options.uiPort ?? (await freePort());
  while (uiPort === port) uiPort = await freePort();
  const logFile = join(mkdtempSync(join(tmpdir(), 'cutover-ui-test-')), 'temporal.log');
  const server = await startDevServer({ ...options, binary, port, uiPort, logFile });
  const uiUrl = server.uiUrl;
  if (!uiUrl) throw new Error('startDevServer returned no Web UI address although a UI port was given');
  try {
    await waitForHttp(uiUrl, 30_000);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { ...server, uiUrl, logFile };
}

/** The gRPC frontend answers before the UI's HTTP server does; wait for the latter too. */
async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
      last = new Error(`HTTP ${response.status}`);
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the Temporal Web UI at ${url} did not answer within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

/** Runs a browser step; on failure, saves a screenshot and names it in the error, so a red run can be looked at. */
export async function step<T>(page: Page, name: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    const shot = join(tmpdir(), `cutover-ui-${name.replace(/\W+/g, '-')}-${Date.now()}.png`);
    const saved = await page.screenshot({ path: shot, fullPage: true }).then(
      () => true,
      () => false,
    );
    if (error instanceof Error) error.message = `UI step "${name}" failed${saved ? ` (screenshot: ${shot})` : ''}: ${error.message}`;
    throw error;
  }
}
