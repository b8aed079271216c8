/**
 * What a backup or restore asks the database before it starts (activities/database.ts): `database.underWay`, how many
 * backups or restores of it run now, and waits while that is not 0; then, on a retry, its own `finished`, how many
 * times this backup or restore has finished, and takes the earlier attempt's when that is not 0. Each answers with a
 * count as its last output line (SQL Server's sys.dm_exec_requests and msdb history; the lab's `labhost db`).
 */

/** How often a backup or restore asks database.underWay again while another one runs. */
export const UNDER_WAY_POLL_MS = 2_000;

interface AskingTask {
  timeoutMs: number;
  underWay?: { timeoutMs: number };
  finished?: { timeoutMs: number };
}

/**
 * What asking may add to a backup's or restore's activity: a wait as long as the task's own timeout (past it, the task
 * goes to the operator rather than start with less than its whole timeout: a restore cut off half-way leaves the
 * database restoring), the last underWay and one pause, and `finished`. The command then has its whole timeout.
 */
export function askingBudgetMs(task: AskingTask): number {
  const waiting = task.underWay ? task.timeoutMs + task.underWay.timeoutMs + UNDER_WAY_POLL_MS : 0;
  return waiting + (task.finished?.timeoutMs ?? 0);
}

export type CountAnswer = { count: number } | { problem: string };

/** sqlcmd right-aligns a number in its column: the line is trimmed first. */
const COUNT = /^[0-9]{1,9}$/;

/** `field` names the plan's command in the problem, e.g. "database.underWay". */
export function countAnswer(lastLine: string, field: string, counts: string): CountAnswer {
  const line = lastLine.trim();
  if (COUNT.test(line)) return { count: Number(line) };
  const shown = JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
  return { problem: `its last line ${shown} is not a count: ${field} must print ${counts}, 0 when none (with sqlcmd: SET NOCOUNT ON, and -h -1 for no header)` };
}

export const UNDER_WAY_COUNTS = 'how many backups or restores of the database run now';
export const FINISHED_COUNTS = 'how many times this backup or restore has finished';
