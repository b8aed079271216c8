/** The I/O half of plan loading: read a YAML or JSON file, then hand the data to the pure validatePlan. */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { UserError } from '../core/errors';
import { type UpgradePlan, validatePlan } from '../core/plan';

export function parsePlanText(text: string, file: string): unknown {
  // YAML 1.2 is a superset of JSON, so one parser serves both and reports line and column for either.
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const problems = document.errors.map((error) => error.message.split('\n')[0]).join('; ');
    throw new UserError(`${file} is not valid YAML or JSON: ${problems}`);
  }
  return document.toJS();
}

export function readPlan(file: string): UpgradePlan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UserError(`Cannot read the plan ${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  const result = validatePlan(parsePlanText(text, file));
  if (!result.ok) throw new UserError(`${file} is not a valid upgrade plan (${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}):\n${result.message}`);
  return result.plan;
}
