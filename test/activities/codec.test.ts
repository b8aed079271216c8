/**
 * The codec and the codec server without Temporal: keys read by reference and refused when wrong, AES-GCM with a
 * fresh nonce and the key id, rotation, and the HTTP server's answers to the Web UI and to everyone else.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTrustActivities } from '../../activities/trust';
import { AesGcmCodec, ENCRYPTED_ENCODING, codecUserError } from '../../codec/codec';
import { loadCodecKeys } from '../../codec/keys';
import { type CodecServer, startCodecServer } from '../../codec/server';
import { UserError } from '../../core/errors';

const key = () => randomBytes(32).toString('base64');
const env = { CUTOVER_CODEC_KEYS: 'new=env:CUTOVER_CODEC_KEY_NEW,old=env:CUTOVER_CODEC_KEY_OLD', CUTOVER_CODEC_KEY_NEW: key(), CUTOVER_CODEC_KEY_OLD: key() };
const plain = defaultPayloadConverter.toPayload({ host: 'appv-02', command: 'labhost appv-02 install 4.5' });

describe('codec keys', () => {
  it('reads keys from variables and files; none set means encryption off', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-codec-'));
    writeFileSync(join(dir, 'k.key'), `${key()}\n`);
    expect(loadCodecKeys({ CUTOVER_CODEC_KEYS: `f=file:${join(dir, 'k.key')}` })?.map((k) => [k.id, k.key.length])).toEqual([['f', 32]]);
    expect(loadCodecKeys({})).toBeUndefined();
  });

  it("counts its key files among the worker's own files, which no plan may name as a secret", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cutover-codec-')), 'k.key');
    process.env.CUTOVER_CODEC_KEYS = `f=file:${file}`;
    try {
      expect((await createTrustActivities({ lab: true }).readTrustPolicy()).workerFiles).toContain(file);
    } finally {
      delete process.env.CUTOVER_CODEC_KEYS;
    }
  });

  it.each([
    ['a key of the wrong length', { CUTOVER_CODEC_KEYS: 'k=env:CUTOVER_CODEC_KEY_K', CUTOVER_CODEC_KEY_K: randomBytes(16).toString('base64') }, /codec key k \(env:CUTOVER_CODEC_KEY_K\) is not 32 bytes/],
    ['a key that is not base64', { CUTOVER_CODEC_KEYS: 'k=env:CUTOVER_CODEC_KEY_K', CUTOVER_CODEC_KEY_K: 'not a key!' }, /codec key k \(env:CUTOVER_CODEC_KEY_K\) is not base64/],
    ['a variable that is not set', { CUTOVER_CODEC_KEYS: 'k=env:CUTOVER_CODEC_KEY_K' }, /the variable CUTOVER_CODEC_KEY_K is not set/],
    ['an unreadable file', { CUTOVER_CODEC_KEYS: 'k=file:/nonexistent/k.key' }, /codec key k \(file:\/nonexistent\/k.key\): the file cannot be read: ENOENT/],
    ['an unknown scheme', { CUTOVER_CODEC_KEYS: 'k=vault:x' }, /is not a secret reference/],
  ])('refuses %s with a UserError that names the key, not its value', (_what, settings, reason) => {
    expect(() => loadCodecKeys(settings)).toThrow(UserError);
    expect(() => loadCodecKeys(settings)).toThrow(reason);
  });
});

describe('AesGcmCodec', () => {
  const codec = new AesGcmCodec(loadCodecKeys(env) ?? []);

  it('encrypts with the newest key and a fresh nonce each time, and decrypts', async () => {
    const [a, b] = await codec.encode([plain, plain]);
    expect(Buffer.from(a?.metadata?.encoding ?? []).toString()).toBe(ENCRYPTED_ENCODING);
    expect(Buffer.from(a?.metadata?.['encryption-key-id'] ?? []).toString()).toBe('new');
    expect(Buffer.from(a?.data ?? []).toString('latin1')).not.toContain('appv-02');
    expect(Buffer.compare(a?.data ?? new Uint8Array(), b?.data ?? new Uint8Array())).not.toBe(0);
    expect(defaultPayloadConverter.fromPayload((await codec.decode([a!]))[0]!)).toEqual({ host: 'appv-02', command: 'labhost appv-02 install 4.5' });
  });

  it('decrypts what an older key encrypted, passes plaintext through, and refuses an unknown key or a relabelled payload', async () => {
    const oldOnly = new AesGcmCodec((loadCodecKeys(env) ?? []).slice(1));
    const [sealed] = await oldOnly.encode([plain]);
    expect(await codec.decode([sealed!])).toEqual([expect.objectContaining({ data: plain.data })]);
    expect(await codec.decode([plain])).toEqual([plain]);
    const [fresh] = await codec.encode([plain]);
    await expect(oldOnly.decode([fresh!])).rejects.toThrow(/encrypted with key new, which is not among this process's keys \(old\)/);
    const relabelled = { ...fresh, metadata: { ...fresh?.metadata, 'encryption-key-id': Buffer.from('old') } };
    await expect(codec.decode([relabelled])).rejects.toThrow(/does not decrypt/);
  });

  it('tells a CLI user which key is missing, or that keys are, as a UserError (no stack)', async () => {
    const [fresh] = await codec.encode([plain]);
    const missingKey = await new AesGcmCodec((loadCodecKeys(env) ?? []).slice(1)).decode([fresh!]).catch((error: unknown) => error);
    expect(codecUserError(missingKey)).toEqual(new UserError("a payload is encrypted with key new, which is not among this process's keys (old): add it to CUTOVER_CODEC_KEYS"));
    let noKeys: unknown;
    try {
      defaultPayloadConverter.fromPayload(fresh!);
    } catch (error) {
      noKeys = error;
    }
    expect(codecUserError(noKeys)?.message).toMatch(/the run's payloads are encrypted and this process has no codec keys: set CUTOVER_CODEC_KEYS/);
    expect(codecUserError(new Error('something else'))).toBeUndefined();
  });
});

describe('the codec server', () => {
  const UI = 'http://localhost:8233';
  const token = `token-${randomBytes(12).toString('hex')}`;
  let withToken: CodecServer;
  let localUi: CodecServer;
  const codec = new AesGcmCodec(loadCodecKeys(env) ?? []);
  const json = (payloads: Payload[]) => ({
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      data: Buffer.from(p.data ?? []).toString('base64'),
    })),
  });

  beforeAll(async () => {
    withToken = await startCodecServer({ port: 0, origins: [UI], token: 'env:CUTOVER_CODEC_SERVER_TOKEN' }, codec, { CUTOVER_CODEC_SERVER_TOKEN: token });
    localUi = await startCodecServer({ port: 0, origins: [UI], localUi: true }, codec);
  });
  afterAll(async () => {
    await withToken?.close();
    await localUi?.close();
  });

  const post = (server: CodecServer, path: string, headers: Record<string, string>, body: unknown) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers }, body: JSON.stringify(body) });

  it('decodes and encodes for a request with the token, under any path prefix, with CORS for the UI', async () => {
    const [sealed] = await codec.encode([plain]);
    const response = await post(withToken, '/default/decode', { Authorization: `Bearer ${token}`, Origin: UI }, json([sealed!]));
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe(UI);
    const decoded = (await response.json()) as { payloads: { data: string }[] };
    expect(JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString())).toMatchObject({ host: 'appv-02' });
    const encoded = (await (await post(withToken, '/encode', { Authorization: `Bearer ${token}` }, json([plain]))).json()) as { payloads: { metadata: Record<string, string> }[] };
    expect(Buffer.from(encoded.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCRYPTED_ENCODING);
  });

  it('answers the UI\'s preflight for its origin only', async () => {
    const preflight = (origin: string) => fetch(`${withToken.url}/decode`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace,authorization' } });
    const allowed = await preflight(UI);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
    expect((await preflight('https://evil.example')).status).toBe(403);
  });

  it('refuses a request without the token, with a wrong one, or from another origin', async () => {
    const [sealed] = await codec.encode([plain]);
    const body = json([sealed!]);
    const none = await post(withToken, '/decode', { Origin: UI }, body);
    expect([none.status, none.headers.get('www-authenticate'), await none.text()]).toEqual([401, 'Bearer', 'a Bearer token is required (Authorization: Bearer ...)\n']);
    expect((await post(withToken, '/decode', { Authorization: 'Bearer guess-guess-guess' }, body)).status).toBe(401);
    expect((await post(withToken, '/decode', { Authorization: `Bearer ${token}`, Origin: 'https://evil.example' }, body)).status).toBe(403);
    expect((await post(localUi, '/decode', {}, body)).status).toBe(403);
    expect((await post(localUi, '/decode', { Origin: UI }, body)).status).toBe(200);
  });

  it('takes any token of an allowlist file, one a line, and no other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cutover-codec-tokens-'));
    const [alice, bob] = [`alice-${randomBytes(12).toString('hex')}`, `bob-${randomBytes(12).toString('hex')}`];
    writeFileSync(join(dir, 'tokens'), `# one per person\n${alice}\n\n${bob}\n`);
    const listed = await startCodecServer({ port: 0, origins: [UI], token: `file:${join(dir, 'tokens')}` }, codec);
    try {
      const statuses = await Promise.all([alice, bob, 'carol-0123456789abcdef', '# one per person'].map(async (presented) => (await post(listed, '/encode', { Authorization: `Bearer ${presented}` }, json([plain]))).status));
      expect(statuses).toEqual([200, 200, 401, 401]);
    } finally {
      await listed.close();
    }
  });

  it('takes a login the identity provider signed for an allowed person, and refuses any other', async () => {
    const issuer = 'https://login.example.com/';
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const stranger = await generateKeyPair('ES256');
    const jwks = createServer((_request, response) => {
      void exportJWK(publicKey).then((jwk) => response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [{ ...jwk, kid: 'k', alg: 'ES256' }] })));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    const login = (email: string, options: { key?: Parameters<SignJWT["sign"]>[0]; issuer?: string; expires?: string } = {}) =>
      new SignJWT({ email }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer(options.issuer ?? issuer).setAudience('temporal-ui').setExpirationTime(options.expires ?? '5m').sign(options.key ?? privateKey);
    const server = await startCodecServer({ port: 0, origins: [UI], jwt: { jwks: jwksUrl, issuer, audience: 'temporal-ui', allow: ['alice@example.com'] } }, codec);
    try {
      const ask = async (token: string) => {
        const response = await post(server, '/encode', { Authorization: `Bearer ${token}`, Origin: UI }, json([plain]));
        return `${response.status} ${response.status === 200 ? '' : await response.text()}`.trim();
      };
      expect(await ask(await login('alice@example.com'))).toBe('200');
      expect(await ask(await login('bob@example.com'))).toBe('403 email bob@example.com may not decode');
      expect(await ask(await login('alice@example.com', { key: stranger.privateKey }))).toMatch(/^401 the Bearer token is not a valid login of https:\/\/login.example.com\//);
      expect(await ask(await login('alice@example.com', { issuer: 'https://elsewhere.example/' }))).toMatch(/^401 .*"iss" claim/);
      expect(await ask(await login('alice@example.com', { expires: '-1m' }))).toMatch(/^401 .*"exp" claim/);
    } finally {
      await server.close();
      await new Promise((resolve) => jwks.close(resolve));
    }
    await expect(startCodecServer({ port: 0, origins: [UI], jwt: { jwks: jwksUrl, issuer, allow: [] } }, codec)).rejects.toThrow(/list who may decode/);
  });

  it('refuses a body that is not payloads, naming the field, and settings that do not hold', async () => {
    const bad = await post(withToken, '/decode', { Authorization: `Bearer ${token}` }, { payloads: [{ data: 'not base64!' }] });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/is not base64[^]*payloads\[0\]\.data/);
    await expect(startCodecServer({ host: '0.0.0.0', port: 0, origins: [UI], localUi: true }, codec)).rejects.toThrow(/--local-ui authenticates nobody, so it listens on loopback only/);
    await expect(startCodecServer({ port: 0, origins: [UI] }, codec)).rejects.toThrow(/give exactly one of --token/);
    await expect(startCodecServer({ port: 0, origins: [UI], token: 'env:CUTOVER_CODEC_SERVER_TOKEN' }, codec, {})).rejects.toThrow(/the variable CUTOVER_CODEC_SERVER_TOKEN is not set/);
  });
});
