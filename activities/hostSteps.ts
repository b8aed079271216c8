/**
 * Host steps in batches: one activity runs one step on many hosts within the plan's parallelism. It heartbeats
 * the hosts it is done with (succeeded, or failed for good) and the attempts each other host has used, so a retry
 * (or a new worker after a crash) runs only the rest, and it returns one outcome per host so the workflow still
 * decides host by host.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { BATCH_RESULT_CHARS, keepEnd, tailShare } from '../core/budget';
import { inLanes } from '../core/lanes';
import type { HostOutcome } from '../core/outcomes';
import { type StepBatch, batchActivityAttempts } from '../core/planner';
import type { HostRunner } from '../transport/transport';
import { hostStepOutcome } from '../core/metrics';
import { HEARTBEAT_EVERY_MS } from '../core/heartbeat';
import { handOverFailure, isWorkerShutdown } from './handover';
import { type BatchClaim, JournalReader, claimBatch, journalFile, removeJournal, settledJournal } from './journal';
import { hostStepMeter } from './metrics';
import { runTask } from './runTask';
import { lastLine } from '../core/text';

export type { HostOutcome };

export interface BatchProgress {
  /**
   * Hosts this batch is finished with: those that succeeded, and those that failed for good (an error no retry fixes,
   * or the step's every attempt used). A retry of the batch runs only the others.
   */
  done: Record<string, HostOutcome>;
  /**
   * For each host not done, how many times its command failed in earlier attempts. The plan's `maxAttempts` counts
   * these, not the activity's attempts, so an attempt lost with its worker does not use one up. Absent in heartbeats
   * of activities that predate it.
   */
  failures?: Record<string, number>;
}

/**
 * A host finished: its progress is heartbeated within this. Not at once: each heartbeat encodes every host done so
 * far, which at one per host cost the worker more CPU than the spawns (a 200-host batch encoded 200 growing
 * payloads), while Temporal sends the server at most one a second (the worker's maxHeartbeatThrottleInterval).
 */
const PROGRESS_WITHIN_MS = 200;
const SUCCESS_TAIL_CHARS = 200;
/** How long a finished batch's journal stays for an overlapping attempt (one the server gave up on lags by about a heartbeat timeout). */
const JOURNAL_KEPT_MS = 10 * 60_000;

export interface HostStepDeps {
  runner: HostRunner;
  /** Where batches journal their hosts on this machine (activities/journal.ts); no journal without it. */
  journalDir?: string;
}

export function createHostStepActivities(deps: HostStepDeps) {
  return {
    async runHostStep(batch: StepBatch): Promise<HostOutcome[]> {
      const context = Context.current();
      const { attempt, workflowExecution, activityId, retryPolicy } = context.info;
      const earlier = context.info.heartbeatDetails as BatchProgress | undefined;
      const failures: Record<string, number> = { ...(earlier?.failures ?? {}) };
      const progress: BatchProgress = { done: { ...(earlier?.done ?? {}) }, failures };
      let progressTimer: NodeJS.Timeout | undefined;
      const heartbeat = () => {
        clearTimeout(progressTimer);
        progressTimer = undefined;
        context.heartbeat(progress);
      };
      const progressed = () => {
        progressTimer ??= setTimeout(heartbeat, PROGRESS_WITHIN_MS);
      };
      const observe = hostStepMeter(context, batch.step);
      const { workflowId, runId } = workflowExecution ?? {};
      const journal = deps.journalDir && workflowId && runId ? journalFile(deps.journalDir, { workflowId, runId, activityId }) : undefined;
      // Heartbeats and the result carry every done host, and must stay far below Temporal's payload limits: a
      // successful host keeps a short tail (the version step's answer is its last line), a failed or recorded one
      // its share of the batch's budget.
      const tailChars = tailShare(BATCH_RESULT_CHARS, batch.tasks.length);
      const kept = (ok: boolean, outputTail: string) => (ok && !batch.record ? outputTail.slice(-SUCCESS_TAIL_CHARS) : keepEnd(outputTail, tailChars));
      /** Hosts that failed in this attempt and have attempts left. */
      const retryable: HostOutcome[] = [];
      const finish = (outcome: HostOutcome) => {
        progress.done[outcome.host] = outcome;
        delete failures[outcome.host];
      };
      /** Records a host's failed command; once that has used up the step's attempts, the host is done (failed). */
      const commandFailed = (outcome: HostOutcome) => {
        const times = (failures[outcome.host] ?? 0) + 1;
        failures[outcome.host] = times;
        if (times >= batch.retry.maxAttempts) finish(outcome);
        else retryable.push(outcome);
      };
      const warn = (message: string) => context.log.warn(message);
      const lastAttempt = isLastAttempt(attempt, retryPolicy ? retryPolicy.maximumAttempts : batchActivityAttempts(batch.retry));
      const beat = setInterval(heartbeat, HEARTBEAT_EVERY_MS);
      let claim: BatchClaim | undefined;
      try {
        if (journal) {
          // Claimed before the journal is read: an overlapping attempt of this batch has finished (or lost its
          // worker) by then, and the journal shows what it did.
          claim = await claimBatch(journal, { signal: context.cancellationSignal, warn });
          // Hosts a killed worker's spawner finished (or is still finishing) after its last heartbeat are done too;
          // the failures it journaled count against the step's attempts as any other (the heartbeat may have missed them).
          const journaled = await settledJournal(journal, { signal: context.cancellationSignal, warn });
          for (const [host, outputTail] of journaled.done) {
            if (!progress.done[host]) finish({ host, ok: true, exitCode: 0, outputTail: kept(true, outputTail), attempt });
          }
          for (const [host, failure] of journaled.failed) {
            if (progress.done[host] || failure.times <= (failures[host] ?? 0)) continue;
            failures[host] = failure.times;
            if (failure.times >= batch.retry.maxAttempts) {
              finish({ host, ok: false, exitCode: failure.exitCode, outputTail: kept(false, failure.outputTail), attempt });
            }
          }
        }
        const todo = batch.tasks.filter((task) => !progress.done[task.host]);
        const reader = journal ? new JournalReader(journal, warn) : undefined;
        /**
         * Before starting a host: what another attempt of this batch did with it (one whose claim went stale while
         * its spawner still ran the host). True when that decided the host.
         */
        const decidedElsewhere = async (host: string): Promise<boolean> => {
          if (!reader) return false;
          let seen = reader.host(host);
          while (seen.running && !context.cancellationSignal.aborted) {
            await new Promise((resolve) => setTimeout(resolve, 200));
            seen = reader.host(host);
          }
          if (seen.done !== undefined) {
            finish({ host, ok: true, exitCode: 0, outputTail: kept(true, seen.done), attempt });
            return true;
          }
          if (!seen.failed || seen.failed.times <= (failures[host] ?? 0)) return false;
          failures[host] = seen.failed.times;
          if (seen.failed.times < batch.retry.maxAttempts) return false;
          finish({ host, ok: false, exitCode: seen.failed.exitCode, outputTail: kept(false, seen.failed.outputTail), attempt });
          return true;
        };
        /** Right before a host starts: not cancelled, and this attempt still holds the batch (claim.held() reads its owner file). */
        const mayStart = () => !context.cancellationSignal.aborted && (claim?.held() ?? true);
        await inLanes(todo, batch.maxParallel, async (task) => {
          // Cancellation (or worker shutdown) starts no new host, but lets commands under way finish: killing an
          // installer half-way leaves a host worse off than either version. Each command still has its timeout.
          if (context.cancellationSignal.aborted || claim?.lost.aborted) return;
          const started = Date.now();
          try {
            if ((await decidedElsewhere(task.host)) || !mayStart()) return;
            const result = await runTask(deps.runner, task, { timeoutMs: batch.timeoutMs, ...(journal ? { journalFile: journal } : {}) });
            observe(hostStepOutcome(result), started);
            const ok = result.exitCode === 0 && !result.timedOut;
            const outcome = { host: task.host, ok, exitCode: result.exitCode, outputTail: kept(ok, result.outputTail), attempt };
            if (ok) finish(outcome);
            else commandFailed(outcome);
          } catch (error) {
            observe('error', started);
            const message = (error as Error).message;
            if (error instanceof ApplicationFailure && error.nonRetryable === true) {
              // No retry fixes this host (a rejected host key, a missing secret): done, failed. The other hosts
              // keep their retries.
              finish({ host: task.host, ok: false, exitCode: -1, outputTail: kept(false, message), attempt });
            } else {
              commandFailed({ host: task.host, ok: false, exitCode: -1, outputTail: kept(false, `cannot reach ${task.host}: ${message}`), attempt });
            }
          }
          // Failures too, so a retry after a lost attempt still knows how many attempts each host has used.
          progressed();
        });
      } finally {
        clearInterval(beat);
        // Every host this attempt finished, however it ends (cancelled too: the next attempt starts from it).
        heartbeat();
        await claim?.release();
      }
      // The worker stops: no host was started since, the commands under way have ended and the last heartbeat holds
      // them, so the retry, on whichever machine, starts where this attempt ended (Temporal's last attempt reports
      // instead, host by host).
      if (isWorkerShutdown(context.cancellationSignal) && !lastAttempt) throw handOverFailure();
      if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason ?? new Error('cancelled');
      // Another attempt took over this batch (it reads the journal): this one's outcomes are not the batch's.
      if (claim?.lost.aborted) throw new Error(`another attempt took over ${batch.step}: ${(claim.lost.reason as Error).message}`);

      // Temporal owns the retries: while a host has attempts left, fail the batch so the retry policy applies; the
      // heartbeat keeps the hosts that are done. Temporal's last attempt (reached only when attempts were lost to the
      // infrastructure, or under the policy of a batch scheduled by older workflow code) reports every host's outcome
      // instead, so the workflow still decides host by host.
      if (retryable.length > 0 && !lastAttempt) {
        const first = retryable[0] as HostOutcome;
        throw ApplicationFailure.retryable(
          `${batch.step} failed on ${retryable.length} of ${batch.tasks.length} host(s), first ${first.host} (exit ${first.exitCode}): ${lastLine(first.outputTail)}`,
          'HostStepFailed',
        );
      }
      // Not at once: an attempt that overlaps this one (see claimBatch) still reads the journal to skip what this one did.
      if (journal) setTimeout(() => removeJournal(journal), JOURNAL_KEPT_MS).unref();
      const byHost = new Map([...Object.values(progress.done), ...retryable].map((outcome) => [outcome.host, outcome]));
      return batch.tasks.map((task) => byHost.get(task.host) as HostOutcome);
    },
  };
}

/** Temporal's maximumAttempts: 0 (or none) is unlimited. */
function isLastAttempt(attempt: number, maximumAttempts: number | undefined): boolean {
  return maximumAttempts !== undefined && maximumAttempts > 0 && attempt >= maximumAttempts;
}
