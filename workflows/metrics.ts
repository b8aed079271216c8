/**
 * The run as metrics, through the workflow's metric meter: which phase each run is in, which gates wait and how long
 * they waited, how runs end. The SDK emits nothing while a workflow replays, and a gauge is per worker process: a run
 * picked up by another worker (after a restart) shows there from its next change (README, "Metrics").
 */
import { metricMeter } from '@temporalio/workflow';
import { ENDED_PHASES, METRIC } from '../core/metrics';

/** A run moves from one public phase to another (`from` undefined when it starts). */
export function phaseChanged(fleet: string, from: string | undefined, to: string): void {
  const inPhase = metricMeter.createGauge(METRIC.runsInPhase, 'int', undefined, 'Runs in each phase (1 while the run is in it)');
  if (from !== undefined) inPhase.set(0, { fleet, phase: from });
  if (!ENDED_PHASES.includes(to)) inPhase.set(1, { fleet, phase: to });
  else metricMeter.createCounter(METRIC.runsEnded, undefined, 'Runs that ended, by outcome').add(1, { outcome: to });
}

function gatesWaiting() {
  return metricMeter.createGauge(METRIC.gatesWaiting, 'int', undefined, 'Gates waiting for people (1 while the gate waits)');
}

export function gateOpened(fleet: string, gate: string): void {
  gatesWaiting().set(1, { fleet, gate });
}

/** How a gate's wait ended: its quorum approved, someone rejected, its timeout passed, or the run was cancelled. */
export type GateWaitOutcome = 'approved' | 'rejected' | 'expired' | 'cancelled';

export function gateClosed(fleet: string, gate: string, outcome: GateWaitOutcome, waitedMs: number): void {
  gatesWaiting().set(0, { fleet, gate });
  metricMeter.createHistogram(METRIC.gateWaitSeconds, 'float', 's', 'How long a gate waited for its decision').record(waitedMs / 1000, { gate, outcome });
}
