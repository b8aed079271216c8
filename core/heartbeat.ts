/**
 * How soon a lost worker is noticed. Activities heartbeat; the server gives an attempt up once no heartbeat came for
 * the heartbeat timeout, and schedules the retry on another worker. The activities call heartbeat() every
 * HEARTBEAT_EVERY_MS (and a batch after every host); the SDK's core, not the JS event loop, sends them, at most one per
 * maxHeartbeatThrottleInterval (1 s, worker/worker.ts), with the latest details. So a live worker's heartbeat reaches
 * the server about once a second, and the timeout lets four in a row be late before it gives a live worker up: what
 * `npm run bench -- --kill --contend 2` checks on a loaded machine (docs/benchmarks.md).
 */
export const HEARTBEAT_TIMEOUT_MS = 5_000;

/** What runs started before the short timeout (workflows/versions.ts `shortHeartbeat`) scheduled, and still do. */
export const LEGACY_HEARTBEAT_TIMEOUT_MS = 20_000;

/** How often an activity calls heartbeat() when nothing else makes it: a fifth of the timeout. */
export const HEARTBEAT_EVERY_MS = 1_000;

export function heartbeatTimeoutMs(versions: { shortHeartbeat: boolean }): number {
  return versions.shortHeartbeat ? HEARTBEAT_TIMEOUT_MS : LEGACY_HEARTBEAT_TIMEOUT_MS;
}
