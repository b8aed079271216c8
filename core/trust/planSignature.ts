/**
 * A plan's signature: its author's key over the plan's digest and fleet, so a worker whose policy requires it runs
 * only plans that one of the fleet's authors signed, and the run's history shows who. A workflow started with a
 * signed plan gets the envelope `{plan, signature}` that `cutover sign` prints and `cutover start --key` sends.
 *
 * Signature: `cutover-plan1.<base64url(canonical JSON of the statement)>.<base64url(ed25519 signature)>`, the
 * signature over PLAN_CONTEXT and the payload bytes (so it never passes for a decision's). Pure, never throws.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { z } from 'zod';
import { canonicalJson } from './canonical';
import { DIGEST } from './digest';
import { base64, base64url, concatBytes, oneLine, utf8Bytes, utf8Text } from './encoding';
import { ApproverName, Fingerprint, parsePrivateKey } from './keys';
import { type TrustPolicy, planAuthorAllowed, trustedKey } from './policy';

export const PLAN_CONTEXT = 'cutover plan statement v1\n';
const SIGNATURE_SHAPE = /^cutover-plan1\.([A-Za-z0-9_-]{1,8000})\.([A-Za-z0-9_-]{86})$/;

export const PlanStatement = z.strictObject({
  v: z.literal(1),
  fleet: z.string().min(1).max(128),
  planDigest: z.string().regex(DIGEST),
  signedAt: z.iso.datetime(),
  signer: ApproverName,
  key: Fingerprint,
});
export type PlanStatement = z.infer<typeof PlanStatement>;

/** The envelope a signed plan travels in, as a workflow's input. */
export const SignedPlan = z.strictObject({ plan: z.unknown(), signature: z.string().max(10_000) });
export type SignedPlan = z.infer<typeof SignedPlan>;

function message(payload: Uint8Array): Uint8Array {
  return concatBytes(utf8Bytes(PLAN_CONTEXT), payload);
}

/** Client side: throws with a readable message when the key is not valid. */
export function signPlan(fleet: string, planDigest: string, privateKey: string, signedAt: string): string {
  const key = parsePrivateKey(privateKey);
  if (!key.ok) throw new Error(key.reason);
  const statement = PlanStatement.parse({ v: 1, fleet, planDigest, signedAt, signer: key.name, key: key.fingerprint });
  const payload = utf8Bytes(canonicalJson(statement));
  return `cutover-plan1.${base64url.encode(payload)}.${base64url.encode(ed25519.sign(message(payload), key.seed))}`;
}

function readSignature(signature: unknown): { ok: true; statement: PlanStatement; payload: Uint8Array; bytes: Uint8Array } | { ok: false; reason: string } {
  const match = typeof signature === 'string' ? SIGNATURE_SHAPE.exec(signature) : null;
  const payload = match ? base64url.decode(match[1] ?? '') : undefined;
  const bytes = match ? base64url.decode(match[2] ?? '') : undefined;
  const text = payload ? utf8Text(payload) : undefined;
  if (!payload || !bytes || text === undefined) return { ok: false, reason: 'not a Cutover plan signature (expected "cutover-plan1.<statement>.<signature>")' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: "the plan signature's statement is not JSON" };
  }
  const parsed = PlanStatement.safeParse(json);
  if (!parsed.success || canonicalJson(json) !== text) return { ok: false, reason: "the plan signature's statement is not valid" };
  return { ok: true, statement: parsed.data, payload, bytes };
}

/** Who signed the plan, if the policy trusts their key and lets them author plans for this fleet. */
export function verifyPlanSignature(
  signature: unknown,
  policy: TrustPolicy,
  expected: { fleet: string; planDigest: string },
): { ok: true; author: string; fingerprint: string } | { ok: false; reason: string } {
  try {
    const read = readSignature(signature);
    if (!read.ok) return read;
    const key = trustedKey(policy, read.statement.key);
    if (!key.ok) return key;
    const publicKey = base64.decode(key.publicKey);
    if (!publicKey || !ed25519.verify(read.bytes, message(read.payload), publicKey, { zip215: false })) return { ok: false, reason: 'bad plan signature' };
    if (read.statement.signer !== key.approver) return { ok: false, reason: `the signature names ${read.statement.signer}, but key ${key.fingerprint} belongs to ${key.approver}` };
    if (read.statement.planDigest !== expected.planDigest) return { ok: false, reason: `the signature is for plan ${read.statement.planDigest}, not this plan (${expected.planDigest})` };
    if (read.statement.fleet !== expected.fleet) return { ok: false, reason: `the signature is for fleet ${read.statement.fleet}, not ${expected.fleet}` };
    if (!planAuthorAllowed(policy, expected.fleet, key.approver)) return { ok: false, reason: `${key.approver} may not author plans for fleet ${expected.fleet}` };
    return { ok: true, author: key.approver, fingerprint: key.fingerprint };
  } catch (error) {
    return { ok: false, reason: oneLine(`the plan signature could not be checked: ${error instanceof Error ? error.message : String(error)}`) };
  }
}

/** A run's input: the plan, or the signed envelope `{plan, signature}`; the plan digest is the inner plan's. */
export function planOfInput(input: unknown): { plan: unknown; signature?: string } {
  const envelope = SignedPlan.safeParse(input);
  return envelope.success ? envelope.data : { plan: input };
}
