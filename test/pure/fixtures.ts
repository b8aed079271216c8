/** The example plan as raw data (what the YAML parser hands to validatePlan), plus helpers to derive variants. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { type UpgradePlan, validatePlan } from '../../core/plan';

const EXAMPLE_TEXT = readFileSync(join(__dirname, '..', '..', 'examples', 'appv-lab.yaml'), 'utf8');

/** Loosely typed on purpose: tests break it in ways the schema's type would not allow. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RawPlan = any;

/** A fresh, unvalidated copy of examples/appv-lab.yaml on every call, so tests cannot leak mutations into each other. */
export function rawExample(): RawPlan {
  return parse(EXAMPLE_TEXT) as RawPlan;
}

/** The example after `mutate`, validated; throws when the result is not a valid plan. */
export function validExample(mutate: (raw: RawPlan) => void = () => {}): UpgradePlan {
  const raw = rawExample();
  mutate(raw);
  const result = validatePlan(raw);
  if (!result.ok) throw new Error(`expected a valid plan, got:\n${result.message}`);
  return result.plan;
}

/** The example with `count` hosts named h1..h<count>, h1 owning the database. */
export function fleetOf(count: number, mutate: (raw: RawPlan) => void = () => {}): UpgradePlan {
  return validExample((raw) => {
    raw.hosts = Array.from({ length: count }, (_, i) => ({
      id: `h${i + 1}`,
      roles: i === 0 ? ['management-server', 'db-owner'] : ['management-server'],
    }));
    mutate(raw);
  });
}

/** Validates the example after `mutate` and returns the refusal; fails the test when the plan is accepted. */
export function refusal(mutate: (raw: RawPlan) => void) {
  const raw = rawExample();
  mutate(raw);
  const result = validatePlan(raw);
  if (result.ok) throw new Error('expected validatePlan to refuse the plan');
  return result;
}
