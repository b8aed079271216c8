/** The shared database: backup, restore, verify and checksum, each a command run on the database host. */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { SingleHostTask } from '../core/planner';
import type { HostRunner } from '../transport/transport';
import { lastLine } from '../core/text';
import { runTask } from './runTask';

export interface DatabaseOutcome {
  action: SingleHostTask['action'];
  /** The command's last output line: the checksum for `checksum`. */
  result: string;
  outputTail: string;
}

export function createDatabaseActivities(deps: { runner: HostRunner }) {
  return {
    async runDatabaseTask(task: SingleHostTask): Promise<DatabaseOutcome> {
      const context = Context.current();
      const beat = setInterval(() => context.heartbeat(), 2_000);
      try {
        // Not aborted on cancellation: a backup or restore cut off half-way is worse than one that finishes.
        const result = await runTask(deps.runner, task, { timeoutMs: task.timeoutMs });
        if (result.exitCode !== 0 || result.timedOut) {
          throw ApplicationFailure.retryable(
            `database ${task.action} on ${task.host} ${result.timedOut ? `timed out after ${task.timeoutMs} ms` : `exited ${result.exitCode}`}: ${lastLine(result.outputTail)}`,
            'DatabaseTaskFailed',
            { outputTail: result.outputTail },
          );
        }
        return { action: task.action, result: lastLine(result.outputTail), outputTail: result.outputTail };
      } finally {
        clearInterval(beat);
      }
    },
  };
}
