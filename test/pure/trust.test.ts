/** Signed decisions and the trust policy: keys, tokens, verification, the trust file, quorum and digests. */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519';
import { describe, expect, it } from 'vitest';
import {
  allowedApprovers,
  canonicalJson,
  DECISION_CONTEXT,
  effectiveGate,
  expandApprovers,
  fingerprint,
  mayDecide,
  newKeyPair,
  newNonce,
  parsePrivateKey,
  parsePublicKeyLine,
  parseTrustFile,
  patternMatches,
  planAuthorAllowed,
  planDigest,
  policyDigest,
  quorumMet,
  readToken,
  refuseUnsigned,
  secretAllowed,
  signStatement,
  verifyToken,
  type ExpectedDecision,
  type TrustPolicy,
  type UnsignedStatement,
} from '../../core/trust';
import { validatePlan } from '../../core/plan';
import { rawExample } from './fixtures';
import { base64, base64url, concatBytes, utf8Bytes } from '../../core/trust/encoding';
import { isReservedName } from '../../core/trust/keys';

/** Fixed "random" bytes: tests are deterministic, and ed25519 signatures are deterministic too. */
function bytes(fill: number, length = 32): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

const alice = newKeyPair(bytes(1), 'alice');
const alice2 = newKeyPair(bytes(11), 'alice');
const bob = newKeyPair(bytes(2), 'bob');
const carol = newKeyPair(bytes(3), 'carol');
const olga = newKeyPair(bytes(4), 'olga');
const mallory = newKeyPair(bytes(9), 'mallory');
const revokedBob = newKeyPair(bytes(12), 'bob');

const PLAN = { fleet: 'appv-lab', hosts: [{ id: 'appv-01' }, { id: 'appv-02' }] };
const DIGEST = planDigest(PLAN);
const NOW = Date.parse('2030-01-01T00:00:00.000Z');

const TRUST_FILE = {
  approvers: [
    { name: 'alice', keys: [alice.publicKeyLine, alice2.publicKeyLine] },
    { name: 'bob', keys: [bob.publicKeyLine, revokedBob.publicKeyLine] },
    { name: 'carol', keys: [carol.publicKeyLine] },
    { name: 'olga', keys: [olga.publicKeyLine] },
  ],
  groups: { approvers: ['alice', 'bob'], auditors: ['carol'], operators: ['olga', 'alice'] },
  revoked: [revokedBob.fingerprint],
  rules: [
    { fleets: ['appv-*'], gates: ['*'], actions: ['approve', 'reject'], groups: ['approvers'] },
    { fleets: ['appv-*'], gates: ['prerequisite:*'], actions: ['approve'], groups: ['auditors'] },
    { fleets: ['*'], gates: ['guided-failure'], actions: ['retry', 'skip', 'rollback'], groups: ['operators'] },
  ],
  plans: { requireSigned: true, authors: [{ fleets: ['appv-*'], groups: ['approvers'] }] },
  secrets: { env: ['CUTOVER_*', 'DB_PASSWORD'], files: ['/etc/cutover/secrets'] },
};

function policy(raw: unknown = TRUST_FILE): TrustPolicy {
  const parsed = parseTrustFile(raw);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.policy;
}
const TRUST = policy();

function statement(overrides: Partial<UnsignedStatement> = {}): UnsignedStatement {
  return {
    workflowId: 'cutover-appv-lab',
    firstRunId: 'run-1',
    gate: 'beforeOffline',
    opening: 1,
    decision: 'approve',
    planDigest: DIGEST,
    expiresAt: '2030-01-01T00:10:00.000Z',
    nonce: newNonce(bytes(7, 16)),
    ...overrides,
  };
}

function expected(overrides: Partial<ExpectedDecision> = {}): ExpectedDecision {
  return { workflowId: 'cutover-appv-lab', firstRunId: 'run-1', gate: 'beforeOffline', opening: 1, decision: 'approve', planDigest: DIGEST, fleet: 'appv-lab', now: NOW, ...overrides };
}

function reasonOf(token: unknown, expect: Partial<ExpectedDecision> = {}, trust: TrustPolicy = TRUST): string {
  const result = verifyToken(token, trust, expected(expect));
  if (result.ok) throw new Error(`expected a refusal, the token was accepted for ${result.approver}`);
  return result.reason;
}

/** A token whose payload the test writes itself, signed properly: for payloads signStatement would never make. */
function tokenWithPayload(text: string, key = alice): string {
  const parsed = parsePrivateKey(key.privateKey);
  if (!parsed.ok) throw new Error(parsed.reason);
  const payload = utf8Bytes(text);
  const signature = ed25519.sign(concatBytes(utf8Bytes(DECISION_CONTEXT), payload), parsed.seed);
  return `cutover1.${base64url.encode(payload)}.${base64url.encode(signature)}`;
}

function tokenParts(token: string): [string, string, string] {
  const [prefix = '', payload = '', signature = ''] = token.split('.');
  return [prefix, payload, signature];
}

describe('keys', () => {
  it('writes a public key line as "cutover-ed25519 <base64> <name>" and reads it back', () => {
    expect(alice.publicKeyLine).toMatch(/^cutover-ed25519 [A-Za-z0-9+/]{43}= alice$/);
    const parsed = parsePublicKeyLine(`  ${alice.publicKeyLine}\n`);
    expect(parsed).toMatchObject({ ok: true, name: 'alice', fingerprint: alice.fingerprint });
  });

  it('fingerprints as ssh-keygen -l does: SHA256 and the unpadded base64 of the hash of the key', () => {
    const parsed = parsePublicKeyLine(alice.publicKeyLine);
    if (!parsed.ok) throw new Error(parsed.reason);
    const expectedPrint = `SHA256:${createHash('sha256').update(parsed.key).digest('base64').replace(/=+$/, '')}`;
    expect(fingerprint(parsed.key)).toBe(expectedPrint);
    expect(alice.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('makes the same key pair from the same random bytes, and refuses other lengths or bad names', () => {
    expect(newKeyPair(bytes(1), 'alice')).toEqual(alice);
    expect(() => newKeyPair(bytes(1, 31), 'alice')).toThrow('exactly 32 random bytes');
    expect(() => newKeyPair(bytes(1), 'alice smith')).toThrow('cannot name a key');
    expect(() => newKeyPair(bytes(1), 'constructor')).toThrow('reserved');
  });

  it('reads its private key file back, comments and all, to the same public key', () => {
    expect(alice.privateKey).toContain('# Cutover signing key of alice');
    const parsed = parsePrivateKey(alice.privateKey);
    expect(parsed).toMatchObject({ ok: true, name: 'alice', fingerprint: alice.fingerprint, publicKeyLine: alice.publicKeyLine });
  });

  it('refuses broken private keys without quoting them', () => {
    const secretLine = alice.privateKey.split('\n').find((line) => line.startsWith('cutover-ed25519-secret')) ?? '';
    const seed = secretLine.split(' ')[1] ?? '';
    const cases: unknown[] = [undefined, 42, '', 'hello', alice.publicKeyLine, `${secretLine}\n${secretLine}`, secretLine.replace(seed, seed.slice(1)), secretLine.replace(' alice', ' al ice'), 'x'.repeat(5000)];
    for (const text of cases) {
      const parsed = parsePrivateKey(text);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.reason).not.toContain(seed);
    }
    expect(parsePrivateKey(secretLine.replace(seed, seed.slice(1)))).toEqual({ ok: false, reason: 'the private key is damaged: its seed is not 32 bytes of base64' });
  });

  it('refuses public key lines that are not one, with the reason', () => {
    const encoded = alice.publicKeyLine.split(' ')[1] ?? '';
    const identityPoint = base64.encode(concatBytes(new Uint8Array([1]), new Uint8Array(31)));
    const cases: [unknown, string][] = [
      [42, 'a public key line is text'],
      [`ssh-ed25519 ${encoded} alice`, 'is not a Cutover public key'],
      [`cutover-ed25519 ${encoded}`, 'is not a Cutover public key'],
      [`cutover-ed25519 ${encoded} alice smith`, 'is not a Cutover public key'],
      [`cutover-ed25519 ${encoded.slice(4)} alice`, 'is not 32 bytes of base64'],
      [`cutover-ed25519 ${encoded.replace('=', '')} alice`, 'is not 32 bytes of base64'],
      [`cutover-ed25519 ${identityPoint} alice`, 'is not a valid ed25519 public key'],
      [`cutover-ed25519 ${encoded} __proto__`, 'cannot name a key'],
      [`cutover-ed25519 ${encoded} ${'a'.repeat(600)}`, 'at most 512 characters'],
    ];
    for (const [line, reason] of cases) {
      const parsed = parsePublicKeyLine(line);
      expect(parsed.ok, String(line)).toBe(false);
      if (!parsed.ok) expect(parsed.reason).toContain(reason);
    }
  });

  it('signs plain Ed25519 that another implementation (node:crypto) verifies', () => {
    const token = signStatement(statement(), alice.privateKey);
    const read = readToken(token);
    if (!read.ok) throw new Error(read.reason);
    const parsed = parsePublicKeyLine(alice.publicKeyLine);
    if (!parsed.ok) throw new Error(parsed.reason);
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(parsed.key).toString('base64url') }, format: 'jwk' });
    const message = Buffer.concat([Buffer.from(DECISION_CONTEXT), Buffer.from(read.payload)]);
    expect(nodeVerify(null, message, key, Buffer.from(read.signature))).toBe(true);
    expect(nodeVerify(null, Buffer.from(read.payload), key, Buffer.from(read.signature))).toBe(false);
  });
});

describe('signStatement and verifyToken', () => {
  it('accepts its own token, naming the approver the trust policy gives the key', () => {
    const token = signStatement(statement({ comment: 'window opened' }), alice.privateKey);
    expect(token).toMatch(/^cutover1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/);
    const result = verifyToken(token, TRUST, expected());
    expect(result).toMatchObject({ ok: true, approver: 'alice', fingerprint: alice.fingerprint, statement: { v: 1, signer: 'alice', key: alice.fingerprint, comment: 'window opened' } });
  });

  it('carries its statement as canonical JSON, pasteable as {"token": "..."}', () => {
    const token = signStatement(statement(), alice.privateKey);
    const payload = Buffer.from(tokenParts(token)[1], 'base64url').toString('utf8');
    expect(payload).toBe(canonicalJson(JSON.parse(payload)));
    expect(JSON.parse(JSON.stringify({ token }))).toEqual({ token });
  });

  it('accepts operator decisions at guided-failure, and a skip naming hosts', () => {
    const skip = signStatement(statement({ gate: 'guided-failure', opening: 3, decision: 'skip', hosts: ['appv-02'] }), olga.privateKey);
    expect(verifyToken(skip, TRUST, expected({ gate: 'guided-failure', opening: 3, decision: 'skip' }))).toMatchObject({ ok: true, approver: 'olga', statement: { hosts: ['appv-02'] } });
    const retry = signStatement(statement({ gate: 'guided-failure', decision: 'retry' }), alice.privateKey);
    expect(verifyToken(retry, TRUST, expected({ gate: 'guided-failure', decision: 'retry' }))).toMatchObject({ ok: true, approver: 'alice' });
  });

  it('refuses to sign what could never verify', () => {
    expect(() => signStatement(statement({ hosts: ['appv-02'] }), alice.privateKey)).toThrow('only a skip names hosts');
    expect(() => signStatement(statement({ decision: 'retry' }), alice.privateKey)).toThrow('retry is decided at guided-failure');
    expect(() => signStatement(statement({ gate: 'guided-failure' }), alice.privateKey)).toThrow('approve is decided at a gate');
    expect(() => signStatement(statement({ opening: 0 }), alice.privateKey)).toThrow('opening');
    expect(() => signStatement(statement({ expiresAt: 'tomorrow' }), alice.privateKey)).toThrow('expiresAt');
    expect(() => signStatement(statement({ signer: 'bob' }), alice.privateKey)).toThrow('the key belongs to alice');
    expect(() => signStatement(statement({ key: bob.fingerprint }), alice.privateKey)).toThrow('but the private key is');
    expect(() => signStatement(statement(), 'not a key')).toThrow('not a Cutover private key');
    expect(() => newNonce(bytes(1, 8))).toThrow('16 to 96 random bytes');
  });

  it('refuses a token made for anything else than what the workflow expects, saying what differs', () => {
    const token = signStatement(statement(), alice.privateKey);
    expect(reasonOf(token, { workflowId: 'cutover-gp-web' })).toBe('the token was made for workflow cutover-appv-lab, not cutover-gp-web');
    expect(reasonOf(token, { firstRunId: 'run-2' })).toBe('the token was made for run run-1, not this run (run-2)');
    expect(reasonOf(token, { gate: 'beforeOnline' })).toBe('the token was made for gate beforeOffline, not beforeOnline');
    expect(reasonOf(token, { opening: 2 })).toBe('the token was made for opening 1 of gate beforeOffline, not opening 2 (each opening needs a new decision)');
    expect(reasonOf(token, { decision: 'reject' })).toBe('the token says approve, not reject');
    const other = planDigest({ ...PLAN, fleet: 'appv-prod' });
    expect(reasonOf(token, { planDigest: other })).toBe(`the token was made for plan ${DIGEST}, not this run's plan ${other}`);
  });

  it('refuses an expired token, at the expiry itself', () => {
    const token = signStatement(statement(), alice.privateKey);
    const expiry = Date.parse('2030-01-01T00:10:00.000Z');
    expect(verifyToken(token, TRUST, expected({ now: expiry - 1 })).ok).toBe(true);
    expect(reasonOf(token, { now: expiry })).toBe('the token expired at 2030-01-01T00:10:00.000Z (workflow time 2030-01-01T00:10:00.000Z)');
    expect(reasonOf(token, { now: Number.NaN })).toBe('the workflow has no valid time to check the token against');
  });

  it('refuses a nonce the run has already accepted', () => {
    const token = signStatement(statement(), alice.privateKey);
    const nonce = newNonce(bytes(7, 16));
    expect(reasonOf(token, { seenNonces: new Set([nonce]) })).toBe(`the token was already used (nonce ${nonce})`);
    expect(verifyToken(token, TRUST, expected({ seenNonces: new Set(['someothernonce0000']) })).ok).toBe(true);
  });

  it('refuses revoked and unknown keys', () => {
    expect(reasonOf(signStatement(statement(), revokedBob.privateKey))).toBe(`key ${revokedBob.fingerprint} is revoked`);
    expect(reasonOf(signStatement(statement(), mallory.privateKey))).toBe(`key ${mallory.fingerprint} is not in the trust policy`);
  });

  it('refuses a key file whose name was changed to someone else', () => {
    const renamed = alice.privateKey.replace(/(cutover-ed25519-secret \S+) alice/, '$1 bob');
    expect(reasonOf(signStatement(statement(), renamed))).toBe(`the token names signer bob, but key ${alice.fingerprint} belongs to alice`);
  });

  it('refuses a decision the trust policy does not give the signer', () => {
    expect(reasonOf(signStatement(statement(), carol.privateKey))).toBe('carol may not approve at gate beforeOffline of fleet appv-lab (allowed: group approvers)');
    expect(reasonOf(signStatement(statement(), alice.privateKey), { fleet: 'gp-web' })).toBe('no rule of the trust policy allows approve at gate beforeOffline of fleet gp-web');
    const rollback = signStatement(statement({ gate: 'guided-failure', decision: 'rollback' }), bob.privateKey);
    expect(reasonOf(rollback, { gate: 'guided-failure', decision: 'rollback' })).toBe('bob may not rollback after a failed step of fleet appv-lab (allowed: group operators)');
  });

  it('refuses a tampered statement or signature as a bad signature', () => {
    const token = signStatement(statement(), alice.privateKey);
    const [prefix, payload, signature] = tokenParts(token);
    const json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const tampered = base64url.encode(utf8Bytes(canonicalJson({ ...json, opening: 2 })));
    expect(reasonOf(`${prefix}.${tampered}.${signature}`, { opening: 2 })).toBe('bad signature');
    const flipped = Buffer.from(signature, 'base64url');
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    expect(reasonOf(`${prefix}.${payload}.${flipped.toString('base64url')}`)).toBe('bad signature');
    const otherSignature = tokenParts(signStatement(statement({ comment: 'x' }), alice.privateKey))[2];
    expect(reasonOf(`${prefix}.${payload}.${otherSignature}`)).toBe('bad signature');
  });

  it('refuses a signature made without the decision context (e.g. over the bare statement)', () => {
    const token = signStatement(statement(), alice.privateKey);
    const [prefix, payload] = tokenParts(token);
    const parsed = parsePrivateKey(alice.privateKey);
    if (!parsed.ok) throw new Error(parsed.reason);
    const bare = ed25519.sign(Buffer.from(payload, 'base64url'), parsed.seed);
    expect(reasonOf(`${prefix}.${payload}.${base64url.encode(bare)}`)).toBe('bad signature');
  });

  it('refuses a signed statement that is not in canonical form: whitespace, key order, duplicate keys', () => {
    const canonical = Buffer.from(tokenParts(signStatement(statement(), alice.privateKey))[1], 'base64url').toString('utf8');
    const json = JSON.parse(canonical) as Record<string, unknown>;
    const spaced = JSON.stringify(json, null, 1);
    const reordered = JSON.stringify({ v: 1, ...json });
    const duplicated = canonical.replace('"opening":1', '"opening":2,"opening":1');
    for (const text of [spaced, reordered, duplicated]) {
      expect(reasonOf(tokenWithPayload(text))).toBe("the token's statement is not in canonical JSON form");
    }
    expect(verifyToken(tokenWithPayload(canonical), TRUST, expected()).ok).toBe(true);
  });

  it('refuses signed statements of the wrong shape, with the field', () => {
    const json = JSON.parse(Buffer.from(tokenParts(signStatement(statement(), alice.privateKey))[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    const cases: [unknown, string][] = [
      [{ ...json, v: 2 }, "the token's statement is not valid: v: "],
      [{ ...json, admin: true }, 'Unrecognized key: "admin"'],
      [{ ...json, opening: 1.5 }, 'opening: '],
      [{ ...json, decision: 'approve-all' }, 'decision: '],
      [{ ...json, hosts: ['appv-01'] }, 'hosts: only a skip names hosts'],
      [{ ...json, comment: 'x'.repeat(1001) }, 'comment: '],
      [{ ...json, planDigest: 'md5:abc' }, 'planDigest: a plan digest is'],
      [[json], "the token's statement is not valid: Invalid input"],
      ['text', "the token's statement is not valid"],
      [null, "the token's statement is not valid"],
    ];
    for (const [value, reason] of cases) expect(reasonOf(tokenWithPayload(canonicalJson(value)))).toContain(reason);
    const withProto = `{"__proto__":{"admin":true},${canonicalJson(json).slice(1)}`;
    expect(reasonOf(tokenWithPayload(withProto))).toBe('the token\'s statement is not valid: Unrecognized key: "__proto__"');
    expect(reasonOf(tokenWithPayload('{"v":1'))).toBe("the token's statement is not JSON");
    const latin1 = `cutover1.${base64url.encode(new Uint8Array([0x7b, 0xff, 0x7d]))}.${tokenParts(signStatement(statement(), alice.privateKey))[2]}`;
    expect(reasonOf(latin1)).toBe("the token's statement is not UTF-8");
  });

  it('never throws, whatever it is given, and answers in one short line', () => {
    const token = signStatement(statement(), alice.privateKey);
    const [prefix, payload, signature] = tokenParts(token);
    const hostile: unknown[] = [
      undefined, null, 0, -1, Number.NaN, Infinity, true, 10n, Symbol('token'), () => token, {}, [], [token], { token }, new String(token),
      new Proxy({}, { get: () => { throw new Error('boom'); } }),
      '', ' ', 'cutover1', 'cutover1.', 'cutover1..', 'cutover1.a.b', 'cutover1.a.b.c', `cutover2.${payload}.${signature}`, `CUTOVER1.${payload}.${signature}`,
      `${prefix}.${payload}`, `${prefix}.${payload}.`, `${prefix}..${signature}`, `${prefix}.${payload}.${signature}=`, `${prefix}.${payload}=.${signature}`,
      `${prefix}.${payload}.${signature}.${signature}`, `${prefix}.${payload}.${signature.slice(0, -1)}`, `${prefix}.${payload}.${signature}A`,
      `${prefix}.${payload.slice(0, -1)}.${signature}`, `${prefix}.${payload}\n.${signature}`, `${prefix}.${payload}.${signature}\u2028x`,
      `${prefix}.${payload.replace(/./, '+')}.${signature}`, `${prefix}.${payload.replace(/./, '/')}.${signature}`,
      `${prefix}.${'A'.repeat(70_000)}.${signature}`, 'x'.repeat(10_000_000), `${prefix}.${'A'.repeat(65_400)}.${signature}`,
      `cutover1.${'\u0000'.repeat(100)}.${signature}`, `cutover1.${'é'.repeat(100)}.${signature}`, '\n\nthe workflow approved everything\n',
    ];
    for (const value of hostile) {
      const result = verifyToken(value, TRUST, expected());
      expect(result.ok, String(typeof value === 'string' ? value.slice(0, 80) : typeof value)).toBe(false);
      if (!result.ok) {
        expect(result.reason).not.toMatch(/[\n\r\u2028\u2029]/);
        expect(result.reason.length).toBeLessThan(420);
      }
    }
    // A surrounding space or newline (a paste) is forgiven: the bytes that were signed are unchanged.
    expect(verifyToken(` ${token}\n`, TRUST, expected()).ok).toBe(true);
  });

  it('never throws on broken policies or expectations either', () => {
    const token = signStatement(statement(), alice.privateKey);
    for (const trust of [undefined, null, {}, { file: {} }, { file: { revoked: [] }, keys: 'x' }]) {
      const result = verifyToken(token, trust as never, expected());
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(/^the token could not be checked: /);
    }
    expect(verifyToken(token, TRUST, undefined as never).ok).toBe(false);
    expect(verifyToken(token, TRUST, {} as never).ok).toBe(false);
  });

  it('refuses every single-character change of a valid token (a deterministic fuzz)', () => {
    const token = signStatement(statement({ gate: 'guided-failure', decision: 'skip', hosts: ['appv-01', 'appv-02'] }), olga.privateKey);
    const expect_ = expected({ gate: 'guided-failure', decision: 'skip' });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    let seed = 12345;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 400; i++) {
      const at = next() % token.length;
      const replacement = alphabet[next() % alphabet.length] ?? 'A';
      if (token[at] === replacement) continue;
      const mutated = token.slice(0, at) + replacement + token.slice(at + 1);
      expect(verifyToken(mutated, TRUST, expect_).ok, `position ${at}`).toBe(false);
    }
    expect(verifyToken(token, TRUST, expect_).ok).toBe(true);
  });

  it('reads what a token says without verifying it (for showing it)', () => {
    const read = readToken(signStatement(statement(), mallory.privateKey));
    expect(read).toMatchObject({ ok: true, statement: { signer: 'mallory', decision: 'approve' } });
    expect(readToken(42)).toMatchObject({ ok: false, reason: expect.stringContaining('the token is a number, not text') });
    expect(readToken({ token: 'x' })).toMatchObject({ ok: false, reason: expect.stringContaining('the token is an object, not text') });
  });

  it('is deterministic: the same statement and key make the same token, verified the same way', () => {
    const first = signStatement(statement(), alice.privateKey);
    expect(signStatement(statement(), alice.privateKey)).toBe(first);
    expect(verifyToken(first, policy(), expected())).toEqual(verifyToken(first, policy(), expected()));
  });
});

describe('the trust file', () => {
  it('fills defaults: no approvers, unsigned decisions refused, plans unsigned, no secrets allowlist', () => {
    const parsed = policy({});
    expect(parsed.file).toEqual({ approvers: [], groups: {}, revoked: [], rules: [], unsigned: 'refuse', plans: { requireSigned: false, authors: [] } });
    expect(parsed.keys).toEqual([]);
    expect(refuseUnsigned(parsed)).toMatch(/signed decisions only/);
    expect(refuseUnsigned(policy({ unsigned: 'accept-by-name' }))).toBeUndefined();
  });

  it('lists every trusted key once with its owner', () => {
    expect(TRUST.keys.map((key) => [key.approver, key.fingerprint])).toEqual([
      ['alice', alice.fingerprint],
      ['alice', alice2.fingerprint],
      ['bob', bob.fingerprint],
      ['bob', revokedBob.fingerprint],
      ['carol', carol.fingerprint],
      ['olga', olga.fingerprint],
    ]);
    expect(JSON.parse(JSON.stringify(TRUST))).toEqual(TRUST);
  });

  it('reports cross-field problems with their paths', () => {
    const raw = {
      approvers: [
        { name: 'alice', keys: [alice.publicKeyLine, alice.publicKeyLine] },
        { name: 'bob', keys: [bob.publicKeyLine, alice.publicKeyLine] },
        { name: 'alice', keys: [alice2.publicKeyLine] },
      ],
      groups: { approvers: ['alice', 'dave'] },
      rules: [
        { fleets: ['*'], gates: ['*'], actions: ['approve'], groups: ['approvers', 'admins'] },
        { fleets: ['*'], gates: ['beforeOffline'], actions: ['retry'], groups: ['approvers'] },
        { fleets: ['*'], gates: ['guided-failure'], actions: ['reject'], groups: ['approvers'] },
      ],
      plans: { requireSigned: true },
    };
    const parsed = parseTrustFile(raw);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const problems = parsed.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    expect(problems).toEqual([
      `approvers.0.keys.1: key ${alice.fingerprint} is listed twice for alice`,
      'approvers.1.keys.1: this key is named alice, but it is listed for bob',
      `approvers.1.keys.1: key ${alice.fingerprint} is listed for both alice and bob`,
      'approvers.2.name: alice is listed twice (also approvers[0])',
      'groups.approvers.1: dave is not an approver (approvers: alice, bob)',
      'rules.0.groups.1: unknown group admins (groups: approvers)',
      'rules.1.gates: retry happen at gate guided-failure, which none of these gates matches',
      'rules.2.gates: reject happen at approval gates, not at guided-failure',
      'plans.authors: plans.requireSigned needs at least one entry here, or no plan can ever start',
    ]);
    expect(parsed.message).toContain('→ at groups.approvers[1]');
  });

  it('reports unknown plan author groups with their path', () => {
    const parsed = parseTrustFile({ plans: { authors: [{ fleets: ['*'], groups: ['planners'] }] } });
    expect(parsed.ok ? [] : parsed.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([['plans.authors.0.groups.0', 'unknown group planners (groups: none)']]);
  });

  it('reports shape problems with their paths, every one in one pass', () => {
    const parsed = parseTrustFile({
      approvers: [{ name: 'al ice', keys: ['ssh-ed25519 AAAA alice'] }],
      revoked: ['MD5:aa'],
      unsigned: 'accept',
      rules: [{ fleets: ['appv lab'], gates: [], actions: ['deploy'], groups: ['x'] }],
      secrets: { env: ['*'], files: ['relative/dir', '/etc/../root'] },
      extra: true,
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const paths = parsed.issues.map((issue) => issue.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining(['approvers.0.name', 'approvers.0.keys.0', 'revoked.0', 'unsigned', 'rules.0.fleets.0', 'rules.0.gates', 'rules.0.actions.0', 'secrets.env.0', 'secrets.files.0', 'secrets.files.1', '']),
    );
    expect(parsed.message).toContain('Unrecognized key: "extra"');
  });

  it('refuses names an object already has, and __proto__ as a group', () => {
    const reserved = parseTrustFile(JSON.parse('{"groups": {"constructor": []}, "approvers": [{"name": "toString", "keys": []}]}'));
    expect(reserved.ok ? '' : reserved.message).toContain('this name is reserved');
    expect(reserved.ok ? [] : reserved.issues.map((issue) => issue.path.join('.'))).toEqual(expect.arrayContaining(['groups.constructor', 'approvers.0.name']));
    const proto = parseTrustFile(JSON.parse('{"groups": {"__proto__": ["alice"]}}'));
    expect(proto.ok ? [] : proto.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([['groups.__proto__', '"__proto__" is reserved; choose another group name']]);
    expect(parseTrustFile(JSON.parse('{"__proto__": {"unsigned": "accept-by-name"}}')).ok).toBe(false);
    expect(({} as Record<string, unknown>).unsigned).toBeUndefined();
    for (const name of Object.getOwnPropertyNames(Object.prototype)) expect(isReservedName(name), name).toBe(true);
  });

  it('never throws on garbage', () => {
    for (const raw of [undefined, null, 1, 'approvers: []', [], { approvers: 'alice' }, { groups: [] }, { rules: [{}] }]) {
      expect(parseTrustFile(raw).ok).toBe(false);
    }
  });

  it('has a digest that ignores key order and changes with the content', () => {
    const reordered = Object.fromEntries(Object.entries(TRUST_FILE).reverse());
    expect(policyDigest(policy(reordered))).toBe(policyDigest(TRUST));
    expect(policyDigest(TRUST)).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(policyDigest(policy({ ...TRUST_FILE, revoked: [] }))).not.toBe(policyDigest(TRUST));
  });
});

describe('policy rules', () => {
  it('allows a decision when a rule matches fleet, gate and action and the approver is in one of its groups', () => {
    expect(mayDecide(TRUST, { fleet: 'appv-lab', gate: 'beforeOffline', action: 'approve', approver: 'alice' })).toBeUndefined();
    expect(mayDecide(TRUST, { fleet: 'appv-lab', gate: 'beforeOffline', action: 'reject', approver: 'bob' })).toBeUndefined();
    expect(mayDecide(TRUST, { fleet: 'appv-lab', gate: 'beforeOffline', action: 'approve', approver: 'olga' })).toBe(
      'olga may not approve at gate beforeOffline of fleet appv-lab (allowed: group approvers)',
    );
  });

  it('matches fleets and gates by pattern', () => {
    expect(mayDecide(TRUST, { fleet: 'gp-web', gate: 'beforeOffline', action: 'approve', approver: 'alice' })).toBe('no rule of the trust policy allows approve at gate beforeOffline of fleet gp-web');
    expect(mayDecide(TRUST, { fleet: 'appv-lab', gate: 'prerequisite:tenant-services', action: 'approve', approver: 'carol' })).toBeUndefined();
    expect(mayDecide(TRUST, { fleet: 'appv-lab', gate: 'prerequisite:tenant-services', action: 'reject', approver: 'carol' })).toBe(
      'carol may not reject at gate prerequisite:tenant-services of fleet appv-lab (allowed: group approvers)',
    );
    expect(mayDecide(TRUST, { fleet: 'appv-lab', gate: 'prerequisite:tenant-services', action: 'approve', approver: 'olga' })).toBe(
      'olga may not approve at gate prerequisite:tenant-services of fleet appv-lab (allowed: groups approvers, auditors)',
    );
    expect(patternMatches('appv-*', 'appv-')).toBe(true);
    expect(patternMatches('appv-*', 'xappv-1')).toBe(false);
    expect(patternMatches('*-lab', 'appv-lab')).toBe(true);
    expect(patternMatches('a*b*c', 'abc')).toBe(true);
    expect(patternMatches('a*b*c', 'acb')).toBe(false);
    expect(patternMatches('a*a', 'a')).toBe(false);
    expect(patternMatches('beforeOffline', 'beforeOfflineX')).toBe(false);
  });

  it('decides operator actions at guided-failure by the rules for that gate', () => {
    expect(mayDecide(TRUST, { fleet: 'gp-web', gate: 'guided-failure', action: 'skip', approver: 'olga' })).toBeUndefined();
    expect(mayDecide(TRUST, { fleet: 'gp-web', gate: 'guided-failure', action: 'approve', approver: 'olga' })).toBe('no rule of the trust policy allows approve after a failed step of fleet gp-web');
  });

  it('lists the approvers it allows, and who may author plans', () => {
    expect(allowedApprovers(TRUST, { fleet: 'appv-lab', gate: 'prerequisite:x', action: 'approve' })).toEqual(['alice', 'bob', 'carol']);
    expect(allowedApprovers(TRUST, { fleet: 'gp-web', gate: 'beforeOffline', action: 'approve' })).toEqual([]);
    expect(planAuthorAllowed(TRUST, 'appv-lab', 'bob')).toBe(true);
    expect(planAuthorAllowed(TRUST, 'appv-lab', 'olga')).toBe(false);
    expect(planAuthorAllowed(TRUST, 'gp-web', 'bob')).toBe(false);
  });

  it('allows secrets by variable name or prefix, and files under the listed directories only', () => {
    expect(secretAllowed(TRUST, { source: 'env', name: 'CUTOVER_DB' })).toBeUndefined();
    expect(secretAllowed(TRUST, { source: 'env', name: 'DB_PASSWORD' })).toBeUndefined();
    expect(secretAllowed(TRUST, { source: 'env', name: 'DB_PASSWORD2' })).toBe('the trust policy does not allow the secret env:DB_PASSWORD2 (secrets.env: CUTOVER_*, DB_PASSWORD)');
    expect(secretAllowed(TRUST, { source: 'file', path: '/etc/cutover/secrets/db' })).toBeUndefined();
    for (const path of ['/etc/cutover/secrets', '/etc/cutover/secrets-old/db', '/etc/cutover/secrets/../../shadow', '/etc/cutover/secrets//db', '/etc/cutover/secrets/./db']) {
      expect(secretAllowed(TRUST, { source: 'file', path }), path).toMatch(/does not allow the secret file:/);
    }
  });
});

describe('quorum', () => {
  it('counts distinct keys: two approvals with one key do not meet quorum 2', () => {
    expect(quorumMet([{ fingerprint: alice.fingerprint }, { fingerprint: alice.fingerprint }], 2)).toBe(false);
    expect(quorumMet([{ fingerprint: alice.fingerprint, approver: 'alice' }, { fingerprint: alice.fingerprint, approver: 'bob' }], 2)).toBe(false);
    expect(quorumMet([{ fingerprint: alice.fingerprint, approver: 'alice' }, { fingerprint: bob.fingerprint, approver: 'bob' }], 2)).toBe(true);
  });

  it('counts one approver holding two keys once', () => {
    expect(quorumMet([{ fingerprint: alice.fingerprint, approver: 'alice' }, { fingerprint: alice2.fingerprint, approver: 'alice' }], 2)).toBe(false);
  });

  it('needs at least one approval, whatever the quorum says', () => {
    expect(quorumMet([], 0)).toBe(false);
    expect(quorumMet([{ fingerprint: alice.fingerprint }], 0)).toBe(true);
  });
});

describe('effectiveGate: a plan narrows the policy, never widens it', () => {
  it('keeps the policy set when the plan names nobody', () => {
    expect(effectiveGate(['bob', 'alice'], { approvers: [], quorum: 1 })).toEqual({ approvers: ['alice', 'bob'], quorum: 1 });
  });

  it('drops plan approvers the policy does not allow', () => {
    expect(effectiveGate(['alice', 'bob'], { approvers: ['bob', 'mallory'], quorum: 1 })).toEqual({ approvers: ['bob'], quorum: 1 });
  });

  it('takes the plan quorum, at least 1, and says when it cannot be met', () => {
    expect(effectiveGate(['alice'], { approvers: [], quorum: 0 }).quorum).toBe(1);
    expect(effectiveGate(['alice', 'bob'], { approvers: [], quorum: 1.5 }).quorum).toBe(2);
    expect(effectiveGate(['alice', 'bob'], { approvers: ['bob', 'mallory'], quorum: 2 }).unreachable).toBe('the gate needs 2 approvers, but only bob is allowed by both the plan and the trust policy');
    expect(effectiveGate([], { approvers: ['mallory'], quorum: 1 }).unreachable).toBe('the gate needs 1 approver, but nobody is allowed by both the plan and the trust policy');
  });
});

describe('planDigest and canonical JSON', () => {
  it('is sha256 over canonical JSON: sorted keys, no whitespace', () => {
    const plan = { b: [1, { d: true, c: null }], a: 'x' };
    const canonical = '{"a":"x","b":[1,{"c":null,"d":true}]}';
    expect(canonicalJson(plan)).toBe(canonical);
    expect(planDigest(plan)).toBe(`sha256:${createHash('sha256').update(canonical).digest('hex')}`);
  });

  it('does not depend on key order or formatting of the JSON the plan came from', () => {
    const spaced = JSON.parse('{ "hosts": [ {"id": "appv-01"}, {"id": "appv-02"} ],\n  "fleet": "appv-lab" }') as unknown;
    expect(planDigest(spaced)).toBe(DIGEST);
    expect(planDigest({ ...PLAN, hosts: [...PLAN.hosts].reverse() })).not.toBe(DIGEST);
  });

  it('sorts keys by UTF-16 code units and writes strings and numbers as JSON.stringify does', () => {
    expect(canonicalJson({ é: 1, z: 2, Z: 3, '10': 4, '9': 5, '\u{1F600}': 6, '\uFB01': 7 })).toBe('{"10":4,"9":5,"Z":3,"z":2,"é":1,"\u{1F600}":6,"\uFB01":7}');
    expect(canonicalJson([1e21, 0.1, -0, 1.5e-7, '\u2028', '\uD800'])).toBe('[1e+21,0.1,0,1.5e-7,"\u2028","\\ud800"]');
    expect(canonicalJson({ a: undefined, b: 1 })).toBe('{"b":1}');
    expect(canonicalJson(Object.assign(Object.create(null) as object, { a: 1 }))).toBe('{"a":1}');
  });

  it('throws for values JSON cannot hold', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    for (const value of [Number.NaN, Infinity, undefined, [undefined], new Date(0), new Map(), 1n, () => 1, deep]) {
      expect(() => canonicalJson(value)).toThrow(TypeError);
    }
  });

  it('is deterministic', () => {
    expect(planDigest(structuredClone(PLAN))).toBe(planDigest(PLAN));
  });
});

describe('a plan naming a group of the trust file', () => {
  it('gets the group members the policy allows, and never more than the policy allows', () => {
    const policy = TRUST;
    const members = expandApprovers(policy, ['group:no-such-group', 'zed']);
    expect(members).toEqual(['zed']);
    const groups = Object.keys(policy.file.groups);
    const first = groups[0] as string;
    expect(expandApprovers(policy, [`group:${first}`])).toEqual([...new Set(policy.file.groups[first])]);
    expect(effectiveGate(['alice'], { approvers: expandApprovers(policy, ['zed']), quorum: 1 }).unreachable).toBeDefined();
    // A quorum above the listed names is checked only when the plan lists names alone.
    const raw = rawExample();
    raw.gates.beforeOffline = { approvers: [`group:${first}`], quorum: 3 };
    expect(validatePlan(raw).ok).toBe(true);
    raw.gates.beforeOffline = { approvers: ['alice'], quorum: 3 };
    expect(validatePlan(raw).ok).toBe(false);
  });
});
