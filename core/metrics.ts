/**
 * Cutover's own Prometheus metrics, the pure half: their names, the buckets of their histograms, what a host step's
 * result counts as, and the address a worker serves them on (CUTOVER_METRICS_ADDRESS or `cutover worker --metrics`).
 * The worker records them through the Temporal SDK's metric meters (activities/metrics.ts, workflows/metrics.ts), so
 * they are served by the same endpoint as the SDK's own `temporal_*` metrics.
 */
import { z } from 'zod';

export const METRIC = {
  /** Counter, by `step` and `outcome` (HOST_STEP_OUTCOMES): every command run on a host, each attempt. */
  hostSteps: 'cutover_host_steps_total',
  /** Histogram of seconds, by `step`: how long each command on a host took. */
  hostStepSeconds: 'cutover_host_step_duration_seconds',
  /** Gauge, by `fleet` and `gate`: 1 while the gate waits for people, 0 once decided. */
  gatesWaiting: 'cutover_gates_waiting',
  /** Histogram of seconds, by `gate` and `outcome` (approved, rejected, expired, cancelled): how long a gate waited. */
  gateWaitSeconds: 'cutover_gate_wait_seconds',
  /** Gauge, by `fleet` and `phase`: 1 for the phase a run is in; a run that has ended is in none. */
  runsInPhase: 'cutover_runs',
  /** Counter, by `outcome` (completed, rolled-back, rejected, failed): runs that ended. */
  runsEnded: 'cutover_runs_ended_total',
} as const;

/**
 * A host step's result as the counter labels it: the command exited 0, exited otherwise, ran over its timeout, or
 * could not run at all (the host unreachable, its key refused, a secret missing).
 */
export type HostStepOutcome = 'succeeded' | 'failed' | 'timed-out' | 'error';

export function hostStepOutcome(result: { exitCode: number; timedOut?: boolean } | 'error'): HostStepOutcome {
  if (result === 'error') return 'error';
  if (result.timedOut) return 'timed-out';
  return result.exitCode === 0 ? 'succeeded' : 'failed';
}

/** Phases a run ends in: it is in none of them while it runs, so none has a gauge. */
export const ENDED_PHASES: readonly string[] = ['completed', 'rejected', 'failed', 'rolled-back'];

/** Seconds: installers take minutes, gates hours (the SDK's default buckets are milliseconds of RPC latency). */
export const HISTOGRAM_BUCKETS: Record<string, number[]> = {
  [METRIC.hostStepSeconds]: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
  [METRIC.gateWaitSeconds]: [10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400],
};

const HOST_PORT = /^(?<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?<port>\d{1,5})$/;

/** Where the worker serves /metrics: HOST:PORT, as Temporal's Prometheus exporter binds it. */
export const MetricsAddress = z
  .string()
  .trim()
  .regex(HOST_PORT, 'expected HOST:PORT, e.g. 0.0.0.0:9464 or 127.0.0.1:9464 ([::1]:9464 for IPv6)')
  .refine((text) => {
    const port = HOST_PORT.exec(text)?.groups?.port;
    return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
  }, 'the port is from 1 to 65535');

/** The address parsed, or the one-paragraph reason naming where it came from. */
export function parseMetricsAddress(text: string, from: string): { ok: true; address: string } | { ok: false; reason: string } {
  const parsed = MetricsAddress.safeParse(text);
  if (parsed.success) return { ok: true, address: parsed.data };
  return { ok: false, reason: `${from} "${text}" is not an address to serve metrics on: ${z.prettifyError(parsed.error).replace(/^✖ /, '')}` };
}
