/**
 * Who may use the codec server, decided from a request's head before its body is read: the Bearer token is one of an
 * allowlist of tokens, or a JWT that the identity provider signed (its JWKS) for an allowed identity, or (a Web UI
 * without login on this machine) nothing but the origin, which the server checks for every request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type JWTVerifyGetKey, createRemoteJWKSet, jwtVerify } from 'jose';
import { UserError } from '../core/errors';
import { type SecretRef, secretRefText } from '../core/secrets';
import { readReference } from './keys';

/** A request refused, with its HTTP status and a one-line reason for the caller. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export type Authenticate = (request: IncomingMessage) => Promise<void>;

export interface JwtSettings {
  /** The identity provider's key set, e.g. https://login.example.com/.well-known/jwks.json. */
  jwks: string;
  issuer: string;
  audience?: string;
  /** The claim naming the person, e.g. email or sub. */
  claim: string;
  allow: string[];
}

function bearer(request: IncomingMessage): string {
  const presented = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  if (!presented) throw new Refusal(401, 'a Bearer token is required (Authorization: Bearer ...)');
  return presented;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * The allowed Bearer tokens: the reference's value, one token a line (a file may list one per person, so one can be
 * revoked alone; blank lines and # comments are skipped), each at least 16 characters. Kept as digests.
 */
export function tokenAuth(ref: SecretRef, env: NodeJS.ProcessEnv): Authenticate {
  const lines = readReference("the codec server's token", ref, env)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0 || lines.some((line) => line.length < 16)) {
    throw new UserError(`the codec server's tokens (${secretRefText(ref)}) must be one or more lines of at least 16 characters each`);
  }
  const allowed = lines.map(digest);
  return async (request) => {
    const presented = digest(bearer(request));
    // Every allowed token is compared, in constant time, so the answer's timing tells nothing about any of them.
    const matches = allowed.filter((token) => timingSafeEqual(presented, token));
    if (matches.length === 0) throw new Refusal(401, 'the Bearer token is not one the codec server allows');
  };
}

/** A login's access token (what a Web UI with a login forwards): verified against the provider's keys, then the allowlist. */
export function jwtAuth(settings: JwtSettings, keys: JWTVerifyGetKey = createRemoteJWKSet(new URL(settings.jwks))): Authenticate {
  const allowed = new Set(settings.allow);
  return async (request) => {
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(bearer(request), keys, { issuer: settings.issuer, ...(settings.audience ? { audience: settings.audience } : {}) }));
    } catch (error) {
      if (error instanceof Refusal) throw error;
      throw new Refusal(401, `the Bearer token is not a valid login of ${settings.issuer}: ${(error as Error).message}`);
    }
    const identity = claims[settings.claim];
    if (typeof identity !== 'string' || !allowed.has(identity)) throw new Refusal(403, `${settings.claim} ${typeof identity === 'string' ? identity : '(none)'} may not decode`);
  };
}

/** A Web UI without login on this machine: its origin (checked for every request) is all there is to check. */
export function localUiAuth(): Authenticate {
  return async (request) => {
    if (request.headers.origin === undefined) throw new Refusal(403, 'this codec server answers the local Web UI only (a request with its Origin)');
  };
}
