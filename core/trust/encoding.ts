/**
 * Byte encodings for keys and tokens, pure JS: the workflow sandbox has no Buffer, and atob/btoa are not
 * guaranteed there. Decoding is canonical: a text decodes only when encoding the result gives the same text
 * back, so one token or key has exactly one spelling (no padding variants, no stray low bits).
 */

const STANDARD = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const URL_SAFE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function encodeWith(alphabet: string, bytes: Uint8Array, pad: boolean): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(bytes.length - i, 3) + 1;
    for (let c = 0; c < 4; c++) {
      if (c < chars) text += alphabet[(chunk >> (18 - 6 * c)) & 63];
      else if (pad) text += '=';
    }
  }
  return text;
}

function decodeWith(alphabet: string, text: string, pad: boolean): Uint8Array | undefined {
  const body = pad ? text.replace(/={1,2}$/, '') : text;
  if (body.length % 4 === 1) return undefined;
  const bytes = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let out = 0;
  for (const char of body) {
    const index = alphabet.indexOf(char);
    if (index < 0) return undefined;
    value = ((value << 6) | index) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes[out++] = (value >> bits) & 0xff;
    }
  }
  return encodeWith(alphabet, bytes, pad) === text ? bytes : undefined;
}

/** Standard base64 with padding, as ssh writes public keys. */
export const base64 = {
  encode: (bytes: Uint8Array): string => encodeWith(STANDARD, bytes, true),
  decode: (text: string): Uint8Array | undefined => decodeWith(STANDARD, text, true),
};

/** Standard base64 without padding, as ssh-keygen prints SHA256 fingerprints. */
export const base64Unpadded = {
  encode: (bytes: Uint8Array): string => encodeWith(STANDARD, bytes, false),
};

/** URL-safe base64 without padding (RFC 4648 §5), for the parts of a token. */
export const base64url = {
  encode: (bytes: Uint8Array): string => encodeWith(URL_SAFE, bytes, false),
  decode: (text: string): Uint8Array | undefined => decodeWith(URL_SAFE, text, false),
};

export function utf8Bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Strict: invalid UTF-8 is an error, never replaced by U+FFFD (two byte strings must not read as one text). */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/**
 * Text from a token or a file, made safe for a one-line reason: control and line-separator characters become
 * spaces and long text is cut, so a hostile token cannot forge extra lines in a log or flood a status.
 */
export function oneLine(text: string, max = 200): string {
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
