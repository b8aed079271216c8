/**
 * The worker itself, as createCutoverWorker configures it. Its workflows run in the SDK's workflow thread, apart from
 * the activities: an activation that never yields is given up on after the SDK's 5 s limit, and meanwhile the batches
 * beside it go on heartbeating. With workflows in the main thread (the SDK's debugMode, measured in
 * docs/benchmarks.md, *Performance V*), such an activation would stop every batch's heartbeat past its 5 s timeout.
 */
import { join } from 'node:path';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import { expect, inject, it } from 'vitest';
import { quietLogger } from '../../build/prebuilt';
import type { StepBatch } from '../../core/planner';
import { createCutoverWorker } from '../../worker/worker';
import { freshLab, uniqueId, useTemporalClient, waitFor } from '../helpers';

const temporal = useTemporalClient();

/** One host whose step outlasts the stuck activation: 7 s, against the 5 s limit and the 5 s heartbeat timeout. */
const longStep: StepBatch = {
  step: 'upgrade',
  role: 'management-server',
  maxParallel: 1,
  timeoutMs: 30_000,
  retry: { maxAttempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '1m' },
  tasks: [{ host: 'appv-01', command: 'sleep 7', transport: { kind: 'local' } }],
};

it('a workflow activation that never yields fails its workflow task after 5 s, and a batch beside it keeps its heartbeat: no timeout, one attempt', async () => {
  const bundle = await bundleWorkflowCode({ workflowsPath: join(__dirname, 'fixtures', 'stuck.ts'), logger: quietLogger });
  const taskQueue = uniqueId('stuck');
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const labDir = freshLab({ hosts: 1 });
  const worker = await createCutoverWorker({ connection, taskQueue, workflowBundle: bundle, lab: true, journalDir: join(labDir, '..', 'journal') });
  const { client } = temporal;
  try {
    await worker.runUntil(async () => {
      const batch = await client.workflow.start('oneBatch', { taskQueue, workflowId: uniqueId('one-batch'), args: [longStep] });
      await waitFor(async () => ((await batch.describe()).raw.pendingActivities?.length ? true : undefined), 'the batch to start', 10_000);
      const stuck = await client.workflow.start('neverYields', { taskQueue, workflowId: uniqueId('never-yields') });
      try {
        const failure = await waitFor(async () => {
          const { events } = await stuck.fetchHistory();
          return events?.find((event) => event.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure?.message ?? undefined;
        }, 'the stuck workflow task to fail', 15_000);
        expect(failure).toMatch(/timed out after 5000ms/);
      } finally {
        await stuck.terminate('test: it never yields');
      }
      const outcomes = await batch.result();
      expect(outcomes.map((o: { host: string; ok: boolean }) => [o.host, o.ok])).toEqual([['appv-01', true]]);
      const events = (await batch.fetchHistory()).events ?? [];
      expect(events.filter((event) => event.activityTaskTimedOutEventAttributes)).toEqual([]);
      expect(events.find((event) => event.activityTaskStartedEventAttributes)?.activityTaskStartedEventAttributes?.attempt).toBe(1);
    });
  } finally {
    await connection.close();
  }
}, 40_000);
