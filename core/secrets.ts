/**
 * Secrets by reference, the pure half: plans name a secret (`env:NAME` or `file:/absolute/path`), never hold it.
 * Commands, probe URLs and headers carry `{{secret:env:NAME}}` templates that the planner and the workflow leave
 * as they are, so only the reference is ever in workflow input or history; the worker resolves them right before
 * use (transport/secrets.ts) and redacts every resolved value from what comes back.
 */
import { type TemplateSpan, templateSpans } from './text';

export type SecretRef = { source: 'env'; name: string } | { source: 'file'; path: string };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `env:NAME` or `file:/path`; the reason it is not one, for the plan's error messages. */
export function parseSecretRef(text: string): { ok: true; ref: SecretRef } | { ok: false; reason: string } {
  const colon = text.indexOf(':');
  const source = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (source === 'env') {
    if (!ENV_NAME.test(rest)) return { ok: false, reason: `"${text}" is not a secret reference: env: takes a variable name (letters, digits, "_"), e.g. env:DB_PASSWORD` };
    return { ok: true, ref: { source: 'env', name: rest } };
  }
  if (source === 'file') {
    if (!rest.startsWith('/') || /[\n\r}]/.test(rest) || rest.endsWith('/')) {
      return { ok: false, reason: `"${text}" is not a secret reference: file: takes an absolute path of a file on the worker, e.g. file:/etc/cutover/db-password` };
    }
    return { ok: true, ref: { source: 'file', path: rest } };
  }
  return { ok: false, reason: `"${text}" is not a secret reference: use env:NAME or file:/absolute/path` };
}

export function secretRefText(ref: SecretRef): string {
  return ref.source === 'env' ? `env:${ref.name}` : `file:${ref.path}`;
}

export type SecretValue = { value: string } | { problem: string };

/**
 * A reference's value as this process finds it: the variable (unset and empty alike are none), or the file with one
 * trailing newline dropped (a file written with `echo` ends in one that is not part of a password). `place` ends the
 * problem's subject (" on this worker"). The file is read by `readFile`, so this module stays free of I/O.
 */
export function readSecretValue(ref: SecretRef, env: NodeJS.ProcessEnv, readFile: (path: string) => string, place = ''): SecretValue {
  if (ref.source === 'env') {
    const value = env[ref.name];
    return value ? { value } : { problem: `the variable ${ref.name} is not set${place}` };
  }
  try {
    return { value: readFile(ref.path).replace(/\r?\n$/, '') };
  } catch (error) {
    return { problem: `the file cannot be read${place}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
}

/** What stands in for a resolved value wherever it would have appeared. */
export function secretLabel(ref: SecretRef): string {
  return `[secret:${secretRefText(ref)}]`;
}

/**
 * `{{secret:...}}` in a command or probe field, as /\{\{\s*secret:([^}]*?)\s*\}\}/g finds it, the reference being
 * the span's body without its trailing blanks. Scanned (core/text.ts), since that regex is quadratic on text such as
 * '{{secret:' followed by many blanks.
 */
const SECRET_HEAD = /\{\{\s*secret:/y;

function secretSpans(text: string): (TemplateSpan & { raw: string })[] {
  return templateSpans(text, SECRET_HEAD).map((span) => ({ ...span, raw: span.body.trimEnd() }));
}

/** The references a text uses, each once, in order. Malformed ones are the plan validator's business. */
export function secretTemplates(text: string): SecretRef[] {
  const seen = new Map<string, SecretRef>();
  for (const { raw } of secretSpans(text)) {
    const parsed = parseSecretRef(raw);
    if (parsed.ok) seen.set(secretRefText(parsed.ref), parsed.ref);
  }
  return [...seen.values()];
}

/** Replaces each `{{secret:REF}}` whose value is known; `values` is keyed by the reference text. */
export function substituteSecrets(text: string, values: ReadonlyMap<string, string>, quote: (value: string) => string = (value) => value): string {
  let out = '';
  let copied = 0;
  for (const { start, end, raw } of secretSpans(text)) {
    const parsed = parseSecretRef(raw);
    const value = parsed.ok ? values.get(secretRefText(parsed.ref)) : undefined;
    if (value === undefined) continue;
    out += text.slice(copied, start) + quote(value);
    copied = end;
  }
  return out + text.slice(copied);
}

/**
 * A value as one single-quoted POSIX shell word: a password with `&`, `$`, spaces or quotes reaches the command
 * whole, and none of it runs as a command (or leaks, half-matched, into an error the redaction would miss).
 */
export function shellQuote(value: string): string {
  return `'${value.split("'").join(`'\\''`)}'`;
}

export interface ResolvedSecret {
  ref: SecretRef;
  value: string;
}

/**
 * Every resolved value replaced by its label. Longer values first, so a secret that contains another is not left
 * half-visible. Empty values are skipped: there is nothing to hide and everything would match.
 */
export function redact(text: string, secrets: readonly ResolvedSecret[]): string {
  const pieces = secrets.flatMap((secret) => {
    const label = secretLabel(secret.ref);
    // A multi-line value (a key file, say) may come back one line at a time, or with other line endings: its longer
    // lines are hidden on their own too.
    const lines = secret.value.includes('\n') ? secret.value.split(/\r?\n/).filter((line) => line.trim().length >= MIN_LINE) : [];
    return [secret.value, ...lines].flatMap((value) => encodings(value).map((encoded) => ({ value: encoded, label })));
  });
  const ordered = pieces.filter((piece) => piece.value.length > 0).sort((a, b) => b.value.length - a.value.length);
  let out = text;
  for (const piece of ordered) out = out.split(piece.value).join(piece.label);
  return out;
}

/**
 * The longest form (see `encodings`) of any of the values that `redact` hides: text cut to size must lose this much
 * at its start so that no cut-off end of one, which no longer matches it, survives the redaction.
 */
export function longestRedacted(secrets: readonly ResolvedSecret[]): number {
  return secrets.reduce((longest, secret) => Math.max(longest, ...encodings(secret.value).map((form) => form.length)), 0);
}

/**
 * The forms a value takes where it comes back: as it is; escaped inside a JSON string (a probe's or a tool's JSON
 * output: quotes, backslashes, control characters), also as tools that escape more write it (Python's json.dumps
 * escapes every non-ASCII character, PowerShell's ConvertTo-Json also & ' < >); percent-encoded (a probe URL, see
 * `urlQuote`), in either case of hex digits and with `+` for a space as forms write it; and shell-quoted (a command
 * line echoed back in an error).
 */
function encodings(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const escape = (text: string, chars: RegExp) => text.replace(chars, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const percent = urlQuote(value);
  return [
    ...new Set([
      value,
      json,
      escape(json, /[^\x00-\x7f]/g),
      escape(json, /[&'<>]/g),
      escape(json, /[^\x00-\x7f]|[&'<>]/g),
      percent,
      percent.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase()),
      percent.replace(/%20/g, '+'),
      // A shell-quoted value without a quote in it still holds the value as it is, which the first form covers.
      ...(value.includes("'") ? [shellQuote(value)] : []),
    ]),
  ];
}

/** A value inside a URL: percent-encoded, so a token with `&`, `#`, `/` or `@` stays one query value or password. */
export function urlQuote(value: string): string {
  return encodeURIComponent(value);
}

/** Lines of a multi-line secret shorter than this (a PEM's closing dashes line is longer) are not worth hiding alone. */
const MIN_LINE = 8;
