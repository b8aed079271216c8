/** Digests of JSON values, stable across key order and whitespace: what a signed decision binds a run's plan with. */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';
import { canonicalJson } from './canonical';
import { utf8Bytes } from './encoding';

export const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** `sha256:` and the hex SHA-256 of the value's canonical JSON. Throws for what JSON cannot hold. */
export function jsonDigest(value: unknown): string {
  return `sha256:${bytesToHex(sha256(utf8Bytes(canonicalJson(value))))}`;
}

/**
 * The digest of a plan as the workflow receives it (its raw input, before validation fills defaults), so the
 * CLI that signs and the workflow that verifies compute it from the same JSON, whatever its key order.
 */
export function planDigest(rawPlan: unknown): string {
  return jsonDigest(rawPlan);
}
