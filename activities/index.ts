import { createDatabaseActivities } from './database';
import { type HostStepDeps, createHostStepActivities } from './hostSteps';

export function createActivities(deps: HostStepDeps) {
  return { ...createHostStepActivities(deps), ...createDatabaseActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { BatchProgress, HostOutcome } from './hostSteps';
export type { DatabaseOutcome } from './database';
