/**
 * The run tells the plan's `notify` targets what happened: a gate opened, an operator is needed, how it ended. Each
 * message is an activity started in the background: phases and gates never wait for a webhook, a dead one costs its
 * bounded retries and shows in the status (`notifications`), and the run waits for deliveries under way only once
 * it has ended, so its last message is sent before it closes.
 */
import { CancellationScope, log, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { type NotifyEvent, type RunRef, describeEvent, messageBody, targetsFor } from '../core/notify';
import type { NotifyTarget } from '../core/plan';
import type { NotificationRecord } from '../core/status';
import { failureMessage } from './activities';
import type { FleetRun } from './fleetRun';
import { workflowIdForFleet } from './messages';

/** The status keeps the latest notifications: a run with a gate before each of 1,000 waves sends thousands. */
const NOTIFICATIONS_KEPT = 50;

/** Bounded: three tries over at most a minute, then the failure is recorded and the run goes on. */
function sendActivity(target: NotifyTarget, event: string) {
  return proxyActivities<Activities>({
    startToCloseTimeout: '15s',
    scheduleToCloseTimeout: '1m',
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
    summary: `notify ${target.name}: ${event}`,
  }).sendNotification;
}

export class Notifier {
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly run: FleetRun,
    private readonly targets: NotifyTarget[],
  ) {}

  /** Starts sending the event to every target that wants it, and returns at once. Never throws. */
  notify(event: NotifyEvent): void {
    for (const target of targetsFor(this.targets, event.event)) {
      const record: NotificationRecord = { event: event.event, target: target.name, at: new Date().toISOString(), state: 'sending' };
      this.keep(record);
      try {
        this.send(target, event, record);
      } catch (error) {
        // A bug in a message must cost that message, never a workflow task of the run.
        record.state = 'failed';
        record.error = `the message could not be made: ${error instanceof Error ? error.message : String(error)}`;
        log.error(`notify ${target.name}: ${record.error}`);
      }
    }
  }

  private send(target: NotifyTarget, event: NotifyEvent, record: NotificationRecord): void {
    const ref = runRef(this.run);
    const request = { target: target.name, url: target.url, body: messageBody(ref, describeEvent(ref, event), target.format) };
    // Not cancellable: a cancelled run still rolls back, and its people should hear how that went.
    const sent: Promise<void> = CancellationScope.nonCancellable(() => sendActivity(target, event.event)(request))
      .then(
        () => {
          record.state = 'sent';
        },
        (error: unknown) => {
          record.state = 'failed';
          record.error = failureMessage(error);
        },
      )
      .finally(() => this.sending.delete(sent));
    this.sending.add(sent);
  }

  /** Every delivery under way, done or given up (each is bounded by its activity's schedule-to-close timeout). */
  async settled(): Promise<void> {
    await CancellationScope.nonCancellable(() => Promise.all([...this.sending]));
  }

  private keep(record: NotificationRecord): void {
    this.run.status.notifications = [...(this.run.status.notifications ?? []), record].slice(-NOTIFICATIONS_KEPT);
  }
}

/** A notifier for a plan with targets. Runs recorded before notifications never had one, and replay without. */
export function notifierFor(run: FleetRun): Notifier | undefined {
  const targets = run.plan.notify ?? [];
  return targets.length > 0 ? new Notifier(run, targets) : undefined;
}

function runRef(run: FleetRun): RunRef {
  const { workflowId } = workflowInfo();
  const { fleet, source, target } = run.plan;
  return { fleet, workflowId, cliName: workflowId === workflowIdForFleet(fleet) ? fleet : workflowId, source, target, signed: run.status.trust?.decisions === 'signed' };
}

const OUTCOMES = { completed: 'completed', rolledBack: 'rolled-back', rejected: 'rejected', failed: 'failed' } as const;

/** Once the machine has stopped: how the run ended, to every target that wants it, then every delivery settled. */
export async function notifyOutcome(run: FleetRun): Promise<void> {
  const notifier = run.notifier;
  if (!notifier) return;
  const final = run.snapshot?.status === 'done' ? OUTCOMES[run.snapshot.value as keyof typeof OUTCOMES] : undefined;
  if (final) {
    const reason = final === 'completed' ? undefined : run.snapshot.context.failure;
    notifier.notify({ event: final, hosts: run.planned.hostIds.length, ...(reason ? { reason } : {}), ...(run.status.backup ? { backup: run.status.backup } : {}) });
  }
  await notifier.settled();
}
