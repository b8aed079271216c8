/**
 * Who took a decision, proven: a signed token verified against the worker's trust policy (core/trust), or, where the
 * policy accepts it (the lab and the demo), the name a decision by name gives. Pure and deterministic: the workflow
 * runs it in update validators and signal handlers, with workflow time.
 */
import type { ApprovalInput, DecisionInput, OperatorInput } from './inputs';
import { type Decision as DecisionKind, type TrustPolicy, refuseUnsigned, verifyToken } from './trust';

/** What a signed decision must name: this run, and the plan it runs. */
export interface RunIdentity {
  workflowId: string;
  firstRunId: string;
  fleet: string;
  planDigest: string;
}

/**
 * The run's trust: the worker's policy and who the run is. Runs started before signed decisions have none, and
 * keep deciding by name as they did.
 */
export interface RunTrust {
  policy: TrustPolicy;
  run: RunIdentity;
  /** Nonces of the signed decisions the run accepted: a token is good once. */
  seenNonces: Set<string>;
}

export interface Decider {
  name: string;
  /** The fingerprint of the key that signed; absent for a decision by name. */
  key?: string;
  nonce?: string;
  comment?: string;
  /** The gate a decision by name says it means; a token always names its gate. */
  gate?: string;
  /** For a skip: the hosts. */
  hosts?: string[];
}

export type Authenticated = { ok: true; decider: Decider } | { ok: false; reason: string };

/** Where a decision is taken: the gate (or "guided-failure") and which opening of it. */
export interface DecisionPoint {
  gate: string;
  opening: number;
  decision: DecisionKind;
}

function byName(trust: RunTrust | undefined, decider: Decider): Authenticated {
  const refused = trust ? refuseUnsigned(trust.policy) : undefined;
  return refused ? { ok: false, reason: refused } : { ok: true, decider };
}

function signed(trust: RunTrust | undefined, token: string, point: DecisionPoint, now: number): Authenticated {
  if (!trust) return { ok: false, reason: 'this run started before signed decisions: decide by name' };
  const verified = verifyToken(token, trust.policy, { ...trust.run, ...point, now, seenNonces: trust.seenNonces });
  if (!verified.ok) return verified;
  const { statement } = verified;
  return {
    ok: true,
    decider: {
      name: verified.approver,
      key: verified.fingerprint,
      nonce: statement.nonce,
      gate: statement.gate,
      ...(statement.comment ? { comment: statement.comment } : {}),
      ...(statement.hosts ? { hosts: statement.hosts } : {}),
    },
  };
}

export function authenticateApproval(trust: RunTrust | undefined, input: DecisionInput<ApprovalInput>, point: DecisionPoint, now: number): Authenticated {
  if ('signed' in input) return signed(trust, input.signed.token, point, now);
  const { approver, comment, gate } = input.named;
  return byName(trust, { name: approver, ...(comment ? { comment } : {}), ...(gate ? { gate } : {}) });
}

export function authenticateOperator(trust: RunTrust | undefined, input: DecisionInput<OperatorInput>, point: DecisionPoint, now: number): Authenticated {
  if ('signed' in input) return signed(trust, input.signed.token, point, now);
  const { operator, comment, host, hosts } = input.named;
  const named = [...(host ? [host] : []), ...(hosts ?? [])];
  return byName(trust, { name: operator, ...(comment ? { comment } : {}), ...(named.length ? { hosts: [...new Set(named)] } : {}) });
}
