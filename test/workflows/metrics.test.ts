/**
 * Prometheus metrics from a worker process (`cutover worker --metrics`, its own process, since the SDK's Runtime is
 * installed once per process): scraped while the run waits at its gate, then once it has completed. Temporal's own
 * metrics are served, and Cutover's moved: the gate waiting and the run's phase, then host steps by step and outcome,
 * their durations, the gate's wait and the run's end.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, inject, it } from 'vitest';
import { METRIC } from '../../core/metrics';
import { approveUpdate } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { startCutover } from '../e2e/cli';
import { atGate, freshLab, labPlan, testClient, uniqueId, waitFor } from '../helpers';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The value of the sample `name` whose labels include `labels`, or undefined when the endpoint has none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => have.includes(`${key}="${value}"`))) return Number(match[3]);
  }
  return undefined;
}

describe('metrics', () => {
  it('a worker started with --metrics serves Temporal’s and Cutover’s metrics, and they move with a run', async () => {
    const lab = freshLab({ hosts: 2 });
    const plan = labPlan(['appv-01', 'appv-02']);
    const taskQueue = uniqueId('metrics');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const worker = startCutover(['worker', '--metrics', `127.0.0.1:${port}`], {
      env: { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB: '1', CUTOVER_LAB_DIR: lab },
      timeoutMs: 110_000,
    });
    let printed = '';
    worker.child.stdout?.on('data', (chunk: string) => (printed += chunk));
    worker.child.stderr?.on('data', (chunk: string) => (printed += chunk));
    const scrape = () => fetch(url).then((response) => response.text());
    // Not useTemporalClient: this test bundles no workflow code, the worker process does.
    const client = await testClient();
    try {
      // The worker prints this once it polls (its workflow bundle built): then runs can start.
      await waitFor(async () => {
        if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${printed}`);
        return printed.includes('serving Prometheus metrics') ? true : undefined;
      }, 'the worker', 60_000);
      const handle = await client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
      await atGate(handle, 'beforeOffline');

      const waiting = await waitFor(async () => {
        const text = await scrape();
        return sample(text, METRIC.gatesWaiting, { fleet: plan.fleet, gate: 'beforeOffline' }) === 1 ? text : undefined;
      }, 'the gate in the metrics', 15_000);
      expect(sample(waiting, METRIC.runsInPhase, { fleet: plan.fleet, phase: 'awaiting-approval' })).toBe(1);
      expect(sample(waiting, METRIC.runsInPhase, { fleet: plan.fleet, phase: 'preflight' })).toBe(0);
      expect(sample(waiting, METRIC.hostSteps, { step: 'version', outcome: 'succeeded' })).toBe(2);
      // Temporal's own metrics, from the same endpoint.
      expect(sample(waiting, 'temporal_workflow_task_execution_latency_count', { task_queue: taskQueue })).toBeGreaterThan(0);

      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'beforeOffline' }] });
      expect((await handle.result()).outcome).toBe('completed');

      const done = await waitFor(async () => {
        const text = await scrape();
        return sample(text, METRIC.runsEnded, { outcome: 'completed' }) === 1 ? text : undefined;
      }, 'the end of the run in the metrics', 15_000);
      expect(sample(done, METRIC.gatesWaiting, { fleet: plan.fleet, gate: 'beforeOffline' })).toBe(0);
      expect(sample(done, METRIC.runsInPhase, { fleet: plan.fleet, phase: 'bringing-online' })).toBe(0);
      for (const step of ['version', 'drain', 'stop', 'upgrade', 'start', 'verify', 'online']) {
        expect(sample(done, METRIC.hostSteps, { step, outcome: 'succeeded' }), step).toBe(2);
      }
      expect(sample(done, `${METRIC.hostStepSeconds}_count`, { step: 'upgrade' })).toBe(2);
      // The buckets are Cutover's (seconds, up to an hour), not the SDK's default.
      expect(sample(done, `${METRIC.hostStepSeconds}_bucket`, { step: 'upgrade', le: '3600' })).toBe(2);
      expect(sample(done, `${METRIC.gateWaitSeconds}_count`, { gate: 'beforeOffline', outcome: 'approved' })).toBe(1);
    } finally {
      worker.child.kill('SIGTERM');
      await Promise.all([worker.done, client.connection.close()]);
    }
  });
});

