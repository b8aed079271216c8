/**
 * What database.underWay answers: how many backups or restores of the database run now, as its last output line
 * (SQL Server's sys.dm_exec_requests; the lab's `labhost db under-way`). A backup or restore starts only once it is 0
 * (activities/database.ts).
 */
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
