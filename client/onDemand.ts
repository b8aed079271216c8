/**
 * Modules a command loads when it runs, not when `cutover` starts: `validate` and `plan` must not pay for the
 * Temporal client, its protobuf definitions and gRPC (about 0.25 s of a start), nor `status` for log-update or the
 * report's renderers. Each is required on first use and cached by Node as usual.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export const onDemand = {
  temporalClient: () => require('@temporalio/client') as typeof import('@temporalio/client'),
  connection: () => require('./connection') as typeof import('./connection'),
  runs: () => require('./runs') as typeof import('./runs'),
  signing: () => require('./signing') as typeof import('./signing'),
  watch: () => require('./watch') as typeof import('./watch'),
  report: () => require('./report') as typeof import('./report'),
  codec: () => require('../codec/codec') as typeof import('../codec/codec'),
  planner: () => require('../core/planner') as typeof import('../core/planner'),
  preview: () => require('../core/preview') as typeof import('../core/preview'),
};
/* eslint-enable @typescript-eslint/no-require-imports */
