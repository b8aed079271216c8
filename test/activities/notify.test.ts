/**
 * The notification activity against a local HTTP server: what it posts, which refusals Temporal retries, and that a
 * webhook's URL (a secret) never appears in an error, whatever went wrong.
 */
import { randomUUID } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type NotifyRequest, createNotifyActivities } from '../../activities/notify';

const VARIABLE = 'CUTOVER_TEST_NOTIFY_URL';
let server: Server;
let base: string;
/** A port nothing listens on. */
let closedPort: number;
const posted: { method?: string; type?: string; body: string }[] = [];

beforeAll(async () => {
  // The path says how to answer: /status/503 answers 503, anything else 200.
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      posted.push({ method: request.method, type: request.headers['content-type'], body });
      const status = Number(/\/status\/(\d+)/.exec(request.url ?? '')?.[1] ?? 200);
      response.writeHead(status).end(status === 200 ? 'ok' : `no_service at ${request.url ?? ''}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  closedPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
});
afterAll(() => server.close());
afterEach(() => {
  delete process.env[VARIABLE];
});

function send(url: string | undefined, body: unknown = { event: 'completed' }) {
  if (url === undefined) delete process.env[VARIABLE];
  else process.env[VARIABLE] = url;
  const request: NotifyRequest = { target: 'ops', url: `env:${VARIABLE}`, body };
  const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  return env.run(createNotifyActivities().sendNotification, request);
}

async function refusal(url: string | undefined): Promise<ApplicationFailure> {
  const error = await send(url).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

describe('sendNotification', () => {
  it('posts the body as JSON to the URL the reference holds', async () => {
    expect(await send(`${base}/hooks/${randomUUID()}`, { event: 'gate-opened', text: 'é → ✓' })).toEqual({ status: 200 });
    expect(posted.at(-1)).toEqual({ method: 'POST', type: 'application/json', body: '{"event":"gate-opened","text":"é → ✓"}' });
  });

  it('leaves a busy or broken webhook to Temporal’s retries, and does not retry one that refuses the message', async () => {
    const secret = randomUUID();
    const busy = await refusal(`${base}/status/503/${secret}`);
    expect(busy).toMatchObject({ nonRetryable: false, type: 'NotifyFailed', message: 'notify target ops: HTTP 503: no_service at [secret:env:CUTOVER_TEST_NOTIFY_URL]' });
    expect((await refusal(`${base}/status/429/${secret}`)).nonRetryable).toBe(false);
    const gone = await refusal(`${base}/status/404/${secret}`);
    expect(gone).toMatchObject({ nonRetryable: true, type: 'NotifyRefused' });
    const closed = await refusal(`http://127.0.0.1:${closedPort}/${secret}`);
    expect(closed).toMatchObject({ nonRetryable: false, message: expect.stringMatching(/^notify target ops: fetch failed \(.*ECONNREFUSED/) });
    for (const error of [busy, gone, closed]) expect(error.message).not.toContain(secret);
  });

  it('refuses at once, naming the reference and never the value, when the worker has no URL there', async () => {
    expect(await refusal(undefined)).toMatchObject({ nonRetryable: true, message: `notify target ops: secret env:${VARIABLE}: the variable ${VARIABLE} is not set on this worker` });
    const notUrl = await refusal('hooks.slack.com/services/T0/B0/s3cret');
    expect(notUrl).toMatchObject({ nonRetryable: true, message: `notify target ops: env:${VARIABLE} holds not an http:// or https:// URL` });
    expect((await refusal('ftp://example.com/s3cret')).message).not.toContain('s3cret');
  });
});
