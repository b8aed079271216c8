/**
 * Names a plan chooses (roles, hosts, upgrade paths, headers) become property names that code looks values up by.
 * Every JavaScript object already answers to some names (`constructor`, `toString`), and `__proto__` replaces an
 * object's prototype instead of naming an entry: such a name would find a value where the plan defines nothing. The
 * schema refuses them as names, and lookups read own properties only, so neither alone has to be perfect.
 */

/**
 * `__proto__`, `prototype` and the names on Object.prototype. Written out rather than read from Object.prototype, so
 * a workflow that validates its plan decides the same way when it is replayed on another Node version.
 */
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  '__proto__',
  'prototype',
  'constructor',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  'toString',
  'valueOf',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
]);

export function isReservedName(name: string): boolean {
  return RESERVED_NAMES.has(name);
}

export function reservedNameMessage(name: string): string {
  return `"${name}" is a reserved name; choose another`;
}

/** The value a record holds under `key` itself: an inherited one (`constructor`, `toString`) is not the plan's. */
export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
