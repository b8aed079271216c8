/**
 * Health probes for verify steps, run by the worker itself: an HTTP(S) request (expected status, optional JSON
 * fields, TLS verified unless the plan explicitly opts out) or a TCP connect, tried again every `interval` until one
 * passes or the deadline comes. The answer has the shape of a command's (exit 0 = healthy, an output tail saying
 * what each try saw), so the batch activity, the status and the guided failure treat both alike.
 */
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { rootCertificates } from 'node:tls';
import { type Probe, durationMs } from '../core/plan';
import { type CommandResult, appendTail } from '../transport/transport';

type HttpProbe = Extract<Probe, { kind: 'http' }>;
type TcpProbe = Extract<Probe, { kind: 'tcp' }>;

/** One try: healthy or not, and one line saying what was seen. */
interface TryResult {
  ok: boolean;
  line: string;
}

/** A try never takes longer than this, however far away the deadline is. */
const TRY_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 1 << 20;

export interface ProbeOptions {
  /** The step's timeout: the probe stops by then even if its own deadline is later. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Hides secrets in each try's line before it joins the output tail. Every line repeats the filled-in URL, and the
   * tail is cut to size at any point, which may fall inside a secret: a piece of it no longer matches it afterwards.
   */
  redact?: (text: string) => string;
}

export async function runProbe(probe: Probe, { timeoutMs, signal, redact = (text) => text }: ProbeOptions): Promise<CommandResult> {
  const started = Date.now();
  const deadline = started + Math.min(durationMs(probe.deadline), timeoutMs);
  const interval = durationMs(probe.interval);
  const ca = probe.kind === 'http' && probe.ca ? await readFile(probe.ca, 'utf8') : undefined;
  let tail = '';
  for (let attempt = 1; ; attempt++) {
    const budget = Math.max(1, Math.min(TRY_TIMEOUT_MS, deadline - Date.now()));
    const result = probe.kind === 'http' ? await tryHttp(probe, ca, budget) : await tryTcp(probe, budget);
    tail = appendTail(tail, redact(`try ${attempt}: ${result.line}\n`));
    if (result.ok) return { exitCode: 0, outputTail: tail, timedOut: false };
    if (signal?.aborted || Date.now() + interval >= deadline) {
      tail = appendTail(tail, `[cutover] not healthy after ${attempt} tries in ${Math.round((Date.now() - started) / 100) / 10} s\n`);
      return { exitCode: 1, outputTail: tail, timedOut: false };
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

function tryTcp(probe: TcpProbe, budgetMs: number): Promise<TryResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: probe.address, port: probe.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, line: `tcp ${probe.address}:${probe.port}: no connection within ${budgetMs} ms` });
    }, budgetMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: true, line: `tcp ${probe.address}:${probe.port}: connected` });
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, line: `tcp ${probe.address}:${probe.port}: ${error.code ?? error.message}` });
    });
  });
}

function tryHttp(probe: HttpProbe, ca: string | undefined, budgetMs: number): Promise<TryResult> {
  const label = `${probe.method} ${probe.url}`;
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(probe.url);
    } catch {
      resolve({ ok: false, line: `${label}: not a URL` });
      return;
    }
    const https = url.protocol === 'https:';
    const options = {
      method: probe.method,
      headers: probe.headers,
      signal: AbortSignal.timeout(budgetMs),
      ...(https ? { rejectUnauthorized: !probe.insecureSkipTlsVerify, ...(ca ? { ca: [...rootCertificates, ca] } : {}) } : {}),
    };
    const onResponse = (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      response.on('error', (error) => resolve({ ok: false, line: `${label}: ${error.message}` }));
      response.on('end', () => resolve(judge(probe, label, response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
    };
    const request = (https ? httpsRequest : httpRequest)(url, options, onResponse);
    request.on('error', (error: NodeJS.ErrnoException) => {
      const reason = error.name === 'AbortError' || error.name === 'TimeoutError' ? `no answer within ${budgetMs} ms` : `${error.code ? `${error.code}: ` : ''}${error.message}`;
      resolve({ ok: false, line: `${label}: ${reason}` });
    });
    request.end();
  });
}

function judge(probe: HttpProbe, label: string, status: number, body: string): TryResult {
  const expected = Array.isArray(probe.status) ? probe.status : [probe.status];
  if (!expected.includes(status)) return { ok: false, line: `${label}: status ${status}, expected ${expected.join(' or ')}` };
  if (!probe.json) return { ok: true, line: `${label}: status ${status}` };
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return { ok: false, line: `${label}: status ${status}, but the body is not JSON` };
  }
  const wrong: string[] = [];
  for (const [path, want] of Object.entries(probe.json)) {
    const found = jsonField(document, path);
    if (found.present && found.value === want) continue;
    wrong.push(found.present ? `${path} is ${JSON.stringify(found.value)}, expected ${JSON.stringify(want)}` : `${path} is missing, expected ${JSON.stringify(want)}`);
  }
  if (wrong.length > 0) return { ok: false, line: `${label}: status ${status}, ${wrong.join('; ')}` };
  return { ok: true, line: `${label}: status ${status}, ${Object.entries(probe.json).map(([path, want]) => `${path}=${JSON.stringify(want)}`).join(', ')}` };
}

/** A dotted path into a JSON document: object keys, and array indexes as numbers (`items.0.id`). */
export function jsonField(document: unknown, path: string): { present: true; value: unknown } | { present: false } {
  let current: unknown = document;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.prototype.hasOwnProperty.call(current, part)) return { present: false };
    current = (current as Record<string, unknown>)[part];
  }
  return { present: true, value: current };
}
