/**
 * The worker itself, as createCutoverWorker configures it: workflows run in its main thread (worker/worker.ts,
 * `workflowsInMainThread`), so a workflow that never yields must still be given up on, and the worker go on.
 */
import { join } from 'node:path';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import { expect, inject, it } from 'vitest';
import { createCutoverWorker } from '../../worker/worker';
import { freshLab, uniqueId, useTemporalClient, waitFor } from '../helpers';

const temporal = useTemporalClient();

it('a workflow activation that never yields fails its workflow task after 5 s, and the worker goes on running other workflows', async () => {
  const bundle = await bundleWorkflowCode({ workflowsPath: join(__dirname, 'fixtures', 'stuck.ts'), logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} } as never });
  const taskQueue = uniqueId('stuck');
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const labDir = freshLab({ hosts: 1 });
  const worker = await createCutoverWorker({ connection, taskQueue, workflowBundle: bundle, lab: true, journalDir: join(labDir, '..', 'journal') });
  const { client } = temporal;
  try {
    await worker.runUntil(async () => {
      const stuck = await client.workflow.start('neverYields', { taskQueue, workflowId: uniqueId('never-yields') });
      const started = Date.now();
      const failure = await waitFor(async () => {
        const { events } = await stuck.fetchHistory();
        return events?.find((event) => event.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure?.message ?? undefined;
      }, 'the stuck workflow task to fail', 15_000);
      const after = Date.now() - started;
      await stuck.terminate('test: it never yields');
      expect(failure).toMatch(/timed out after 5000ms/);
      expect(after).toBeGreaterThanOrEqual(5_000);
      // The main thread is free again: another workflow runs to its end at once.
      expect(await client.workflow.execute('answers', { taskQueue, workflowId: uniqueId('answers') })).toBe('answered');
    });
  } finally {
    await connection.close();
  }
}, 40_000);
