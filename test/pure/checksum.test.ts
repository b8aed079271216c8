/** A checksum proves something: non-empty and shaped like one, by the plan's pattern or the default. */
import { describe, expect, it } from 'vitest';
import { backupReadBackProblem, checksumProblem } from '../../core/checksum';
import { refusal, validExample } from './fixtures';

describe('a checksum', () => {
  it('is refused when empty, a constant line, or too long to be one', () => {
    expect(checksumProblem('')).toContain('printed nothing');
    expect(checksumProblem('(1 rows affected)')).toContain('"(1 rows affected)" is not a checksum');
    expect(checksumProblem('Command completed successfully.')).toContain('is not a checksum');
    expect(checksumProblem('a'.repeat(300))).toContain('is not a checksum');
  });

  it('is taken as a hex digest or a whole number by default', () => {
    expect(checksumProblem('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08')).toBeUndefined();
    expect(checksumProblem('-1852262487')).toBeUndefined();
  });

  it("follows the plan's pattern", () => {
    expect(checksumProblem('rows=1200 sum=77', '^rows=\\d+ sum=\\d+$')).toBeUndefined();
    expect(checksumProblem('0123abcd', '^rows=\\d+ sum=\\d+$')).toContain('/^rows=\\d+ sum=\\d+$/');
  });
});

describe("the plan's database.checksumPattern", () => {
  it('is taken when it is a regular expression an empty line does not match', () => {
    expect(validExample((raw) => (raw.database.checksumPattern = '^[0-9a-f]{64}$')).database.checksumPattern).toBe('^[0-9a-f]{64}$');
  });

  it.each([
    ['^[0-9a-f]*$', 'an empty line matches it'],
    ['([', 'not a regular expression'],
  ])('refuses %s', (pattern, says) => {
    const { message, issues } = refusal((raw) => (raw.database.checksumPattern = pattern));
    expect(issues.map((issue) => issue.path)).toEqual([['database', 'checksumPattern']]);
    expect(message).toContain(says);
    expect(message).toContain('→ at database.checksumPattern');
  });
});

describe('a backup read back (database.verifyBackup)', () => {
  const taken = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

  it("proves the backup when it prints the database's checksum taken before it", () => {
    expect(backupReadBackProblem(taken, taken)).toBeUndefined();
  });

  it('is refused when it prints another checksum (a damaged or truncated backup), or none', () => {
    expect(backupReadBackProblem('0123abcd', taken)).toContain(`the backup reads back with checksum 0123abcd, not the database's ${taken}`);
    expect(backupReadBackProblem('The backup set on file 1 is valid.', taken)).toContain('is not a checksum');
  });

  it('needs database.backup and database.checksum to compare with', () => {
    const { message, issues } = refusal((raw) => {
      raw.database.verifyBackup = { run: 'labhost db verify-backup {{backup}}', timeout: '1m' };
      delete raw.database.checksum;
    });
    expect(issues.map((issue) => issue.path)).toContainEqual(['database', 'verifyBackup']);
    expect(message).toContain('a backup is verified against the checksum taken before it');
  });
});
