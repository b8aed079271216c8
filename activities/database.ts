/** The shared database: backup, restore, verify and checksum, each a command run on the database host. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { HEARTBEAT_EVERY_MS } from '../core/heartbeat';
import type { DatabaseQueryTask, SingleHostTask } from '../core/planner';
import type { CommandResult, HostRunner } from '../transport/transport';
import { secretTemplates } from '../core/secrets';
import { lastLine } from '../core/text';
import { FINISHED_COUNTS, UNDER_WAY_COUNTS, UNDER_WAY_POLL_MS, countAnswer } from '../core/databaseQueries';
import { activityKey, databaseJournalFile, holdDatabase } from './databaseLock';
import { runTask } from './runTask';

export interface DatabaseOutcome {
  action: SingleHostTask['action'];
  /** The command's last output line: the checksum for `checksum`. */
  result: string;
  outputTail: string;
}

function outcome(task: SingleHostTask, outputTail: string): DatabaseOutcome {
  return { action: task.action, result: lastLine(outputTail), outputTail };
}

/** Tasks whose result the run reads from their output: an earlier attempt journaled without it is run again. */
const READS_OUTPUT: ReadonlySet<SingleHostTask['action']> = new Set(['checksum', 'verifyBackup', 'rehearse', 'check']);

/** How a command that failed ended, for the failure's message. */
function howItEnded(result: CommandResult, timeoutMs: number): string {
  return `${result.timedOut ? `timed out after ${timeoutMs} ms` : `exited ${result.exitCode}`}: ${lastLine(result.outputTail)}`;
}

/** A count a database query printed as its last line; a query that fails or prints no count fails the task. */
async function askCount(runner: HostRunner, task: SingleHostTask, query: DatabaseQueryTask, field: string, counts: string): Promise<number> {
  const context = Context.current();
  const asked = `database ${task.action} on ${task.host}: ${field}`;
  const result = await runTask(runner, { host: task.host, transport: task.transport, command: query.command }, { timeoutMs: query.timeoutMs, signal: context.cancellationSignal });
  context.cancellationSignal.throwIfAborted();
  if (result.exitCode !== 0 || result.timedOut) {
    throw ApplicationFailure.retryable(`${asked} ${howItEnded(result, query.timeoutMs)}`, 'DatabaseQueryFailed', { outputTail: result.outputTail });
  }
  const answer = countAnswer(lastLine(result.outputTail), field, counts);
  if ('problem' in answer) throw ApplicationFailure.nonRetryable(`${asked}: ${answer.problem}`, 'DatabaseQueryFailed', { outputTail: result.outputTail });
  return answer.count;
}

/**
 * Waits while database.underWay says that a backup or restore of the database runs: one whose worker was lost (over
 * ssh nothing on the worker knows it still runs), or one from another machine. Gives up, for the operator, once it
 * has waited as long as the task may run (core/databaseQueries.ts).
 */
async function waitWhileUnderWay(runner: HostRunner, task: SingleHostTask, underWay: DatabaseQueryTask): Promise<void> {
  const context = Context.current();
  const started = Date.now();
  for (let polls = 0; ; polls++) {
    const count = await askCount(runner, task, underWay, 'database.underWay', UNDER_WAY_COUNTS);
    if (count === 0) return;
    const waiting = `database ${task.action} on ${task.host}: database.underWay counts ${count} backup(s) or restore(s) under way`;
    if (Date.now() - started + UNDER_WAY_POLL_MS >= task.timeoutMs) {
      throw ApplicationFailure.retryable(
        `${waiting} after ${Math.round((Date.now() - started) / 1000)} s: not started beside them. Find what runs (SQL Server: sys.dm_exec_requests), let it end or stop it, then retry`,
        'DatabaseTaskUnderWay',
      );
    }
    if (polls === 0) context.log.warn(`${waiting}: waiting for them to end before starting`);
    await context.sleep(UNDER_WAY_POLL_MS);
  }
}

/**
 * On a retry, whether an earlier attempt's backup or restore finished after all (its worker lost, its command went
 * on): the task's `finished` query, once nothing runs any more.
 */
async function finishedEarlier(runner: HostRunner, task: SingleHostTask): Promise<boolean> {
  if (!task.finished || Context.current().info.attempt === 1) return false;
  return (await askCount(runner, task, task.finished, `database.${task.action}.finished`, FINISHED_COUNTS)) > 0;
}

export function createDatabaseActivities(deps: { runner: HostRunner; journalDir?: string }) {
  return {
    async runDatabaseTask(task: SingleHostTask): Promise<DatabaseOutcome> {
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
      const { workflowExecution, activityId } = context.info;
      const journal = deps.journalDir && workflowExecution ? { file: databaseJournalFile(deps.journalDir, task), key: activityKey({ ...workflowExecution, activityId }) } : undefined;
      let held: Awaited<ReturnType<typeof holdDatabase>> | undefined;
      try {
        held = journal && (await holdDatabase(journal.file, { signal: context.cancellationSignal, warn: (message) => context.log.warn(message) }));
        // An earlier attempt of this task whose worker was lost may have finished after all (its spawner went on):
        // its result stands, and a backup or restore does not run a second time.
        // A command that uses secrets is journaled without its output, which may hold them (runTask.ts): its
        // earlier attempt is waited for all the same, and its result taken where no output is read from it.
        const keepsOutput = secretTemplates(task.command).length === 0;
        const finished = journal && held?.settled.done.get(journal.key);
        if (finished !== undefined && (keepsOutput || !READS_OUTPUT.has(task.action))) {
          context.log.info(`database ${task.action} on ${task.host}: an earlier attempt finished, its result is taken`);
          return outcome(task, finished);
        }
        // The wait for an earlier attempt ends early when this one is cancelled (the worker stops, the run is
        // cancelled): its command may still run, so none is started beside it, nor any once cancelled.
        if (journal && held?.settled.running.has(journal.key)) {
          throw ApplicationFailure.retryable(`database ${task.action} on ${task.host}: an earlier attempt's command is still running; not started beside it`, 'DatabaseTaskUnderWay');
        }
        context.cancellationSignal.throwIfAborted();
        if (task.underWay) await waitWhileUnderWay(deps.runner, task, task.underWay);
        if (await finishedEarlier(deps.runner, task)) {
          context.log.info(`database ${task.action} on ${task.host}: an earlier attempt's finished, the database says: not run again`);
          return outcome(task, '');
        }
        // Not aborted on cancellation: a backup or restore cut off half-way is worse than one that finishes.
        const journaling = journal ? { journalFile: journal.file, journalKey: journal.key, ...(keepsOutput ? {} : { journalOutput: false }) } : {};
        const result = await runTask(deps.runner, task, { timeoutMs: task.timeoutMs, ...journaling });
        if (result.exitCode !== 0 || result.timedOut) {
          throw ApplicationFailure.retryable(`database ${task.action} on ${task.host} ${howItEnded(result, task.timeoutMs)}`, 'DatabaseTaskFailed', { outputTail: result.outputTail });
        }
        return outcome(task, result.outputTail);
      } finally {
        clearInterval(beat);
        await held?.release();
      }
    },
  };
}
