import { ApplicationFailure } from '@temporalio/workflow';

/**
 * Validation and planning refuse bad plans with a reason and should never throw; if they ever do, the run fails as
 * an invalid plan, at once, instead of failing its workflow task again and again.
 */
export function invalidIfThrows<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof ApplicationFailure) throw error;
    throw ApplicationFailure.nonRetryable(`The upgrade plan could not be read: ${error instanceof Error ? error.message : String(error)}`, 'InvalidPlan');
  }
}
