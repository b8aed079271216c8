/**
 * The payloads of the run's signals and updates, parsed, never trusted: anyone who can reach the Temporal server can
 * send any JSON to a run (the Web UI's "Send a Signal" takes free text). A payload that does not fit is refused with
 * the field and the reason; it never reaches the run's state, and nothing in parsing can throw. Pure.
 */
import { z } from 'zod';

/** Names as people type them; long enough for "First Last (team)", short enough for a status line. */
const Name = z.string().trim().min(1, 'must not be empty').max(128, 'at most 128 characters');
const Comment = z.string().max(2000, 'at most 2,000 characters');
/** A gate of the plan, or "prerequisite:NAME". */
const GateRef = z.string().max(200, 'at most 200 characters');
const HostId = z.string().min(1).max(255, 'at most 255 characters');

export const ApprovalInput = z.strictObject({
  approver: Name,
  comment: Comment.optional(),
  /** The gate the sender means: refused when another one is pending, so a late approval never decides the next gate. */
  gate: GateRef.optional(),
});
export type ApprovalInput = z.infer<typeof ApprovalInput>;

export const OperatorInput = z.strictObject({
  operator: Name,
  /** The failed host to skip (skip only); `hosts` names several at once. */
  host: HostId.optional(),
  hosts: z.array(HostId).max(10_000, 'at most 10,000 hosts').optional(),
  comment: Comment.optional(),
});
export type OperatorInput = z.infer<typeof OperatorInput>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** One line naming every field that does not fit, for a log line or an update's refusal. */
function reasonOf(message: string, error: z.ZodError): string {
  const fields = error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : 'the input'}: ${issue.message}`);
  return `${message} refused: ${fields.join('; ')}`;
}

/** Parses a message payload; `message` names it in the reason ("approve signal", "retryStep update"). */
export function parseInput<T>(schema: z.ZodType<T>, raw: unknown, message: string): Parsed<T> {
  const result = schema.safeParse(raw);
  return result.success ? { ok: true, value: result.data } : { ok: false, reason: reasonOf(message, result.error) };
}
