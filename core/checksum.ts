/**
 * What makes a database checksum proof: a rollback compares the restored database's checksum with the one taken
 * before the backup, and a command that prints nothing, or the same line whatever the content ("(1 rows affected)"),
 * would pass that comparison without proving anything. So a checksum must be non-empty and match a pattern: the
 * plan's `database.checksumPattern`, or this default, a hex digest (CRC-32 and up) or a whole number (SQL Server's
 * CHECKSUM_AGG).
 */
export const DEFAULT_CHECKSUM_PATTERN = '^(?:[0-9A-Fa-f]{8,128}|-?[0-9]{1,20})$';

/** Longer than any digest: such a line is output, not a checksum (and a plan's pattern never scans a long text). */
const MAX_CHECKSUM_CHARS = 256;

/** Why a pattern cannot serve (it does not compile, or an empty line matches it), or undefined. */
export function checksumPatternProblem(pattern: string): string | undefined {
  let regex: RegExp;
  try {
    regex = new RegExp(pattern);
  } catch (error) {
    return `not a regular expression: ${(error as Error).message}`;
  }
  return regex.test('') ? 'an empty line matches it, and an empty checksum proves nothing (anchor it: ^...$, and ask for at least one character)' : undefined;
}

/** Why `checksum` (the checksum command's last output line) proves nothing, or undefined when it may be compared. */
export function checksumProblem(checksum: string, pattern: string = DEFAULT_CHECKSUM_PATTERN): string | undefined {
  if (checksum === '') return 'the checksum command printed nothing: an empty checksum proves nothing';
  const shown = JSON.stringify(checksum.length > 80 ? `${checksum.slice(0, 80)}…` : checksum);
  if (checksum.length > MAX_CHECKSUM_CHARS || !new RegExp(pattern).test(checksum)) {
    return `the checksum command's last line ${shown} is not a checksum (it must match /${pattern}/, database.checksumPattern)`;
  }
  return undefined;
}

/**
 * Why a backup read back (database.verifyBackup: its content's checksum, `readBack`) does not prove it can bring the
 * database back as it was when `taken` was its checksum, or undefined when it does.
 */
export function backupReadBackProblem(readBack: string, taken: string, pattern?: string): string | undefined {
  const problem = checksumProblem(readBack, pattern);
  if (problem) return `reading the backup back: ${problem}`;
  if (readBack !== taken) return `the backup reads back with checksum ${readBack}, not the database's ${taken} taken before it: it is damaged or incomplete, and restoring it would not bring the database back as it was`;
  return undefined;
}
