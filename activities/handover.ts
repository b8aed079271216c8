/**
 * A batch on a worker that stops (SIGTERM, `systemctl stop`) hands over at once. The SDK cancels running activities
 * as soon as shutdown starts (shutdownGraceTime 0, worker/worker.ts) with a CancelledFailure 'WORKER_SHUTDOWN'. The
 * batch then starts no host, and stops waiting for the commands under way once the journal holds each of them: a
 * spawner runs it, outlives the worker, and journals its end, and the retry (on another worker of this machine) waits
 * for it there and takes its result. A command the journal does not hold (over SSH, with secrets, a probe) is waited
 * for, since a retry could not tell that it ran.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';

const POLL_MS = 50;
/**
 * The retry of a handed-over batch comes at once, not after the plan's back-off, which is for failed commands. Not 0:
 * the server reads a zero delay as "none" and waits the policy's maximum interval instead.
 */
export const HANDOVER_RETRY_DELAY_MS = 1;

/** Whether the activity was cancelled because its worker shuts down (not the workflow's cancellation, nor a timeout). */
export function isWorkerShutdown(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof CancelledFailure && signal.reason.message === 'WORKER_SHUTDOWN';
}

/**
 * Resolves once the worker shuts down and the journal holds every command still under way; never for any other
 * cancellation (the batch then waits for its commands, as without one).
 */
export async function readyToHandOver(signal: AbortSignal, underWay: () => Iterable<string>, journaled: (host: string) => boolean): Promise<void> {
  if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  if (!isWorkerShutdown(signal)) return new Promise<void>(() => {});
  while ([...underWay()].some((host) => !journaled(host))) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
}

/** Fails the attempt retryably (the last heartbeat keeps the hosts done), so the server schedules the retry at once. */
export function handOverFailure(underWay: number): ApplicationFailure {
  return ApplicationFailure.create({
    message: `the worker is shutting down: the batch is handed over, with ${underWay} host command(s) under way left to finish in this machine's journal`,
    type: 'WorkerShutdown',
    nextRetryDelay: HANDOVER_RETRY_DELAY_MS,
  });
}
