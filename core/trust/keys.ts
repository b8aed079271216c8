/**
 * Approvers' ed25519 keys. A public key is one line, like an ssh or minisign public key, so it can be pasted
 * into the trust file: `cutover-ed25519 <base64 key> <name>`. A private key is a small text file holding the
 * 32-byte seed; it never leaves the approver's machine. Fingerprints are written as `ssh-keygen -l` writes
 * them: `SHA256:` and the unpadded base64 of the key's SHA-256.
 */
import { ed25519 } from '@noble/curves/ed25519';
import { sha256 } from '@noble/hashes/sha2';
import { z } from 'zod';
import { isReservedName } from '../plan/names';
import { base64, base64Unpadded, oneLine } from './encoding';

export const PUBLIC_KEY_TYPE = 'cutover-ed25519';
export const PRIVATE_KEY_TYPE = 'cutover-ed25519-secret';
const KEY_BYTES = 32;

/** Names every JavaScript object answers to are no approver's or group's name: one list, the plan's (core/plan/names.ts). */
export { isReservedName };

/** One word, so it can close a key line; `@` and `+` allow e-mail-like names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

export const ApproverName = z
  .string()
  .regex(NAME, 'a name is 1 to 64 letters, digits, ".", "_", "@", "+" or "-", starting with a letter or digit')
  .refine((name) => !isReservedName(name), { message: 'this name is reserved; choose another' });
export type ApproverName = z.infer<typeof ApproverName>;

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
export const Fingerprint = z.string().regex(FINGERPRINT, 'a key fingerprint is "SHA256:" and 43 base64 characters');
export type Fingerprint = z.infer<typeof Fingerprint>;

export type Parsed<T> = ({ ok: true } & T) | { ok: false; reason: string };

export interface PublicKeyInfo {
  key: Uint8Array;
  name: string;
  fingerprint: string;
}

export interface PrivateKeyInfo extends PublicKeyInfo {
  seed: Uint8Array;
  publicKeyLine: string;
}

export interface KeyPair {
  /** The text of a private key file (keep it mode 0600); parsePrivateKey reads it. */
  privateKey: string;
  publicKeyLine: string;
  fingerprint: string;
}

export function fingerprint(publicKey: Uint8Array): string {
  return `SHA256:${base64Unpadded.encode(sha256(publicKey))}`;
}

export function publicKeyLine(publicKey: Uint8Array, name: string): string {
  return `${PUBLIC_KEY_TYPE} ${base64.encode(publicKey)} ${name}`;
}

/** Randomness comes from the caller (crypto.getRandomValues on the CLI), so this module stays pure. */
export function newKeyPair(randomBytes: Uint8Array, name: string): KeyPair {
  if (!(randomBytes instanceof Uint8Array) || randomBytes.length !== KEY_BYTES) throw new Error(`a new key needs exactly ${KEY_BYTES} random bytes`);
  const checked = ApproverName.safeParse(name);
  if (!checked.success) throw new Error(`"${oneLine(String(name), 80)}" cannot name a key: ${checked.error.issues[0]?.message}`);
  const seed = Uint8Array.from(randomBytes);
  const publicKey = ed25519.getPublicKey(seed);
  const print = fingerprint(publicKey);
  const privateKey = [
    `# Cutover signing key of ${name}, ${print}. Keep this file private: whoever reads it can decide as ${name}.`,
    `# Public key, for the trust file: ${publicKeyLine(publicKey, name)}`,
    `${PRIVATE_KEY_TYPE} ${base64.encode(seed)} ${name}`,
    '',
  ].join('\n');
  return { privateKey, publicKeyLine: publicKeyLine(publicKey, name), fingerprint: print };
}

const PUBLIC_LINE_HINT = `expected "${PUBLIC_KEY_TYPE} <base64 key> <name>"`;

export function parsePublicKeyLine(line: unknown): Parsed<PublicKeyInfo> {
  if (typeof line !== 'string') return { ok: false, reason: `a public key line is text: ${PUBLIC_LINE_HINT}` };
  if (line.length > 512) return { ok: false, reason: `a public key line is at most 512 characters: ${PUBLIC_LINE_HINT}` };
  const words = line.trim().split(/\s+/);
  const [type, encoded, name] = words;
  if (type !== PUBLIC_KEY_TYPE || words.length !== 3 || encoded === undefined || name === undefined) {
    return { ok: false, reason: `"${oneLine(line, 80)}" is not a Cutover public key: ${PUBLIC_LINE_HINT}` };
  }
  const key = base64.decode(encoded);
  if (!key || key.length !== KEY_BYTES) return { ok: false, reason: `the key of "${name}" is not ${KEY_BYTES} bytes of base64` };
  if (!isUsablePublicKey(key)) return { ok: false, reason: `the key of "${name}" is not a valid ed25519 public key` };
  const checkedName = ApproverName.safeParse(name);
  if (!checkedName.success) return { ok: false, reason: `"${oneLine(name, 80)}" cannot name a key: ${checkedName.error.issues[0]?.message}` };
  return { ok: true, key, name, fingerprint: fingerprint(key) };
}

/** Strict RFC 8032 decoding, and no small-order point: such a key would let anyone forge signatures for it. */
function isUsablePublicKey(key: Uint8Array): boolean {
  try {
    return !ed25519.Point.fromBytes(key, false).isSmallOrder();
  } catch {
    return false;
  }
}

const PRIVATE_HINT = `expected one line "${PRIVATE_KEY_TYPE} <base64 seed> <name>" (lines starting with # are comments)`;

/** Reasons never quote the text: it is a secret. */
export function parsePrivateKey(text: unknown): Parsed<PrivateKeyInfo> {
  if (typeof text !== 'string' || text.length > 4096) return { ok: false, reason: `not a Cutover private key: ${PRIVATE_HINT}` };
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  const words = lines.length === 1 ? (lines[0] ?? '').split(/\s+/) : [];
  const [type, encoded, name] = words;
  if (words.length !== 3 || type !== PRIVATE_KEY_TYPE || encoded === undefined || name === undefined) {
    return { ok: false, reason: `not a Cutover private key: ${PRIVATE_HINT}` };
  }
  const seed = base64.decode(encoded);
  if (!seed || seed.length !== KEY_BYTES) return { ok: false, reason: `the private key is damaged: its seed is not ${KEY_BYTES} bytes of base64` };
  if (!ApproverName.safeParse(name).success) return { ok: false, reason: `the private key's name "${oneLine(name, 80)}" is not a valid approver name` };
  const key = ed25519.getPublicKey(seed);
  return { ok: true, seed, key, name, fingerprint: fingerprint(key), publicKeyLine: publicKeyLine(key, name) };
}
