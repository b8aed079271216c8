/**
 * Signed decisions. Every approve or reject at a gate and every retry, skip or rollback at a failure may come as a
 * token: a DecisionStatement, signed with the approver's ed25519 key, bound to one run (workflow id and first run
 * id), one opening of one gate, one decision and one plan (its digest), valid until it expires.
 *
 * Token: `cutover1.<base64url(canonical JSON of the statement)>.<base64url(64-byte ed25519 signature)>`. The
 * signature covers DECISION_CONTEXT followed by the exact payload bytes; verification checks those bytes and
 * never a re-serialization, and refuses a payload that is not in canonical form, so one statement has exactly
 * one signed spelling. verifyToken is pure, synchronous and deterministic (time comes in as `now`): the workflow
 * runs it itself.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { z } from 'zod';
import { canonicalJson } from './canonical';
import { Decision, GateName, GUIDED_FAILURE, isOperatorDecision } from './decisions';
import { DIGEST } from './digest';
import { base64, base64url, concatBytes, oneLine, utf8Bytes, utf8Text } from './encoding';
import { ApproverName, Fingerprint, parsePrivateKey } from './keys';
import { mayDecide, trustedKey, type TrustPolicy } from './policy';

export const TOKEN_PREFIX = 'cutover1';
/** Domain separation: a signature over a decision can never pass for one over a plan, or anything else. */
export const DECISION_CONTEXT = 'cutover decision statement v1\n';
/** Room for a skip naming a thousand hosts; anything longer is refused before it is decoded. */
export const MAX_TOKEN_LENGTH = 65_536;
const SIGNATURE_BYTES = 64;

const HostId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'not a host id');
const IsoTime = z.iso.datetime().refine((text) => Number.isFinite(Date.parse(text)), 'not a valid time');

export const DecisionStatement = z
  .strictObject({
    v: z.literal(1),
    workflowId: z.string().min(1).max(1000),
    firstRunId: z.string().min(1).max(128),
    gate: GateName,
    /** Which opening of the gate in this run, from 1: a token decides one opening and no later one. */
    opening: z.int().min(1).max(1_000_000),
    decision: Decision,
    /** skip only: the failed hosts it decides for. */
    hosts: z.array(HostId).min(1).max(1000).optional(),
    comment: z.string().max(1000).optional(),
    planDigest: z.string().regex(DIGEST, 'a plan digest is "sha256:" and 64 lowercase hex digits'),
    expiresAt: IsoTime,
    /** Random, from the signer: the workflow remembers the nonces it accepted and refuses a second use. */
    nonce: z.string().regex(/^[A-Za-z0-9_-]{16,128}$/, 'a nonce is 16 to 128 base64url characters'),
    signer: ApproverName,
    key: Fingerprint,
  })
  .superRefine((statement, ctx) => {
    if (statement.hosts && statement.decision !== 'skip') ctx.addIssue({ code: 'custom', path: ['hosts'], message: 'only a skip names hosts' });
    if (isOperatorDecision(statement.decision) !== (statement.gate === GUIDED_FAILURE)) {
      ctx.addIssue({ code: 'custom', path: ['gate'], message: `${statement.decision} is decided ${isOperatorDecision(statement.decision) ? `at ${GUIDED_FAILURE}` : 'at a gate, not at guided-failure'}` });
    }
  }, { when: (payload) => payload.issues.length === 0 });
export type DecisionStatement = z.infer<typeof DecisionStatement>;

/** What the signer writes; v, signer and key come from the private key (when given they must agree with it). */
export type UnsignedStatement = Omit<DecisionStatement, 'v' | 'signer' | 'key'> & Partial<Pick<DecisionStatement, 'v' | 'signer' | 'key'>>;

/** At least 16 random bytes from the caller, as base64url. */
export function newNonce(randomBytes: Uint8Array): string {
  if (randomBytes.length < 16 || randomBytes.length > 96) throw new Error('a nonce needs 16 to 96 random bytes');
  return base64url.encode(randomBytes);
}

/** Client side: throws with a readable message when the key or the statement is not valid. */
export function signStatement(statement: UnsignedStatement, privateKey: string): string {
  const key = parsePrivateKey(privateKey);
  if (!key.ok) throw new Error(key.reason);
  if (statement.signer !== undefined && statement.signer !== key.name) throw new Error(`the statement names signer ${statement.signer}, but the key belongs to ${key.name}`);
  if (statement.key !== undefined && statement.key !== key.fingerprint) throw new Error(`the statement names key ${statement.key}, but the private key is ${key.fingerprint}`);
  const parsed = DecisionStatement.safeParse({ ...statement, v: 1, signer: key.name, key: key.fingerprint });
  if (!parsed.success) throw new Error(`the statement is not valid:\n${z.prettifyError(parsed.error)}`);
  const payload = utf8Bytes(canonicalJson(parsed.data));
  const signature = ed25519.sign(signedMessage(payload), key.seed);
  return `${TOKEN_PREFIX}.${base64url.encode(payload)}.${base64url.encode(signature)}`;
}

function signedMessage(payload: Uint8Array): Uint8Array {
  return concatBytes(utf8Bytes(DECISION_CONTEXT), payload);
}

export type Refusal = { ok: false; reason: string };
export type ReadToken = { ok: true; statement: DecisionStatement; signature: Uint8Array; payload: Uint8Array } | Refusal;

const TOKEN_SHAPE = /^cutover1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;
const NOT_A_TOKEN = `not a Cutover decision token (expected "${TOKEN_PREFIX}.<statement>.<signature>")`;

/** The statement a token carries, NOT verified: for showing what a token says, and the first step of verifyToken. */
export function readToken(token: unknown): ReadToken {
  if (typeof token !== 'string') return refuse(`the token is ${kindOf(token)}, not text: ${NOT_A_TOKEN}`);
  if (token.length > MAX_TOKEN_LENGTH) return refuse(`the token is longer than ${MAX_TOKEN_LENGTH} characters`);
  const match = TOKEN_SHAPE.exec(token.trim());
  if (!match) return refuse(NOT_A_TOKEN);
  const payload = base64url.decode(match[1] ?? '');
  const signature = base64url.decode(match[2] ?? '');
  if (!payload) return refuse("the token's statement is not canonical base64url");
  if (!signature || signature.length !== SIGNATURE_BYTES) return refuse(`the token's signature is not ${SIGNATURE_BYTES} bytes of canonical base64url`);
  const statement = parseStatement(payload);
  return statement.ok ? { ok: true, statement: statement.statement, signature, payload } : statement;
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function parseStatement(payload: Uint8Array): { ok: true; statement: DecisionStatement } | Refusal {
  const text = utf8Text(payload);
  if (text === undefined) return refuse("the token's statement is not UTF-8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return refuse("the token's statement is not JSON");
  }
  const parsed = DecisionStatement.safeParse(json);
  if (!parsed.success) return refuse(`the token's statement is not valid: ${firstIssue(parsed.error)}`);
  // Duplicate keys, whitespace or other number spellings would let two readers see different statements.
  if (canonicalJson(json) !== text) return refuse("the token's statement is not in canonical JSON form");
  return { ok: true, statement: parsed.data };
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue?.path.map(String).join('.') ?? '';
  return oneLine(`${path ? `${path}: ` : ''}${issue?.message ?? 'invalid'}`);
}

function refuse(reason: string): Refusal {
  return { ok: false, reason };
}

/** What the workflow knows at the moment a decision arrives; the token must agree with all of it. */
export interface ExpectedDecision {
  workflowId: string;
  firstRunId: string;
  gate: string;
  opening: number;
  decision: Decision;
  planDigest: string;
  /** The plan's fleet, for the trust policy's rules. */
  fleet: string;
  /** Workflow time in ms since the epoch (workflow Date.now()). */
  now: number;
  /** Nonces of the decisions this run already accepted. */
  seenNonces?: ReadonlySet<string>;
}

export type VerifiedDecision = { ok: true; statement: DecisionStatement; approver: string; fingerprint: string };

/** Never throws: whatever comes in a signal, the answer is accepted or refused with a one-line reason. */
export function verifyToken(token: unknown, trust: TrustPolicy, expected: ExpectedDecision): VerifiedDecision | Refusal {
  try {
    return verify(token, trust, expected);
  } catch (error) {
    return refuse(oneLine(`the token could not be checked: ${error instanceof Error ? error.message : String(error)}`));
  }
}

function verify(token: unknown, trust: TrustPolicy, expected: ExpectedDecision): VerifiedDecision | Refusal {
  const read = readToken(token);
  if (!read.ok) return read;
  const { statement } = read;
  const key = trustedKey(trust, statement.key);
  if (!key.ok) return key;
  if (!signatureValid(read.signature, read.payload, key.publicKey)) return refuse('bad signature');
  if (statement.signer !== key.approver) return refuse(`the token names signer ${statement.signer}, but key ${key.fingerprint} belongs to ${key.approver}`);
  const reason =
    mismatch(statement, expected) ??
    expired(statement, expected.now) ??
    replayed(statement, expected.seenNonces) ??
    mayDecide(trust, { fleet: expected.fleet, gate: statement.gate, action: statement.decision, approver: key.approver });
  return reason === undefined ? { ok: true, statement, approver: key.approver, fingerprint: key.fingerprint } : refuse(oneLine(reason, 400));
}

function signatureValid(signature: Uint8Array, payload: Uint8Array, publicKey: string): boolean {
  const keyBytes = base64.decode(publicKey);
  if (!keyBytes) return false;
  // zip215: false is strict RFC 8032 / FIPS 186-5 verification: canonical encodings only, no small-order keys.
  return ed25519.verify(signature, signedMessage(payload), keyBytes, { zip215: false });
}

/** The order runs from the broadest binding to the narrowest, so the reason names the first thing that is off. */
function mismatch(statement: DecisionStatement, expected: ExpectedDecision): string | undefined {
  if (statement.workflowId !== expected.workflowId) return `the token was made for workflow ${statement.workflowId}, not ${expected.workflowId}`;
  if (statement.firstRunId !== expected.firstRunId) return `the token was made for run ${statement.firstRunId}, not this run (${expected.firstRunId})`;
  if (statement.planDigest !== expected.planDigest) return `the token was made for plan ${statement.planDigest}, not this run's plan ${expected.planDigest}`;
  if (statement.gate !== expected.gate) return `the token was made for gate ${statement.gate}, not ${expected.gate}`;
  if (statement.opening !== expected.opening) {
    return `the token was made for opening ${statement.opening} of gate ${statement.gate}, not opening ${expected.opening} (each opening needs a new decision)`;
  }
  if (statement.decision !== expected.decision) return `the token says ${statement.decision}, not ${expected.decision}`;
  return undefined;
}

function expired(statement: DecisionStatement, now: number): string | undefined {
  if (!Number.isFinite(now)) return 'the workflow has no valid time to check the token against';
  if (Date.parse(statement.expiresAt) <= now) return `the token expired at ${statement.expiresAt} (workflow time ${new Date(now).toISOString()})`;
  return undefined;
}

function replayed(statement: DecisionStatement, seenNonces: ReadonlySet<string> | undefined): string | undefined {
  return seenNonces?.has(statement.nonce) ? `the token was already used (nonce ${statement.nonce})` : undefined;
}
