/**
 * The codec's keys, the pure half: `CUTOVER_CODEC_KEYS` names them by reference, newest first, e.g.
 * `2026-11=env:CUTOVER_CODEC_KEY_2026_11,2026-05=file:/etc/cutover/codec-2026-05.key`. The first key encrypts; every
 * key listed decrypts, so a rotation puts the new key first and keeps the old one until no open run needs it.
 * Resolving the references (reading the variable or the file) is codec/keys.ts's business.
 */
import { z } from 'zod';
import { parseSecretRef, type SecretRef } from './secrets';

/** Every variable of the codec's (keys, the codec server's token) starts so: plans may never name them, commands never inherit them. */
export const CODEC_ENV_PREFIX = 'CUTOVER_CODEC_';

export interface CodecKeyRef {
  id: string;
  ref: SecretRef;
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

const keyEntry = z.string().transform((text, ctx): CodecKeyRef => {
  const equals = text.indexOf('=');
  const id = equals < 0 ? '' : text.slice(0, equals);
  if (!KEY_ID.test(id)) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not ID=REFERENCE: the key id is 1-64 letters, digits, ".", "_" or "-", e.g. 2026-11=env:CUTOVER_CODEC_KEY_2026_11` });
    return z.NEVER;
  }
  const parsed = parseSecretRef(text.slice(equals + 1));
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: `key ${id}: ${parsed.reason}` });
    return z.NEVER;
  }
  if (parsed.ref.source === 'env' && !parsed.ref.name.startsWith(CODEC_ENV_PREFIX)) {
    ctx.addIssue({ code: 'custom', message: `key ${id}: env:${parsed.ref.name} must be named ${CODEC_ENV_PREFIX}..., so that no plan can name it and no command inherits it` });
    return z.NEVER;
  }
  return { id, ref: parsed.ref };
});

const keyList = z
  .array(keyEntry)
  .min(1, 'no key is listed')
  .superRefine((keys, ctx) => {
    const seen = new Set<string>();
    keys.forEach((key, index) => {
      if (seen.has(key.id)) ctx.addIssue({ code: 'custom', path: [index], message: `key id ${key.id} is listed twice: each key needs its own id, which encrypted payloads carry` });
      seen.add(key.id);
    });
  });

/** The setting's entries, separated by commas or white space; the reason it is not valid, for a UserError. */
export function parseCodecKeys(text: string): { ok: true; keys: CodecKeyRef[] } | { ok: false; message: string } {
  const entries = text.split(/[\s,]+/).filter((entry) => entry !== '');
  const parsed = keyList.safeParse(entries);
  if (parsed.success) return { ok: true, keys: parsed.data };
  return { ok: false, message: `CUTOVER_CODEC_KEYS is not a list of ID=env:NAME or ID=file:/path, newest first:\n${z.prettifyError(parsed.error)}` };
}
