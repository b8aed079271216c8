/**
 * The trust policy: who may decide what, read from the worker's trust file (YAML or JSON, read elsewhere; this
 * module gets the parsed value). Approvers are names with public keys; groups gather approvers; rules say which
 * groups may take which decisions at which gates of which fleets. Everything here is pure and deterministic, so
 * the workflow can evaluate it. TrustPolicy is plain JSON (no Maps, no byte arrays): it survives a payload
 * converter unchanged. Lookups scan arrays or use Object.hasOwn, and names that Object.prototype already has are
 * refused as names, so a record key can never read an inherited value.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';
import { z } from 'zod';
import { canonicalJson } from './canonical';
import { Decision, GUIDED_FAILURE, isOperatorDecision } from './decisions';
import { base64, oneLine, utf8Bytes } from './encoding';
import { ApproverName, Fingerprint, isReservedName, parsePublicKeyLine } from './keys';
import type { SecretRef } from '../secrets';

const GroupName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a group name is 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit')
  .refine((name) => !isReservedName(name), { message: 'this name is reserved; choose another' });

/** `*` stands for any run of characters: "appv-*", "prerequisite:*", "*". */
const Pattern = z.string().regex(/^[A-Za-z0-9._:*-]{1,128}$/, 'a pattern is letters, digits, ".", "_", ":", "-" and "*" for any characters');

const PublicKeyLineText = z.string().superRefine((line, ctx) => {
  const parsed = parsePublicKeyLine(line);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
});

const Approver = z.strictObject({ name: ApproverName, keys: z.array(PublicKeyLineText).min(1).max(32) });

export const Rule = z.strictObject({
  fleets: z.array(Pattern).min(1).max(100),
  /** Gate names or patterns; retry, skip and rollback are decided at gate "guided-failure". */
  gates: z.array(Pattern).min(1).max(100),
  actions: z.array(Decision).min(1),
  groups: z.array(GroupName).min(1).max(100),
});
export type Rule = z.infer<typeof Rule>;

/**
 * Group name to member names. zod drops an own "__proto__" key silently (JSON.parse makes one), so it is refused
 * here first; names Object.prototype has are refused by GroupName.
 */
const Groups = z
  .unknown()
  .superRefine((value, ctx) => {
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message: '"__proto__" is reserved; choose another group name' });
    }
  })
  .pipe(
    z.record(GroupName, z.array(ApproverName).max(1000), {
      error: (issue) => (issue.code === 'invalid_key' ? `not a usable group name: ${issue.issues.map((inner) => inner.message).join('; ')}` : undefined),
    }),
  );

const PlanAuthors = z.strictObject({ fleets: z.array(Pattern).min(1).max(100), groups: z.array(GroupName).min(1).max(100) });

const EnvPattern = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}\*?$/, 'a variable name, or a prefix followed by * (e.g. CUTOVER_*)');
const Directory = z
  .string()
  .max(1024)
  .refine((dir) => isNormalAbsolutePath(dir), 'an absolute directory without "." or ".." parts, e.g. /etc/cutover/secrets');

export const TrustFile = z
  .strictObject({
    approvers: z.array(Approver).max(1000).default([]),
    groups: Groups.default({}),
    revoked: z.array(Fingerprint).max(10_000).default([]),
    rules: z.array(Rule).max(1000).default([]),
    /** What a decision without a token gets: refused, or accepted by the name it gives (lab and demo only). */
    unsigned: z.enum(['refuse', 'accept-by-name']).default('refuse'),
    plans: z
      .strictObject({
        /** Whether a run starts only from a plan signed by one of its authors. */
        requireSigned: z.boolean().default(false),
        authors: z.array(PlanAuthors).max(100).default([]),
      })
      .prefault({}),
    /**
     * Which secrets the worker may resolve for a plan: variable names or prefixes, and directories. Without it, any
     * but the worker's own settings and files (core/secretPolicy.ts); with it, only these.
     */
    secrets: z.strictObject({ env: z.array(EnvPattern).max(1000).default([]), files: z.array(Directory).max(100).default([]) }).optional(),
  })
  // Cross-field rules read the file as typed: they run only once its shape is entirely right.
  .superRefine(checkTrustRules, { when: (payload) => payload.issues.length === 0 });
export type TrustFile = z.infer<typeof TrustFile>;

export interface TrustedKey {
  fingerprint: string;
  approver: string;
  /** Standard base64 of the 32-byte ed25519 key. */
  publicKey: string;
}

/** Only parseTrustFile makes one: a workflow that gets a policy from outside gets the raw file and parses it. */
export interface TrustPolicy {
  file: TrustFile;
  keys: TrustedKey[];
}

export type TrustFileResult = { ok: true; policy: TrustPolicy } | { ok: false; message: string; issues: z.core.$ZodIssue[] };

export function parseTrustFile(raw: unknown): TrustFileResult {
  const result = TrustFile.safeParse(raw);
  if (!result.success) return { ok: false, message: z.prettifyError(result.error), issues: result.error.issues };
  return { ok: true, policy: { file: result.data, keys: trustedKeys(result.data) } };
}

function trustedKeys(file: TrustFile): TrustedKey[] {
  return file.approvers.flatMap((approver) =>
    approver.keys.flatMap((line) => {
      const parsed = parsePublicKeyLine(line);
      return parsed.ok ? [{ fingerprint: parsed.fingerprint, approver: approver.name, publicKey: base64.encode(parsed.key) }] : [];
    }),
  );
}

/** `sha256:` and hex over the canonical JSON of the file as parsed (defaults filled), for the status. */
export function policyDigest(policy: TrustPolicy): string {
  return `sha256:${bytesToHex(sha256(utf8Bytes(canonicalJson(policy.file))))}`;
}

/** The key a statement names, unless it is revoked or unknown. Revocation wins over a listing. */
export function trustedKey(policy: TrustPolicy, print: string): ({ ok: true } & TrustedKey) | { ok: false; reason: string } {
  if (policy.file.revoked.includes(print)) return { ok: false, reason: `key ${print} is revoked` };
  const key = policy.keys.find((candidate) => candidate.fingerprint === print);
  return key ? { ok: true, ...key } : { ok: false, reason: `key ${print} is not in the trust policy` };
}

export function groupMembers(policy: TrustPolicy, group: string): readonly string[] {
  return Object.hasOwn(policy.file.groups, group) ? (policy.file.groups[group] ?? []) : [];
}

/** `*` matches any run of characters, everything else itself. */
export function patternMatches(pattern: string, text: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === text;
  const first = parts[0] ?? '';
  const last = parts.at(-1) ?? '';
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let position = first.length;
  const end = text.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = text.indexOf(middle, position);
    if (found < 0 || found + middle.length > end) return false;
    position = found + middle.length;
  }
  return true;
}

export interface DecisionRequest {
  fleet: string;
  /** The gate name; "guided-failure" for retry, skip and rollback. */
  gate: string;
  action: Decision;
  approver: string;
}

function matchingRules(policy: TrustPolicy, { fleet, gate, action }: Omit<DecisionRequest, 'approver'>): Rule[] {
  return policy.file.rules.filter(
    (rule) => rule.actions.includes(action) && rule.fleets.some((pattern) => patternMatches(pattern, fleet)) && rule.gates.some((pattern) => patternMatches(pattern, gate)),
  );
}

/** The approvers the policy lets take this decision, sorted. */
export function allowedApprovers(policy: TrustPolicy, request: Omit<DecisionRequest, 'approver'>): string[] {
  const names = matchingRules(policy, request).flatMap((rule) => rule.groups.flatMap((group) => groupMembers(policy, group)));
  return [...new Set(names)].sort();
}

/** Why the approver may not take this decision, or undefined when a rule allows it. */
export function mayDecide(policy: TrustPolicy, request: DecisionRequest): string | undefined {
  const { fleet, gate, action, approver } = request;
  const where = gate === GUIDED_FAILURE ? `after a failed step of fleet ${fleet}` : `at gate ${gate} of fleet ${fleet}`;
  const rules = matchingRules(policy, request);
  if (rules.length === 0) return `no rule of the trust policy allows ${action} ${where}`;
  const groups = [...new Set(rules.flatMap((rule) => rule.groups))];
  if (groups.some((group) => groupMembers(policy, group).includes(approver))) return undefined;
  return `${approver} may not ${action} ${where} (allowed: group${groups.length > 1 ? 's' : ''} ${groups.join(', ')})`;
}

/** Whether the approver may sign plans for this fleet. */
export function planAuthorAllowed(policy: TrustPolicy, fleet: string, approver: string): boolean {
  return policy.file.plans.authors.some(
    (entry) => entry.fleets.some((pattern) => patternMatches(pattern, fleet)) && entry.groups.some((group) => groupMembers(policy, group).includes(approver)),
  );
}

/** Why a decision that comes by name only (no token) is refused, or undefined when the policy accepts it. */
export function refuseUnsigned(policy: TrustPolicy): string | undefined {
  if (policy.file.unsigned === 'accept-by-name') return undefined;
  return 'this worker accepts signed decisions only: send {"token": "cutover1...."} made with your key';
}

/** Why the worker may not resolve this secret for a plan, or undefined when the policy allows it. */
export function secretAllowed(policy: TrustPolicy, ref: SecretRef): string | undefined {
  const { env, files } = policy.file.secrets ?? { env: [], files: [] };
  if (ref.source === 'env') {
    const allowed = env.some((pattern) => (pattern.endsWith('*') ? ref.name.startsWith(pattern.slice(0, -1)) : ref.name === pattern));
    return allowed ? undefined : `the trust policy does not allow the secret env:${ref.name} (secrets.env: ${env.join(', ') || 'none'})`;
  }
  const allowed = isNormalAbsolutePath(ref.path) && files.some((dir) => ref.path.startsWith(dir === '/' ? '/' : `${dir.replace(/\/$/, '')}/`) && ref.path !== dir);
  return allowed ? undefined : `the trust policy does not allow the secret file:${oneLine(ref.path, 200)} (secrets.files: ${files.join(', ') || 'none'})`;
}

/** Absolute, no "." or ".." parts, no empty parts (so "/a/../etc" cannot reach outside "/a"). */
function isNormalAbsolutePath(path: string): boolean {
  if (!path.startsWith('/') || /[\u0000-\u001f]/.test(path)) return false;
  const parts = path.slice(1).replace(/\/$/, '').split('/');
  return path === '/' || parts.every((part) => part !== '' && part !== '.' && part !== '..');
}

// ---- Cross-field rules: each problem with the path of the entry that has it. ----

type Ctx = z.RefinementCtx;

function checkTrustRules(file: TrustFile, ctx: Ctx): void {
  checkApprovers(file, ctx);
  const approvers = new Set(file.approvers.map((approver) => approver.name));
  for (const [group, members] of Object.entries(file.groups)) {
    members.forEach((member, index) => {
      if (!approvers.has(member)) ctx.addIssue({ code: 'custom', path: ['groups', group, index], message: `${member} is not an approver (approvers: ${[...approvers].join(', ') || 'none'})` });
    });
  }
  file.rules.forEach((rule, index) => {
    checkGroupNames(file, rule.groups, ['rules', index, 'groups'], ctx);
    checkRuleCanMatch(rule, ['rules', index], ctx);
  });
  file.plans.authors.forEach((entry, index) => checkGroupNames(file, entry.groups, ['plans', 'authors', index, 'groups'], ctx));
  if (file.plans.requireSigned && file.plans.authors.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['plans', 'authors'], message: 'plans.requireSigned needs at least one entry here, or no plan can ever start' });
  }
}

/** Names once each; each key once, for one approver, and named after that approver (catches a pasted wrong line). */
function checkApprovers(file: TrustFile, ctx: Ctx): void {
  const nameAt = new Map<string, number>();
  const keyOwner = new Map<string, string>();
  file.approvers.forEach((approver, index) => {
    const earlier = nameAt.get(approver.name);
    if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: ['approvers', index, 'name'], message: `${approver.name} is listed twice (also approvers[${earlier}])` });
    else nameAt.set(approver.name, index);
    approver.keys.forEach((line, keyIndex) => {
      const parsed = parsePublicKeyLine(line);
      if (!parsed.ok) return; // the shape check reported it
      const path = ['approvers', index, 'keys', keyIndex];
      if (parsed.name !== approver.name) ctx.addIssue({ code: 'custom', path, message: `this key is named ${parsed.name}, but it is listed for ${approver.name}` });
      const owner = keyOwner.get(parsed.fingerprint);
      if (owner === approver.name) ctx.addIssue({ code: 'custom', path, message: `key ${parsed.fingerprint} is listed twice for ${approver.name}` });
      else if (owner !== undefined) ctx.addIssue({ code: 'custom', path, message: `key ${parsed.fingerprint} is listed for both ${owner} and ${approver.name}` });
      else keyOwner.set(parsed.fingerprint, approver.name);
    });
  });
}

function checkGroupNames(file: TrustFile, groups: string[], path: (string | number)[], ctx: Ctx): void {
  const known = Object.keys(file.groups);
  groups.forEach((group, index) => {
    if (!Object.hasOwn(file.groups, group)) ctx.addIssue({ code: 'custom', path: [...path, index], message: `unknown group ${group} (groups: ${known.join(', ') || 'none'})` });
  });
}

/** A rule whose actions can never meet its gates is a mistake: retry, skip and rollback happen only at guided-failure. */
function checkRuleCanMatch(rule: Rule, path: (string | number)[], ctx: Ctx): void {
  const reachesFailure = rule.gates.some((pattern) => patternMatches(pattern, GUIDED_FAILURE));
  const reachesGates = rule.gates.some((pattern) => pattern !== GUIDED_FAILURE);
  const operator = rule.actions.filter((action) => isOperatorDecision(action));
  const gate = rule.actions.filter((action) => !isOperatorDecision(action));
  if (operator.length > 0 && !reachesFailure) {
    ctx.addIssue({ code: 'custom', path: [...path, 'gates'], message: `${operator.join(', ')} happen at gate ${GUIDED_FAILURE}, which none of these gates matches` });
  }
  if (gate.length > 0 && !reachesGates) ctx.addIssue({ code: 'custom', path: [...path, 'gates'], message: `${gate.join(', ')} happen at approval gates, not at ${GUIDED_FAILURE}` });
}
