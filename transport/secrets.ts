/**
 * Secrets by reference, the worker's half: every reference is resolved here, inside the activity that uses it,
 * right before use. The values live only in this process's memory for the duration of one step; what goes back to
 * Temporal (output tails, error messages) passes through `redact` first. The pure parsing is core/secrets.ts.
 */
import { readFile } from 'node:fs/promises';
import { type ResolvedSecret, type SecretRef, longestRedacted, parseSecretRef, readSecretValue, redact, secretRefText, secretTemplates, shellQuote, substituteSecrets } from '../core/secrets';
import { PermanentError } from './transport';

/** A secret the plan names is not on this worker: no retry will make it appear, the operator must provide it. */
export class SecretUnavailable extends PermanentError {
  override readonly name = 'SecretUnavailable';
}

export async function resolveSecret(ref: SecretRef | string): Promise<ResolvedSecret> {
  if (typeof ref === 'string') {
    const parsed = parseSecretRef(ref);
    if (!parsed.ok) throw new SecretUnavailable(parsed.reason);
    ref = parsed.ref;
  }
  const read = readSecretValue(ref, process.env, await readAhead(ref), ' on this worker');
  if ('problem' in read) throw new SecretUnavailable(`secret ${secretRefText(ref)}: ${read.problem}`);
  return { ref, value: read.value };
}

/**
 * A file reference read without blocking the worker's event loop, which every batch's heartbeat runs on (a file on a
 * slow mount, or a FIFO, would hold them all), and handed to readSecretValue as it was read, or as it failed.
 */
async function readAhead(ref: SecretRef): Promise<(path: string) => string> {
  if (ref.source !== 'file') return () => '';
  return readFile(ref.path, 'utf8').then(
    (text) => () => text,
    (error: unknown) => () => {
      throw error;
    },
  );
}

/**
 * What a step learned about secrets: the values it resolved, to substitute and to hide again. One per step, so a
 * value resolved for one host's command is hidden from that command's output only where it could appear.
 */
export class SecretScope {
  private readonly resolved: ResolvedSecret[] = [];

  /** Fills in every `{{secret:...}}` of `text` (a probe's URL or header) with the value as it is. */
  async fill(text: string, quote?: (value: string) => string): Promise<string> {
    const refs = secretTemplates(text);
    if (refs.length === 0) return text;
    const values = new Map<string, string>();
    for (const ref of refs) {
      const secret = await this.resolve(ref);
      values.set(secretRefText(ref), secret.value);
    }
    return substituteSecrets(text, values, quote);
  }

  /** Fills in every `{{secret:...}}` of a shell command, each value as one quoted word. */
  fillCommand(command: string): Promise<string> {
    return this.fill(command, shellQuote);
  }

  async resolve(ref: SecretRef | string): Promise<ResolvedSecret> {
    const secret = await resolveSecret(ref);
    this.resolved.push(secret);
    return secret;
  }

  /** The variables of env: secrets resolved: a command on the worker's machine gets them substituted, not inherited. */
  get envNames(): string[] {
    return [...new Set(this.resolved.flatMap((secret) => (secret.ref.source === 'env' ? [secret.ref.name] : [])))];
  }

  get empty(): boolean {
    return this.resolved.length === 0;
  }

  redact(text: string): string {
    return this.resolved.length === 0 ? text : redact(text, this.resolved);
  }

  /**
   * The longest form (as it is, JSON-escaped, percent-encoded, shell-quoted) of a value resolved: an output tail cut
   * to size drops this much at its start, so no piece of a value cut in half is left where the redaction misses it.
   */
  get longest(): number {
    return longestRedacted(this.resolved);
  }
}
