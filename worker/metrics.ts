/**
 * Prometheus metrics of a worker process: Temporal's Runtime serves the SDK's own metrics and Cutover's (recorded
 * through the SDK's metric meters) on one endpoint, /metrics. The Runtime is installed once per process, before
 * any connection, so this runs first in the worker's entry point.
 */
import { Runtime } from '@temporalio/worker';
import { UserError } from '../core/errors';
import { HISTOGRAM_BUCKETS, parseMetricsAddress } from '../core/metrics';

/** `--metrics HOST:PORT`, else CUTOVER_METRICS_ADDRESS; undefined when neither is set (no endpoint). */
export function metricsAddress(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const [text, from] = option !== undefined ? [option, '--metrics'] : [env.CUTOVER_METRICS_ADDRESS, 'CUTOVER_METRICS_ADDRESS'];
  if (text === undefined || text === '') return undefined;
  const parsed = parseMetricsAddress(text, from);
  if (!parsed.ok) throw new UserError(parsed.reason);
  return parsed.address;
}

export function installMetrics(bindAddress: string): void {
  try {
    Runtime.install({ telemetryOptions: { metrics: { prometheus: { bindAddress, histogramBucketOverrides: HISTOGRAM_BUCKETS } } } });
  } catch (error) {
    // The exporter binds at once: a port in use or an address not on this machine is the user's to fix.
    throw new UserError(`cannot serve metrics at ${bindAddress}: ${(error as Error).message}`);
  }
}
