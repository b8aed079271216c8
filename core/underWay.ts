/**
 * What database.underWay answers: how many backups or restores of the database run now, as its last output line
 * (SQL Server's sys.dm_exec_requests; the lab's `labhost db under-way`). A backup or restore starts only once it is 0
 * (activities/database.ts).
 */
/** How often a backup or restore asks database.underWay again while another one runs. */
export const UNDER_WAY_POLL_MS = 2_000;

/**
 * What asking and waiting may add to a backup's or restore's activity: a wait as long as the task's own timeout (past
 * it, the task goes to the operator rather than start with less than its whole timeout: a restore cut off half-way
 * leaves the database restoring), the last question, and one pause. The command then has its whole timeout.
 */
export function underWayBudgetMs(task: { timeoutMs: number; underWay?: { timeoutMs: number } }): number {
  return task.underWay ? task.timeoutMs + task.underWay.timeoutMs + UNDER_WAY_POLL_MS : 0;
}

export type UnderWayAnswer = { count: number } | { problem: string };

/** sqlcmd right-aligns a number in its column: the line is trimmed first. */
const COUNT = /^[0-9]{1,9}$/;

export function underWayAnswer(lastLine: string): UnderWayAnswer {
  const line = lastLine.trim();
  if (COUNT.test(line)) return { count: Number(line) };
  const shown = JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
  return {
    problem: `its last line ${shown} is not a count: database.underWay must print how many backups or restores of the database run now, 0 when none (with sqlcmd: SET NOCOUNT ON, and -h -1 for no header)`,
  };
}
