/** Starts one real Temporal dev server (headless, in memory) for the whole test run. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { freePort, startDevServer, type DevServer } from '../stack/devServer';
import { ensureTemporal } from '../stack/temporalBinary';

let server: DevServer | undefined;

export default async function setup(project: TestProject) {
  const binary = await ensureTemporal((line) => console.log(`test setup: ${line}`));
  const logFile = join(mkdtempSync(join(tmpdir(), 'cutover-test-')), 'temporal.log');
  server = await startDevServer({ binary, port: await freePort(), logFile });
  project.provide('temporalAddress', server.address);
  project.provide('temporalBinary', binary);
  return async () => {
    await server?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalBinary: string;
  }
}
