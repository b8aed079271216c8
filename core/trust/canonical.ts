/**
 * Canonical JSON: object keys sorted by UTF-16 code units, no whitespace, numbers and strings as JSON.stringify
 * writes them (the same rules as RFC 8785, JCS, for the values a JSON document can hold). Two equal values always
 * give the same text, so a digest or a signature covers the value, not one spelling of it.
 */

/** Deeper than any plan or statement; stops a hostile document from exhausting the stack. */
const MAX_DEPTH = 64;

/** Throws a TypeError for what JSON cannot hold (undefined in an array, NaN, functions, class instances). */
export function canonicalJson(value: unknown): string {
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError(`canonical JSON: nested deeper than ${MAX_DEPTH} levels`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not a JSON number`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item) => writeItem(item, depth + 1)).join(',')}]`;
  if (isPlainObject(value)) return writeObject(value, depth + 1);
  throw new TypeError(`canonical JSON: a ${describe(value)} is not a JSON value`);
}

function writeItem(item: unknown, depth: number): string {
  if (item === undefined) throw new TypeError('canonical JSON: an array holds undefined');
  return write(item, depth);
}

/** Properties whose value is undefined are left out, as JSON.stringify leaves them out on the wire. */
function writeObject(object: Record<string, unknown>, depth: number): string {
  const keys = Object.keys(object)
    .filter((key) => object[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${write(object[key], depth)}`).join(',')}}`;
}

/** Realm-independent: objects made in the workflow sandbox have that context's Object.prototype. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function describe(value: unknown): string {
  if (typeof value !== 'object' || value === null) return typeof value;
  return (value as object).constructor?.name ?? 'object';
}
