/**
 * The codec's keys, resolved: each reference of CUTOVER_CODEC_KEYS (core/codecKeys.ts) read from the process's
 * environment or a file, and checked to be 32 bytes of base64 (`openssl rand -base64 32`). A bad setting is a
 * UserError naming the key and its reference, never its value.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { type CodecKeyRef, parseCodecKeys } from '../core/codecKeys';
import { UserError } from '../core/errors';
import { type SecretRef, readSecretValue, secretRefText } from '../core/secrets';

export interface CodecKey {
  id: string;
  /** AES-256 key material. */
  key: Buffer;
}

const KEY_BYTES = 32;

const keyText = z
  .base64('is not base64')
  .transform((text) => Buffer.from(text, 'base64'))
  .refine((key) => key.length === KEY_BYTES, { message: `is not ${KEY_BYTES} bytes (AES-256); make a key with \`openssl rand -base64 32\`` });

/** A reference's value (core/secrets.ts, readSecretValue); `what` names it in the UserError when it has none. */
export function readReference(what: string, ref: SecretRef, env: NodeJS.ProcessEnv): string {
  const read = readSecretValue(ref, env, (path) => readFileSync(path, 'utf8'));
  if ('problem' in read) throw new UserError(`${what} (${secretRefText(ref)}): ${read.problem}`);
  return read.value;
}

function resolveKey(entry: CodecKeyRef, env: NodeJS.ProcessEnv): CodecKey {
  const parsed = keyText.safeParse(readReference(`codec key ${entry.id}`, entry.ref, env).trim());
  if (!parsed.success) throw new UserError(`codec key ${entry.id} (${secretRefText(entry.ref)}) ${parsed.error.issues[0]?.message ?? 'is not a key'}`);
  return { id: entry.id, key: parsed.data };
}

/** The keys CUTOVER_CODEC_KEYS names, newest (the one that encrypts) first; undefined when encryption is off. */
export function loadCodecKeys(env: NodeJS.ProcessEnv = process.env): CodecKey[] | undefined {
  const setting = env.CUTOVER_CODEC_KEYS?.trim();
  if (!setting) return undefined;
  const parsed = parseCodecKeys(setting);
  if (!parsed.ok) throw new UserError(parsed.message);
  return parsed.keys.map((entry) => resolveKey(entry, env));
}

/** The files holding this process's codec keys: never a plan's secret (activities/trust.ts). */
export function codecKeyFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const parsed = parseCodecKeys(env.CUTOVER_CODEC_KEYS ?? '');
  return parsed.ok ? parsed.keys.flatMap(({ ref }) => (ref.source === 'file' ? [ref.path] : [])) : [];
}
