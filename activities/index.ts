import { createDatabaseActivities } from './database';
import { type HostStepDeps, createHostStepActivities } from './hostSteps';
import { createNotifyActivities } from './notify';
import { createPlanActivities } from './plan';
import { type TrustDeps, createTrustActivities } from './trust';

export function createActivities(deps: HostStepDeps & TrustDeps) {
  return {
    ...createHostStepActivities(deps),
    ...createDatabaseActivities(deps),
    ...createTrustActivities(deps),
    ...createNotifyActivities(),
    ...createPlanActivities(),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { BatchProgress, HostOutcome } from './hostSteps';
export type { DatabaseOutcome } from './database';
export type { NotifyRequest } from './notify';
export type { NormalizedPlan } from './plan';
export type { TrustSource } from './trust';
