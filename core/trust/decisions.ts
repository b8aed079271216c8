/** The decisions a person can sign and the gates they are taken at; shared by statements and the trust policy. */
import { z } from 'zod';

export const GATE_DECISIONS = ['approve', 'reject'] as const;
export const OPERATOR_DECISIONS = ['retry', 'skip', 'rollback'] as const;
export const DECISIONS = [...GATE_DECISIONS, ...OPERATOR_DECISIONS] as const;
export const Decision = z.enum(DECISIONS);
export type Decision = z.infer<typeof Decision>;

/** Operator decisions (retry, skip, rollback) are taken at this gate: each wait for an operator is an opening. */
export const GUIDED_FAILURE = 'guided-failure';

export function isOperatorDecision(decision: string): boolean {
  return (OPERATOR_DECISIONS as readonly string[]).includes(decision);
}

/** A plan gate (beforeOffline, beforeEachBatch, ...), `prerequisite:NAME`, or guided-failure. */
export const GateName = z
  .string()
  .regex(/^(?:[A-Za-z][A-Za-z0-9]{0,63}|prerequisite:[A-Za-z0-9][A-Za-z0-9._-]{0,99}|guided-failure)$/, 'a gate is a gate name, "prerequisite:NAME" or "guided-failure"');
