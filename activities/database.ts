/** The shared database: backup, restore, verify and checksum, each a command run on the database host. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { HEARTBEAT_EVERY_MS } from '../core/heartbeat';
import type { SingleHostTask } from '../core/planner';
import type { HostRunner } from '../transport/transport';
import { lastLine } from '../core/text';
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
        const finished = journal && held?.settled.done.get(journal.key);
        if (finished !== undefined) {
          context.log.info(`database ${task.action} on ${task.host}: an earlier attempt finished, its result is taken`);
          return outcome(task, finished);
        }
        // Not aborted on cancellation: a backup or restore cut off half-way is worse than one that finishes.
        const result = await runTask(deps.runner, task, { timeoutMs: task.timeoutMs, ...(journal ? { journalFile: journal.file, journalKey: journal.key } : {}) });
        if (result.exitCode !== 0 || result.timedOut) {
          throw ApplicationFailure.retryable(
            `database ${task.action} on ${task.host} ${result.timedOut ? `timed out after ${task.timeoutMs} ms` : `exited ${result.exitCode}`}: ${lastLine(result.outputTail)}`,
            'DatabaseTaskFailed',
            { outputTail: result.outputTail },
          );
        }
        return outcome(task, result.outputTail);
      } finally {
        clearInterval(beat);
        await held?.release();
      }
    },
  };
}
