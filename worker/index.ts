/**
 * The worker entry point: `cutover worker` or `npm run worker`. Reads TEMPORAL_* (envconfig), CUTOVER_TASK_QUEUE,
 * CUTOVER_SITES (sites whose host steps this machine runs, comma-separated), CUTOVER_LAB (1: it drives the lab) and
 * CUTOVER_METRICS_ADDRESS (HOST:PORT: serve Prometheus metrics there).
 */
import type { Worker } from '@temporalio/worker';
import { connectWorker, serverTarget } from '../client/connection';
import { sharedSpawner } from '../transport/spawner';
import { installMetrics, metricsAddress } from './metrics';
import { createCutoverWorker, createSiteWorker } from './worker';

export interface WorkerCommandOptions {
  /** Sites whose host steps this worker runs besides (or, with `sitesOnly`, instead of) the main task queue. */
  sites?: string[];
  sitesOnly?: boolean;
  /** HOST:PORT to serve Prometheus metrics on (default: CUTOVER_METRICS_ADDRESS; none when neither is set). */
  metrics?: string;
}

export function sitesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.CUTOVER_SITES ?? '').split(',').map((site) => site.trim()).filter(Boolean);
}

/** Which spawner runs local commands; without the Go spawner, what that costs and how to get it. */
function spawnerLine(): string {
  if (sharedSpawner().program.kind === 'go') return 'cutover worker spawning local commands with the Go spawner';
  if (process.env.CUTOVER_SPAWNER === 'node') return 'cutover worker spawning local commands with the Node spawner (CUTOVER_SPAWNER=node)';
  return 'cutover worker spawning local commands with the Node spawner: the Go spawner is not built (install Go and run `npm run build`), about 3 times the CPU per command';
}

export async function main(options: WorkerCommandOptions = {}): Promise<void> {
  const metrics = metricsAddress(options.metrics);
  // Before the first connection: it creates the Runtime, and a process has only one.
  if (metrics) installMetrics(metrics);
  const target = serverTarget();
  const connection = await connectWorker(target);
  const sites = [...new Set([...sitesFromEnv(), ...(options.sites ?? [])])];
  const workers: Worker[] = [];
  if (!options.sitesOnly) workers.push(await createCutoverWorker({ target, connection }));
  for (const site of sites) workers.push(await createSiteWorker(site, { target, connection }));
  for (const worker of workers) {
    console.log(`cutover worker polling task queue "${worker.options.taskQueue}" in namespace "${worker.options.namespace}"`);
  }
  if (metrics) console.log(`cutover worker serving Prometheus metrics at http://${metrics}/metrics`);
  console.log(spawnerLine());
  // One process serves every queue; a failing worker stops the others, so the process exits and is restarted whole.
  await Promise.all(
    workers.map((worker) =>
      worker.run().catch((error: unknown) => {
        for (const other of workers) if (other !== worker && other.getState() === 'RUNNING') other.shutdown();
        throw error;
      }),
    ),
  );
}
