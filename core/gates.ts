/** Gate rules, pure: whether a decision is accepted, and whether the gate is now decided. */
import type { Gate } from './plan';
import type { ApprovalInput, PendingGate } from './status';

export function openGate(name: string, gate: Gate, expiresAt?: string): PendingGate {
  return {
    gate: name,
    instructions: gate.instructions,
    approvers: gate.approvers,
    quorum: gate.quorum,
    approvedBy: [],
    ...(expiresAt ? { expiresAt } : {}),
  };
}

/** Names are compared trimmed, so "alice" and "alice " are one approver. */
export function normalizeDecision(input: ApprovalInput): ApprovalInput {
  return { ...input, approver: typeof input?.approver === 'string' ? input.approver.trim() : input?.approver };
}

/** Why a decision is refused, or undefined when it is accepted. Refusals change nothing. */
export function refuseDecision(pending: PendingGate | undefined, raw: ApprovalInput, kind: 'approve' | 'reject'): string | undefined {
  const input = normalizeDecision(raw);
  if (typeof input?.approver !== 'string' || input.approver.trim() === '') return 'an approver name is required';
  if (!pending) return input.gate ? `gate ${input.gate} is not pending` : 'no gate is pending';
  if (input.gate && input.gate !== pending.gate) return `gate ${input.gate} is not pending (the pending gate is ${pending.gate})`;
  // Nobody both the plan and the trust policy allow: an empty list here means nobody, not anyone.
  if (kind === 'approve' && pending.unreachable) return `gate ${pending.gate} cannot be approved: ${pending.unreachable}`;
  if (pending.approvers.length > 0 && !pending.approvers.includes(input.approver)) {
    return `${input.approver} may not decide gate ${pending.gate}; allowed: ${pending.approvers.join(', ')}`;
  }
  if (kind === 'approve' && pending.approvedBy.includes(input.approver)) {
    return `${input.approver} has already approved gate ${pending.gate}`;
  }
  return undefined;
}

export function quorumReached(pending: PendingGate): boolean {
  return pending.approvedBy.length >= pending.quorum;
}
