/**
 * Host steps in batches: one activity runs one step on many hosts within the plan's parallelism. It heartbeats
 * the hosts that succeeded, so a retry (or a new worker after a crash) runs only the rest, and it returns one
 * outcome per host so the workflow still decides host by host.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { StepBatch } from '../core/planner';
import type { HostTransport } from '../transport/transport';
import { journalFile, removeJournal, settledJournal } from './journal';
import { runTask } from './runTask';

export interface HostOutcome {
  host: string;
  ok: boolean;
  exitCode: number;
  outputTail: string;
  /** The activity attempt that produced this outcome. */
  attempt: number;
}

export interface BatchProgress {
  done: Record<string, HostOutcome>;
}

const HEARTBEAT_EVERY_MS = 2_000;
const SUCCESS_TAIL_CHARS = 200;

/** Runs `worker` on every item with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await worker(item);
    }
  });
  await Promise.all(lanes);
}

export interface HostStepDeps {
  transport: HostTransport;
  /** Where batches journal their hosts on this machine (activities/journal.ts); no journal without it. */
  journalDir?: string;
}

export function createHostStepActivities(deps: HostStepDeps) {
  return {
    async runHostStep(batch: StepBatch): Promise<HostOutcome[]> {
      const context = Context.current();
      const { attempt, workflowExecution, activityId } = context.info;
      const progress: BatchProgress = { done: { ...((context.info.heartbeatDetails as BatchProgress | undefined)?.done ?? {}) } };
      const heartbeat = () => context.heartbeat(progress);
      const { workflowId, runId } = workflowExecution ?? {};
      const journal = deps.journalDir && workflowId && runId ? journalFile(deps.journalDir, { workflowId, runId, activityId }) : undefined;
      const failed: HostOutcome[] = [];
      /** A host failed in a way no retry fixes (a rejected host key, a missing secret): report at once. */
      let permanent = false;
      const beat = setInterval(heartbeat, HEARTBEAT_EVERY_MS);
      try {
        if (journal) {
          // Hosts a killed worker's spawner finished (or is still finishing) after its last heartbeat are done too.
          const journaled = await settledJournal(journal, { signal: context.cancellationSignal });
          for (const [host, outputTail] of journaled.done) {
            progress.done[host] ??= { host, ok: true, exitCode: 0, outputTail: batch.record ? outputTail : outputTail.slice(-SUCCESS_TAIL_CHARS), attempt };
          }
        }
        const todo = batch.tasks.filter((task) => !progress.done[task.host]);
        await eachLimited(todo, batch.maxParallel, async (task) => {
          // Cancellation (or worker shutdown) starts no new host, but lets commands under way finish: killing an
          // installer half-way leaves a host worse off than either version. Each command still has its timeout.
          if (context.cancellationSignal.aborted) return;
          let outcome: HostOutcome;
          try {
            const result = await runTask(deps.transport, task, { timeoutMs: batch.timeoutMs, ...(journal ? { journalFile: journal } : {}) });
            const ok = result.exitCode === 0 && !result.timedOut;
            // Successful hosts keep a short tail (the version step's answer is its last line): heartbeats and the
            // result carry every done host, and must stay far below Temporal's payload limits.
            const outputTail = ok && !batch.record ? result.outputTail.slice(-SUCCESS_TAIL_CHARS) : result.outputTail;
            outcome = { host: task.host, ok, exitCode: result.exitCode, outputTail, attempt };
          } catch (error) {
            const lasting = error instanceof ApplicationFailure && error.nonRetryable === true;
            permanent ||= lasting;
            outcome = { host: task.host, ok: false, exitCode: -1, outputTail: `${lasting ? '' : `cannot reach ${task.host}: `}${(error as Error).message}`, attempt };
          }
          if (outcome.ok) {
            progress.done[task.host] = outcome;
            heartbeat();
          } else {
            failed.push(outcome);
          }
        });
      } finally {
        clearInterval(beat);
      }
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason ?? new Error('cancelled');
      heartbeat();

      // Temporal owns the retries: while attempts remain, fail the batch so the retry policy applies; the
      // heartbeat keeps the hosts that already succeeded. The last attempt reports every host's outcome instead.
      if (failed.length > 0 && attempt < batch.retry.maxAttempts && !permanent) {
        const first = failed[0] as HostOutcome;
        throw ApplicationFailure.retryable(
          `${batch.step} failed on ${failed.length} of ${batch.tasks.length} host(s), first ${first.host} (exit ${first.exitCode}): ${lastLine(first.outputTail)}`,
          'HostStepFailed',
        );
      }
      if (journal) removeJournal(journal);
      const byHost = new Map([...Object.values(progress.done), ...failed].map((outcome) => [outcome.host, outcome]));
      return batch.tasks.map((task) => byHost.get(task.host) as HostOutcome);
    },
  };
}

export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}
