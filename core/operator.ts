/** Guided failure, pure: what the operator may do about a failed step, and why a request is refused. */
import { DB_OWNER_ROLE, type Gate, type UpgradePlan, applicationRole, hostCommand, ownValue } from './plan';
import { isCommandFailure } from './outcomes';
import type { StepName } from './planner';
import type { AwaitingOperator, OperatorAction, OperatorInput } from './status';

const NEVER_SKIPPED: StepName[] = ['drain', 'stop', 'rollback-drain', 'rollback-stop'];

/** Hosts the operator may skip: never the DB owner, only roles that allow it, never a required verify. */
export function skippableHosts(plan: UpgradePlan, step: StepName | undefined, failedHosts: string[]): string[] {
  // A database task cannot be skipped; a server that was not drained and stopped would still be using the shared
  // database during the schema upgrade or the restore, which the procedures forbid.
  if (step === undefined || NEVER_SKIPPED.includes(step)) return [];
  return failedHosts.filter((id) => {
    const host = plan.hosts.find((h) => h.id === id);
    if (!host || host.roles.includes(DB_OWNER_ROLE)) return false;
    if (!ownValue(plan.roles, applicationRole(host))?.allowSkip) return false;
    if (step === 'verify' || step === 'rollback-verify') return hostCommand(plan, host, 'verify')?.required === false;
    return true;
  });
}

/** The gate that records the operator's word that hosts which failed preflight are offline or decommissioned. */
export const OFFLINE_GATE = 'offline-confirmation';

/**
 * Hosts that failed preflight may be left out only as the skip rules allow, and only once someone confirms each is
 * offline or decommissioned: a host never drained or stopped could still be using the shared database while its
 * schema changes, which the procedures forbid. The confirmation gate for `failed`, or undefined when one of them can
 * never be skipped (the run then fails as before).
 */
export function offlineConfirmation(plan: UpgradePlan, failed: { host: string; error: string; outputTail: string }[]): Gate | undefined {
  const hosts = failed.map((f) => f.host);
  if (!failed.every(mayBeOffline)) return undefined;
  if (hosts.length === 0 || skippableHosts(plan, 'version', hosts).length !== hosts.length) return undefined;
  const named = failed.slice(0, 10).map((f) => `${f.host} (${f.error})`).join('; ');
  return {
    instructions:
      `Preflight failed on ${hosts.length} host(s): ${named}${hosts.length > 10 ? '; …' : ''}. They would never be drained, stopped or upgraded, ` +
      `yet the schema upgrade needs every server sharing ${plan.database.name} offline. Approve only to confirm each is offline or decommissioned: ` +
      'the run then goes on without them. Reject to end the run with nothing changed.',
    approvers: [],
    quorum: 1,
  };
}

/** Why an operator's decision is refused while no failure waits: at preflight, a skip is the offline confirmation. */
export function notWaitingReason(pendingGate: string | undefined): string {
  if (pendingGate !== OFFLINE_GATE) return 'the run is not waiting for an operator';
  return `the run is not waiting for an operator: a host that failed preflight is left out by approving gate ${OFFLINE_GATE}, the confirmation that it is offline or decommissioned (a server left running while the schema changes is what the procedures forbid)`;
}

/**
 * Whether a host's preflight failure is one an offline host shows: its command failed, or it could not be reached. Not
 * a version off the upgrade path (the host runs: the seed has it upgraded or uninstalled first), nor a failure no
 * retry fixes (a rejected host key, a missing secret: the plan or the worker is wrong, not the host offline).
 */
function mayBeOffline(failure: { error: string; outputTail: string }): boolean {
  if (!isCommandFailure('version', failure.error)) return false;
  return !failure.error.includes('(exit -1)') || failure.outputTail.includes('cannot reach ');
}

/** The hosts a skip names: `host`, `hosts`, or both, each once. */
export function hostsToSkip(input: OperatorInput): string[] {
  const named = [...(input.host ? [input.host] : []), ...(Array.isArray(input.hosts) ? input.hosts : [])];
  return [...new Set(named)];
}

export function refuseOperatorAction(awaiting: AwaitingOperator | undefined, action: OperatorAction, input: OperatorInput): string | undefined {
  if (typeof input?.operator !== 'string' || input.operator.trim() === '') return 'an operator name is required';
  if (!awaiting) return notWaitingReason(undefined);
  if (action === 'skip') {
    if (input.hosts !== undefined && (!Array.isArray(input.hosts) || input.hosts.some((host) => typeof host !== 'string'))) return '"hosts" must be a list of host ids';
    const hosts = hostsToSkip(input);
    if (hosts.length === 0) return `name the host to skip (failed: ${awaiting.hosts.map((h) => h.host).join(', ') || 'none'})`;
    const notFailed = hosts.filter((host) => !awaiting.hosts.some((h) => h.host === host));
    if (notFailed.length > 0) return `${notFailed.join(', ')} ${notFailed.length === 1 ? 'is not a failed host' : 'are not failed hosts'} of this step`;
    const unskippable = hosts.filter((host) => !awaiting.skippable.includes(host));
    if (unskippable.length > 0) {
      return `${unskippable.join(', ')} cannot be skipped: the DB-owning host, required verify steps and roles without allowSkip never can`;
    }
  }
  return undefined;
}
