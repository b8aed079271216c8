/**
 * The payload codec: AES-256-GCM over the whole serialized Payload (its metadata too), a fresh 12-byte nonce per
 * payload, and the key id in the encrypted payload's metadata, as Temporal's encryption sample does
 * (temporalio/samples-typescript, encryption). The newest key encrypts; any known key decrypts, so runs started
 * under an older key keep going after a rotation. Payloads that are not encrypted pass through: runs started before
 * encryption was turned on still decode.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, ValueError } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { UserError } from '../core/errors';
import type { CodecKey } from './keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A payload this process cannot decrypt: a key it lacks, or a key or payload that changed. */
export class CodecKeyError extends ValueError {}

/**
 * The user's side of a payload that would not decode: a process with the wrong keys, or none, reading encrypted
 * runs. The CLI prints it as any UserError, without a stack.
 */
export function codecUserError(error: unknown): UserError | undefined {
  if (error instanceof CodecKeyError) return new UserError(error.message);
  if (error instanceof ValueError && error.message.includes(`Unknown encoding: ${ENCRYPTED_ENCODING}`)) {
    return new UserError('the run\'s payloads are encrypted and this process has no codec keys: set CUTOVER_CODEC_KEYS as the workers have it (README, Encryption)');
  }
  return undefined;
}

const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** nonce | ciphertext | tag. The key id is authenticated data, so a payload relabelled with another id fails. */
function encrypt(plain: Uint8Array, { id, key }: CodecKey): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(CIPHER, key, nonce);
  cipher.setAAD(Buffer.from(id));
  return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

function decrypt(sealed: Uint8Array, { id, key }: CodecKey): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new ValueError(`an encrypted payload (key ${id}) is too short to be one`);
  const bytes = Buffer.from(sealed);
  const decipher = createDecipheriv(CIPHER, key, bytes.subarray(0, NONCE_BYTES));
  decipher.setAAD(Buffer.from(id));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new CodecKeyError(`a payload encrypted with key ${id} does not decrypt with the key of that id here: the key was changed, or the payload altered`);
  }
}

export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, CodecKey>;

  /** `keys` newest first: the first encrypts. */
  constructor(private readonly keys: readonly CodecKey[]) {
    if (keys.length === 0) throw new Error('AesGcmCodec needs at least one key');
    this.byId = new Map(keys.map((key) => [key.id, key]));
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const [newest] = this.keys as [CodecKey];
    return payloads.map((payload) => ({
      metadata: { [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(newest.id) },
      data: encrypt(temporal.api.common.v1.Payload.encode(payload).finish(), newest),
    }));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload;
      const id = text(payload.metadata?.[KEY_ID_METADATA]);
      if (!id) throw new ValueError(`an encrypted payload has no ${KEY_ID_METADATA} in its metadata`);
      const key = this.byId.get(id);
      if (!key) throw new CodecKeyError(`a payload is encrypted with key ${id}, which is not among this process's keys (${[...this.byId.keys()].join(', ')}): add it to CUTOVER_CODEC_KEYS`);
      return temporal.api.common.v1.Payload.decode(decrypt(payload.data ?? new Uint8Array(), key));
    });
  }
}
