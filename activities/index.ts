import type { HostTransport } from '../transport/transport';
import { createDatabaseActivities } from './database';
import { createHostStepActivities } from './hostSteps';

export function createActivities(deps: { transport: HostTransport }) {
  return { ...createHostStepActivities(deps), ...createDatabaseActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { BatchProgress, HostOutcome } from './hostSteps';
export type { DatabaseOutcome } from './database';
