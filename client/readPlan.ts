/** The I/O half of plan loading: read a YAML or JSON file, then hand the data to the pure validatePlan. */
import { UserError } from '../core/errors';
import { type UpgradePlan, validatePlan } from '../core/plan';
import { parseYamlText } from '../core/yamlText';
import { readUserFile } from './files';

/** Pure: a plan file's text as a validated plan, or a UserError naming the file and every problem with its path. */
export function planFromText(text: string, file: string): UpgradePlan {
  const result = validatePlan(parseYamlText(text, file));
  if (!result.ok) throw new UserError(`${file} is not a valid upgrade plan (${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}):\n${result.message}`);
  return result.plan;
}

export function readPlan(file: string): UpgradePlan {
  return planFromText(readUserFile(file, 'the plan'), file);
}
