/**
 * How a plan's gate settings meet the trust policy. A plan may ask for a stricter gate, never a looser one:
 *
 * - the approvers who may decide are those the policy allows (allowedApprovers) AND, when the plan lists
 *   approvers, those the plan lists: a plan narrows the set, it can never add a name the policy does not allow;
 * - the quorum is the plan's, at least 1.
 *
 * Quorum counts distinct people proven by distinct keys: two approvals with one key are one approval, and so are
 * two approvals by one approver with two keys (one person holding two keys is still one pair of eyes).
 */
import { type TrustPolicy, groupMembers } from './policy';

export interface EffectiveGate {
  approvers: string[];
  quorum: number;
  /** Set when the gate can never be approved: fewer allowed approvers than the quorum. */
  unreachable?: string;
}

/** A plan's approvers with each `group:NAME` replaced by the trust file's members of that group (none if unknown). */
export function expandApprovers(policy: TrustPolicy, approvers: readonly string[]): string[] {
  const names = approvers.flatMap((entry) => (entry.startsWith('group:') ? groupMembers(policy, entry.slice('group:'.length)) : [entry]));
  return [...new Set(names)];
}

export function effectiveGate(policyAllows: readonly string[], planGate: { approvers: readonly string[]; quorum: number }): EffectiveGate {
  const allowed = new Set(policyAllows);
  const approvers = planGate.approvers.length === 0 ? [...allowed] : [...new Set(planGate.approvers)].filter((name) => allowed.has(name));
  // Rounded up, never down: a malformed quorum must not make the gate looser.
  const quorum = Number.isFinite(planGate.quorum) ? Math.max(Math.ceil(planGate.quorum), 1) : 1;
  const gate: EffectiveGate = { approvers: approvers.sort(), quorum };
  if (approvers.length < quorum) {
    const who = approvers.length === 0 ? 'nobody is' : `only ${approvers.join(', ')} ${approvers.length === 1 ? 'is' : 'are'}`;
    gate.unreachable = `the gate needs ${quorum} approver${quorum === 1 ? '' : 's'}, but ${who} allowed by both the plan and the trust policy`;
  }
  return gate;
}

export interface CountedApproval {
  fingerprint: string;
  /** The key's owner as the trust policy names it (verifyToken's `approver`). */
  approver?: string;
}

/** Distinct keys, and distinct approvers among them when named: the smaller count is what the quorum sees. */
export function approvalCount(approvals: readonly CountedApproval[]): number {
  const keys = new Set(approvals.map((approval) => approval.fingerprint));
  const people = new Set(approvals.map((approval) => approval.approver ?? `key:${approval.fingerprint}`));
  return Math.min(keys.size, people.size);
}

export function quorumMet(approvals: readonly CountedApproval[], quorum: number): boolean {
  return approvalCount(approvals) >= Math.max(quorum, 1);
}
