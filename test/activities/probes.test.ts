/** Health probes against real local servers: HTTP status and JSON fields, TLS verification, TCP connect, deadlines. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runProbe } from '../../activities/probes';
import { runTask } from '../../activities/runTask';
import { type Probe, planSchemas } from '../../core/plan';
import { createLocalTransport } from '../../transport/local';

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
let handler: Handler;
let requests: IncomingMessage[];
const http = createHttpServer((request, response) => {
  requests.push(request);
  handler(request, response);
});
let certDir: string;
let https: ReturnType<typeof createHttpsServer>;
let httpUrl: string;
let httpsUrl: string;

const json = (status: number, body: unknown): Handler => (_request, response) => {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
};

/** A probe as the plan schema fills it in (method, status, timing defaults). */
const probe = (raw: Record<string, unknown>): Probe => planSchemas().Probe.parse({ deadline: '2s', interval: '100ms', ...raw });

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'cutover-probe-tls-'));
  // A self-signed certificate for 127.0.0.1: trusted only where the probe names it as its CA.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
  https = createHttpsServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, (request, response) => handler(request, response));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  httpsUrl = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => http.close(resolve));
  await new Promise((resolve) => https.close(resolve));
  rmSync(certDir, { recursive: true, force: true });
});
afterEach(() => {
  requests = [];
});
requests = [];

describe('http probe', () => {
  it('passes on the expected status', async () => {
    handler = json(200, { ok: true });
    const result = await runProbe(probe({ kind: 'http', url: `${httpUrl}/health` }), { timeoutMs: 5_000 });
    expect(result).toEqual({ exitCode: 0, outputTail: `try 1: GET ${httpUrl}/health: status 200\n`, timedOut: false });
  });

  it('tries again until healthy', async () => {
    let calls = 0;
    handler = (request, response) => (++calls < 3 ? json(503, { state: 'starting' }) : json(204, {}))(request, response);
    const result = await runProbe(probe({ kind: 'http', url: `${httpUrl}/health`, status: [200, 204] }), { timeoutMs: 5_000 });
    expect(result.exitCode).toBe(0);
    expect(result.outputTail.trim().split('\n')).toEqual([
      `try 1: GET ${httpUrl}/health: status 503, expected 200 or 204`,
      `try 2: GET ${httpUrl}/health: status 503, expected 200 or 204`,
      `try 3: GET ${httpUrl}/health: status 204`,
    ]);
  });

  it('gives up at its deadline, saying what each try saw', async () => {
    handler = json(500, {});
    const started = Date.now();
    const result = await runProbe(probe({ kind: 'http', url: `${httpUrl}/down`, deadline: '1s', interval: '200ms' }), { timeoutMs: 5_000 });
    const elapsed = Date.now() - started;
    expect(result.exitCode).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(2_000);
    expect(requests.length).toBeGreaterThanOrEqual(3);
    expect(result.outputTail).toContain(`try 1: GET ${httpUrl}/down: status 500, expected 200\n`);
    expect(result.outputTail).toMatch(/\[cutover\] not healthy after \d+ tries in [\d.]+ s\n$/);
  });

  it("never runs past the step's timeout", async () => {
    handler = json(500, {});
    const started = Date.now();
    const result = await runProbe(probe({ kind: 'http', url: `${httpUrl}/down`, deadline: '30s', interval: '100ms' }), { timeoutMs: 600 });
    expect(result.exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('matches JSON fields by dotted path', async () => {
    handler = json(200, { version: '4.5', checks: { db: { state: 'up' } }, nodes: [{ id: 'a' }] });
    const url = `${httpUrl}/status`;
    const healthy = await runProbe(probe({ kind: 'http', url, json: { version: '4.5', 'checks.db.state': 'up', 'nodes.0.id': 'a' } }), { timeoutMs: 5_000 });
    expect(healthy.outputTail).toBe(`try 1: GET ${url}: status 200, version="4.5", checks.db.state="up", nodes.0.id="a"\n`);
    const wrong = await runProbe(probe({ kind: 'http', url, json: { version: '4.1-SP1', 'checks.cache': 'up' }, deadline: '100ms' }), { timeoutMs: 5_000 });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.outputTail).toContain(`try 1: GET ${url}: status 200, version is "4.5", expected "4.1-SP1"; checks.cache is missing, expected "up"\n`);
    handler = (_request, response) => response.end('<html>ok</html>');
    const notJson = await runProbe(probe({ kind: 'http', url, json: { version: '4.5' }, deadline: '100ms' }), { timeoutMs: 5_000 });
    expect(notJson.outputTail).toContain('status 200, but the body is not JSON');
  });

  it('verifies TLS by default: a self-signed certificate fails unless its CA is named, or verification is turned off', async () => {
    handler = json(200, {});
    const url = `${httpsUrl}/health`;
    const refused = await runProbe(probe({ kind: 'http', url, deadline: '100ms' }), { timeoutMs: 5_000 });
    expect(refused.exitCode).toBe(1);
    expect(refused.outputTail).toContain(`try 1: GET ${url}: DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate`);
    const withCa = await runProbe(probe({ kind: 'http', url, ca: join(certDir, 'cert.pem') }), { timeoutMs: 5_000 });
    expect(withCa).toMatchObject({ exitCode: 0, outputTail: `try 1: GET ${url}: status 200\n` });
    const unverified = await runProbe(probe({ kind: 'http', url, insecureSkipTlsVerify: true }), { timeoutMs: 5_000 });
    expect(unverified.exitCode).toBe(0);
  });
});

describe('tcp probe', () => {
  it('passes when something listens and fails with the reason when nothing does', async () => {
    const server = createTcpServer((socket) => socket.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const open = await runProbe(probe({ kind: 'tcp', address: '127.0.0.1', port }), { timeoutMs: 5_000 });
      expect(open).toEqual({ exitCode: 0, outputTail: `try 1: tcp 127.0.0.1:${port}: connected\n`, timedOut: false });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const closed = await runProbe(probe({ kind: 'tcp', address: '127.0.0.1', port, deadline: '500ms' }), { timeoutMs: 5_000 });
    expect(closed.exitCode).toBe(1);
    expect(closed.outputTail).toContain(`try 2: tcp 127.0.0.1:${port}: ECONNREFUSED\n`);
  });
});

describe('runTask with a probe', () => {
  it('fills secrets into the request on the worker and redacts them from what comes back', async () => {
    const token = `tok-${Date.now()}-probe`;
    process.env.CUTOVER_PROBE_TOKEN = token;
    handler = (request, response) => json(request.headers.authorization === `Bearer ${token}` ? 200 : 401, {})(request, response);
    try {
      const task = {
        host: 'web-01',
        command: 'described elsewhere',
        transport: { kind: 'local' as const },
        probe: probe({ kind: 'http', url: `${httpUrl}/health?key={{secret:env:CUTOVER_PROBE_TOKEN}}`, headers: { Authorization: 'Bearer {{secret:env:CUTOVER_PROBE_TOKEN}}' } }),
      };
      const result = await runTask(createLocalTransport(), task, { timeoutMs: 5_000 });
      expect(result.exitCode).toBe(0);
      expect(requests[0]?.url).toBe(`/health?key=${token}`);
      expect(result.outputTail).toBe(`try 1: GET ${httpUrl}/health?key=[secret:env:CUTOVER_PROBE_TOKEN]: status 200\n`);
    } finally {
      delete process.env.CUTOVER_PROBE_TOKEN;
    }
  });

  it('percent-encodes a secret in the URL, and hides its JSON-escaped and encoded forms from what comes back', async () => {
    // A token with characters that would split a query (&, #), end a JSON string (") or need escaping (\\).
    const token = `a&b#c "q" \\ ${Date.now()}`;
    process.env.CUTOVER_PROBE_TOKEN = token;
    handler = (request, response) => json(200, { echoed: new URL(request.url ?? '/', httpUrl).searchParams.get('key') })(request, response);
    try {
      const task = {
        host: 'web-01',
        command: 'described elsewhere',
        transport: { kind: 'local' as const },
        // The field is compared with a value that differs from the secret, so the failure line prints both in JSON.
        probe: probe({ kind: 'http', url: `${httpUrl}/health?key={{secret:env:CUTOVER_PROBE_TOKEN}}&x=1`, json: { echoed: 'not it' }, deadline: '100ms' }),
      };
      const result = await runTask(createLocalTransport(), task, { timeoutMs: 5_000 });
      expect(new URL(requests[0]?.url ?? '/', httpUrl).searchParams.get('key')).toBe(token);
      expect(new URL(requests[0]?.url ?? '/', httpUrl).searchParams.get('x')).toBe('1');
      expect(result.exitCode).toBe(1);
      expect(result.outputTail).toContain(
        `try 1: GET ${httpUrl}/health?key=[secret:env:CUTOVER_PROBE_TOKEN]&x=1: status 200, echoed is "[secret:env:CUTOVER_PROBE_TOKEN]", expected "not it"\n`,
      );
      for (const form of [token, JSON.stringify(token).slice(1, -1), encodeURIComponent(token)]) expect(result.outputTail).not.toContain(form);
    } finally {
      delete process.env.CUTOVER_PROBE_TOKEN;
    }
  });

  it("keeps no piece of a secret in a URL when the tries overflow the output tail, wherever the tail's cut falls", async () => {
    // Long enough that its percent-encoded form fills more than a whole tail: a tail of unredacted lines would
    // start inside it. Characters that encoding and JSON escaping both change, and letters no label or line uses.
    const alphabet = '&#" \\@+=?/QXZJKV';
    const token = Array.from({ length: 2_000 }, (_, i) => alphabet[(i * 7 + Math.floor(Math.random() * alphabet.length)) % alphabet.length]).join('');
    process.env.CUTOVER_PROBE_TOKEN = token;
    handler = json(503, {});
    try {
      const task = {
        host: 'web-01',
        command: 'described elsewhere',
        transport: { kind: 'local' as const },
        probe: probe({ kind: 'http', url: `${httpUrl}/health?key={{secret:env:CUTOVER_PROBE_TOKEN}}`, interval: '10ms', deadline: '3s' }),
      };
      const result = await runTask(createLocalTransport(), task, { timeoutMs: 10_000 });
      expect(result.exitCode).toBe(1);
      // The tail overflowed: its first try is long gone.
      expect(result.outputTail).not.toContain('try 1:');
      expect(result.outputTail.length).toBeGreaterThan(4_000);
      for (const form of [token, JSON.stringify(token).slice(1, -1), encodeURIComponent(token)]) {
        for (let at = 0; at + 6 <= form.length; at++) expect(result.outputTail.includes(form.slice(at, at + 6)), `"${form.slice(at, at + 6)}" of a form of the secret`).toBe(false);
      }
      expect(result.outputTail).toContain(`GET ${httpUrl}/health?key=[secret:env:CUTOVER_PROBE_TOKEN]: status 503, expected 200\n`);
    } finally {
      delete process.env.CUTOVER_PROBE_TOKEN;
    }
  });

  it('a secret missing on the worker fails for good, naming it', async () => {
    const task = { host: 'web-01', command: 'echo {{secret:env:CUTOVER_NOT_SET_ANYWHERE}}', transport: { kind: 'local' as const } };
    await expect(runTask(createLocalTransport(), task, { timeoutMs: 5_000 })).rejects.toMatchObject({
      nonRetryable: true,
      type: 'SecretUnavailable',
      message: 'secret env:CUTOVER_NOT_SET_ANYWHERE: the variable CUTOVER_NOT_SET_ANYWHERE is not set on this worker',
    });
  });

  it('drops the start of a long output tail where it cuts through a secret', async () => {
    const secret = 'S3CRET-abcdefghijklmnopqrstuvwxyz-0123456789';
    process.env.CUTOVER_LONG_SECRET = secret;
    try {
      // The secret, then just enough filler that the 4 KiB tail starts 10 characters before the secret's end.
      const command = `printf '%s' "{{secret:env:CUTOVER_LONG_SECRET}}"; head -c ${4096 - 10} /dev/zero | tr '\\0' y`;
      const result = await runTask(createLocalTransport(), { host: 'h', command, transport: { kind: 'local' } }, { timeoutMs: 10_000 });
      expect(result.exitCode).toBe(0);
      for (let length = 6; length <= secret.length; length++) {
        expect(result.outputTail.includes(secret.slice(-length)), `a ${length}-character end of the secret`).toBe(false);
      }
      expect(result.outputTail.startsWith('[cutover] …')).toBe(true);
      expect(result.outputTail.endsWith('yyyy')).toBe(true);
    } finally {
      delete process.env.CUTOVER_LONG_SECRET;
    }
  });

  it('drops enough of a cut tail that no end of a JSON-escaped or percent-encoded secret survives', async () => {
    // Each of these characters takes 3 in the percent-encoded form, 2 in the JSON-escaped one.
    const secret = `a"b&c#d e\\f/g@h"i&j#k l\\m-${Date.now()}`;
    process.env.CUTOVER_LONG_SECRET = secret;
    try {
      for (const form of [encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]) {
        // The form, as a tool's JSON or a URL would print it, then filler so that the 4 KiB tail starts 10
        // characters into it: longer than the secret itself by far more than 10.
        const command = `printf '%s' '${form}'; head -c ${4096 - form.length + 10} /dev/zero | tr '\\0' y; : {{secret:env:CUTOVER_LONG_SECRET}}`;
        const result = await runTask(createLocalTransport(), { host: 'h', command, transport: { kind: 'local' } }, { timeoutMs: 10_000 });
        expect(result.exitCode).toBe(0);
        for (let length = 6; length <= form.length; length++) {
          expect(result.outputTail.includes(form.slice(-length)), `a ${length}-character end of ${form}`).toBe(false);
        }
        expect(result.outputTail.startsWith('[cutover] …')).toBe(true);
      }
    } finally {
      delete process.env.CUTOVER_LONG_SECRET;
    }
  });
});
