/** Host steps as metrics, through the activity's metric meter (the SDK adds namespace, task queue, activity type). */
import type { Context } from '@temporalio/activity';
import { type HostStepOutcome, METRIC } from '../core/metrics';

/** Records one command run on a host: its outcome, and how long it took since `startedMs`. */
export type ObserveHostStep = (outcome: HostStepOutcome, startedMs: number) => void;

export function hostStepMeter(context: Context, step: string): ObserveHostStep {
  const count = context.metricMeter.createCounter(METRIC.hostSteps, undefined, 'Commands run on hosts (each attempt), by step and outcome');
  const seconds = context.metricMeter.createHistogram(METRIC.hostStepSeconds, 'float', 's', 'How long a command on a host took, by step');
  return (outcome, startedMs) => {
    count.add(1, { step, outcome });
    seconds.record((Date.now() - startedMs) / 1000, { step });
  };
}
