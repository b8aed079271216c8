/**
 * The upgrade plan: its schema and validator (schema.ts), the cross-field rules the validator runs (rules.ts), the
 * hosts' roles and steps (hosts.ts), the templates filled in for each host (render.ts) and the names a plan may not
 * choose, with the own-property lookup every plan-named key goes through (names.ts). Import from here.
 */
export { Duration, GATE_NAMES, NOTIFY_EVENTS, RetryPolicy, durationMs, failureLimit, planSchemas, validatePlan } from './schema';
export type {
  Command,
  DatabaseQuery,
  FleetTransport,
  Gate,
  GateName,
  Host,
  NotifyEventName,
  NotifyTarget,
  PlanResult,
  Probe,
  Role,
  StepCommand,
  Transport,
  UpgradePlan,
  VerifyCommand,
} from './schema';
export { DB_OWNER_ROLE, HOST_STEPS, applicationRole, databaseHost, dbOwner, hostCommand, hostTransport } from './hosts';
export type { HostStepName } from './hosts';
export { isReservedName, ownValue } from './names';
export { TEMPLATE_KEYS, describeProbe, probeTexts, renderCommand, renderProbe, renderStep } from './render';
export type { TemplateValues } from './render';
