/**
 * A batch on a worker that stops (SIGTERM, `systemctl stop`) hands over as soon as it can. The SDK cancels running
 * activities as soon as shutdown starts (shutdownGraceTime 0, worker/worker.ts) with a CancelledFailure
 * 'WORKER_SHUTDOWN'. The batch then starts no host, lets the commands under way end (an installer cut off half-way
 * leaves a host worse off than either version), and fails retryably with every outcome in its last heartbeat. The
 * retry may run on another machine, whose journal knows nothing of this one's commands: only the heartbeat tells it,
 * so the batch does not hand over before its commands have ended.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';

/**
 * The retry of a handed-over batch comes at once, not after the plan's back-off, which is for failed commands. Not 0:
 * the server reads a zero delay as "none" and waits the policy's maximum interval instead.
 */
const HANDOVER_RETRY_DELAY_MS = 1;

/** Whether the activity was cancelled because its worker shuts down (not the workflow's cancellation, nor a timeout). */
export function isWorkerShutdown(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof CancelledFailure && signal.reason.message === 'WORKER_SHUTDOWN';
}

/** Fails the attempt retryably (its last heartbeat holds every host it finished), so the server retries it at once. */
export function handOverFailure(): ApplicationFailure {
  return ApplicationFailure.create({
    message: 'the worker is shutting down: the batch is handed over, its commands under way having ended',
    type: 'WorkerShutdown',
    nextRetryDelay: HANDOVER_RETRY_DELAY_MS,
  });
}
