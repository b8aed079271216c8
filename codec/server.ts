/**
 * `cutover codec-server`: /encode and /decode as the Temporal Web UI (and `temporal --codec-endpoint`) call them
 * (POST, JSON `{payloads: [...]}` with base64 fields, the X-Namespace header), with CORS for the UI's origins. Each
 * request is authenticated (codec/auth.ts): its `Authorization: Bearer` token is one of the allowed tokens (a
 * reference: one token, or a file of them, one a line), or a login the identity provider signed for an allowed
 * person (the token a Web UI with a login forwards), or, for a UI without a login on this machine (`cutover dev`),
 * the request comes from an allowed origin to a server that listens on loopback only. Everything else is refused (401 or 403) before its body is read.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { CODEC_ENV_PREFIX } from '../core/codecKeys';
import { UserError } from '../core/errors';
import { parseSecretRef } from '../core/secrets';
import { type Authenticate, Refusal, jwtAuth, localUiAuth, tokenAuth } from './auth';

/** A history of 10,000 hosts decodes in pieces, each far below this; the cap keeps a stray upload from filling memory. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

const origin = z.url({ protocol: /^https?$/, error: 'is not the http(s) address of a Web UI, e.g. https://temporal.example.com' }).transform((url) => new URL(url).origin);

/** The server's settings, from the command's flags (strings) or the stack. */
export const codecServerSettings = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.coerce.number().int().min(0).max(65535).default(8888),
    origins: z.array(origin).min(1, 'name the Web UI\'s origin, e.g. --origin https://temporal.example.com'),
    token: z
      .string()
      .transform((text, ctx) => {
        const parsed = parseSecretRef(text);
        if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
        else if (parsed.ref.source === 'env' && !parsed.ref.name.startsWith(CODEC_ENV_PREFIX)) {
          ctx.addIssue({ code: 'custom', message: `env:${parsed.ref.name} must be named ${CODEC_ENV_PREFIX}..., so that no plan can name it and no command inherits it` });
        } else return parsed.ref;
        return z.NEVER;
      })
      .optional(),
    jwt: z
      .strictObject({
        jwks: z.url({ protocol: /^https?$/, error: 'is not the http(s) address of a key set (JWKS)' }),
        issuer: z.string().min(1, 'name the issuer of the logins (--issuer)'),
        audience: z.string().min(1).optional(),
        claim: z.string().min(1).default('email'),
        allow: z.array(z.string().min(1)).min(1, 'list who may decode (--allow alice@example.com ...)'),
      })
      .optional(),
    localUi: z.boolean().default(false),
  })
  .superRefine((settings, ctx) => {
    if ([Boolean(settings.token), Boolean(settings.jwt), settings.localUi].filter(Boolean).length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message: 'give exactly one of --token env:NAME|file:/path (Bearer tokens), --jwks URL with --issuer and --allow (a login the UI forwards) and --local-ui (a UI without login on this machine)',
      });
    }
    if (settings.localUi && !LOOPBACK.test(settings.host)) {
      ctx.addIssue({ code: 'custom', path: ['host'], message: `--local-ui authenticates nobody, so it listens on loopback only, not on ${settings.host}` });
    }
  });
export type CodecServerSettings = z.input<typeof codecServerSettings>;

const base64 = z.base64('is not base64');
const payloadsBody = z.strictObject({
  payloads: z.array(z.strictObject({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() })).max(100_000),
});
type JsonPayload = z.infer<typeof payloadsBody>['payloads'][number];

function fromJson({ metadata, data }: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')])),
    data: Buffer.from(data ?? '', 'base64'),
  };
}

function toJson({ metadata, data }: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value ?? new Uint8Array()).toString('base64')])),
    data: Buffer.from(data ?? new Uint8Array()).toString('base64'),
  };
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Refusal(413, `the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Refusal(400, 'the body is not JSON');
  }
}

function corsHeaders(request: IncomingMessage, origins: string[]): Record<string, string> {
  const from = request.headers.origin;
  if (!from || !origins.includes(from)) return {};
  return {
    'Access-Control-Allow-Origin': from,
    // The UI sends cookies with "include credentials" on; an allowed origin may.
    'Access-Control-Allow-Credentials': 'true',
    'Access-Control-Allow-Methods': 'POST, OPTIONS',
    'Access-Control-Allow-Headers': 'Content-Type, X-Namespace, Authorization, Authorization-Extras',
    'Access-Control-Max-Age': '600',
    Vary: 'Origin',
  };
}

function send(response: ServerResponse, status: number, headers: Record<string, string>, body?: string): void {
  response.writeHead(status, { ...headers, ...(body === undefined ? {} : { 'Content-Type': status < 300 ? 'application/json' : 'text/plain; charset=utf-8' }) });
  response.end(body);
}

/** Every request: an allowed origin (when it has one, as a browser's has), then the server's authentication. */
async function admit(request: IncomingMessage, origins: string[], authenticate: Authenticate): Promise<void> {
  const from = request.headers.origin;
  if (from !== undefined && !origins.includes(from)) throw new Refusal(403, `origin ${from} is not among the codec server's origins`);
  await authenticate(request);
}

async function answer(request: IncomingMessage, codec: PayloadCodec, origins: string[], authenticate: Authenticate): Promise<string> {
  // Only the last part of the path counts (the protocol's rule), so the server can be mounted under any prefix.
  const action = new URL(request.url ?? '/', 'http://codec').pathname.split('/').pop();
  if (action !== 'encode' && action !== 'decode') throw new Refusal(404, 'the codec server serves /encode and /decode');
  if (request.method !== 'POST') throw new Refusal(405, `${request.method} is not POST`);
  await admit(request, origins, authenticate);
  const body = payloadsBody.safeParse(await readBody(request));
  if (!body.success) throw new Refusal(400, `the body is not {"payloads": [{"metadata": {...}, "data": "..."}]} with base64 values:\n${z.prettifyError(body.error)}`);
  const payloads = body.data.payloads.map(fromJson);
  try {
    const converted = action === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    return JSON.stringify({ payloads: converted.map(toJson) });
  } catch (error) {
    throw new Refusal(400, `cannot ${action}: ${(error as Error).message}`);
  }
}

export interface CodecServer {
  url: string;
  close(): Promise<void>;
}

/** Parses the settings (a UserError with every problem), resolves the token, and listens. */
export async function startCodecServer(input: CodecServerSettings, codec: PayloadCodec, env: NodeJS.ProcessEnv = process.env): Promise<CodecServer> {
  const parsed = codecServerSettings.safeParse(input);
  if (!parsed.success) throw new UserError(`The codec server's settings are not valid:\n${z.prettifyError(parsed.error)}`);
  const settings = parsed.data;
  const authenticate = settings.token ? tokenAuth(settings.token, env) : settings.jwt ? jwtAuth(settings.jwt) : localUiAuth();
  const server: Server = createServer((request, response) => {
    const cors = corsHeaders(request, settings.origins);
    if (request.method === 'OPTIONS') {
      send(response, cors['Access-Control-Allow-Origin'] ? 204 : 403, cors);
      return;
    }
    answer(request, codec, settings.origins, authenticate).then(
      (body) => send(response, 200, cors, body),
      (error: unknown) => {
        const refusal = error instanceof Refusal ? error : new Refusal(500, 'internal error');
        if (refusal.status === 401) cors['WWW-Authenticate'] = 'Bearer';
        send(response, refusal.status, cors, `${refusal.message}\n`);
        // A refused request's unread body is dropped with its connection.
        if (!request.complete) request.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new UserError(`The codec server cannot listen on ${settings.host}:${settings.port}: ${error.message}`)));
    server.listen(settings.port, settings.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return {
    url: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
