/** Files a person names on the command line. */
import { readFileSync } from 'node:fs';
import { UserError } from '../core/errors';

/** The file's text, or a UserError that says which file (`what`) could not be read and why, with `hint` when missing. */
export function readUserFile(file: string, what: string, hint = ''): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UserError(`Cannot read ${what} ${file}: ${missing ? `no such file${hint}` : (error as Error).message}`);
  }
}
