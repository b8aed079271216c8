/**
 * The plan normalized once, at the start of a run: validated, with every default filled in, by the worker's code of
 * that day. The result is in the run's history (a local activity's marker), so a later release that changes a
 * default, or a zod upgrade, does not change what an open run replays.
 */
import { validatePlan } from '../core/plan';
import type { UpgradePlan } from '../core/plan';

export type NormalizedPlan = { ok: true; plan: UpgradePlan } | { ok: false; message: string };

export function createPlanActivities() {
  return {
    async normalizePlan(input: unknown, options: { uncapped: boolean }): Promise<NormalizedPlan> {
      try {
        const result = validatePlan(input, options);
        // The issues stay out: the message names each with its path, and the history keeps only what the run uses.
        return result.ok ? { ok: true, plan: result.plan } : { ok: false, message: result.message };
      } catch (error) {
        return { ok: false, message: `The upgrade plan could not be read: ${error instanceof Error ? error.message : String(error)}` };
      }
    },
  };
}
