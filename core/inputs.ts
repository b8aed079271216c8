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

/**
 * A decision signed with the decider's key (core/trust): the token names the run, the gate and its opening, the
 * decision, the plan, and for a skip the hosts. It is the whole payload, so nothing beside it can disagree with it.
 */
export const SignedInput = z.strictObject({ token: z.string().min(1).max(70_000, 'at most 70,000 characters') });
export type SignedInput = z.infer<typeof SignedInput>;

/** A decision as it came: signed, or by name alone (accepted only where the worker's trust policy says so). */
export type DecisionInput<Named> = { signed: SignedInput } | { named: Named };

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * How runs started before strict parsing (and signed decisions) read a payload: unknown keys ignored, no length caps,
 * a falsy `gate` or `host` meaning none. What they accepted they still accept, so their histories replay; what they
 * refused (a name that is not text, a gate or host that is not a name) is still refused, now never by throwing.
 */
const NOT_A_NAME = '(not a name)';
const LooseName = z.string().trim().min(1, 'must not be empty');
const looseName = (value: unknown): string | undefined => (!value ? undefined : typeof value === 'string' ? value : NOT_A_NAME);
const looseComment = (value: unknown): string | undefined => (typeof value === 'string' && value ? value : undefined);

export const LegacyApprovalInput = z
  .looseObject({ approver: LooseName, comment: z.unknown().optional(), gate: z.unknown().optional() })
  .transform(({ approver, comment, gate }): ApprovalInput => ({ approver, ...optional('comment', looseComment(comment)), ...optional('gate', looseName(gate)) }));

export const LegacyOperatorInput = z
  .looseObject({ operator: LooseName, host: z.unknown().optional(), hosts: z.unknown().optional(), comment: z.unknown().optional() })
  .transform(({ operator, host, hosts, comment }): OperatorInput => ({
    operator,
    ...optional('host', looseName(host)),
    ...optional('hosts', hosts === undefined ? undefined : Array.isArray(hosts) && hosts.every((h) => typeof h === 'string') ? hosts : [NOT_A_NAME]),
    ...optional('comment', looseComment(comment)),
  }));

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** One line naming every field that does not fit, for a log line or an update's refusal. */
function reasonOf(message: string, error: z.ZodError): string {
  const fields = error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : 'the input'}: ${issue.message}`);
  return `${message} refused: ${fields.join('; ')}`;
}

/** Parses a message payload; `message` names it in the reason ("approve signal", "retryStep update"). */
export function parseInput<T>(schema: z.ZodType<T, unknown>, raw: unknown, message: string): Parsed<T> {
  const result = schema.safeParse(raw);
  return result.success ? { ok: true, value: result.data } : { ok: false, reason: reasonOf(message, result.error) };
}

/**
 * A payload with a `token` is a signed decision and is parsed as one; any other as a decision by name. Runs from
 * before signed decisions (`legacy`) read every payload as a decision by name, leniently, as they always did.
 */
export function parseDecisionInput<Named>(named: z.ZodType<Named>, raw: unknown, message: string, legacy?: z.ZodType<Named, unknown>): Parsed<DecisionInput<Named>> {
  if (legacy) {
    const parsed = parseInput(legacy, raw, message);
    return parsed.ok ? { ok: true, value: { named: parsed.value } } : parsed;
  }
  if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, 'token')) {
    const parsed = parseInput(SignedInput, raw, `${message} (signed)`);
    return parsed.ok ? { ok: true, value: { signed: parsed.value } } : parsed;
  }
  const parsed = parseInput(named, raw, message);
  return parsed.ok ? { ok: true, value: { named: parsed.value } } : parsed;
}
