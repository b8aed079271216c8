// V8's code cache for every CommonJS module a `cutover` process loads from the build and from node_modules, so a
// command skips compiling what an earlier run of it compiled: the CLI's bundle, and the Temporal SDK, gRPC and protobuf
// definitions that `status`, `approve` and the worker load (docs/benchmarks.md, *Performance VI*). Node 20 has no
// module.enableCompileCache (Node 22). v8-compile-cache (npm) takes its cache as soon as a module is compiled, before it
// runs, when V8 has compiled little more than the top level, and hashes each file with SHA-1. This one takes it once
// the command has run (or the worker has started), with every function it ran, and checks each file by its CRC-32.
// Plain CommonJS, like layout.cjs: bin/cutover.js loads it before anything else.
'use strict';
const { randomBytes } = require('node:crypto');
const { W_OK, accessSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname, sep } = require('node:path');
const { Script } = require('node:vm');
const { crc32 } = require('node:zlib');

/**
 * A long-running command (the worker, the stack) keeps its cache from its start, and lets go of the hook and of the
 * cache's memory then: what it requires later is compiled as Node compiles it.
 */
const KEEP_AFTER_MS = 15_000;

/**
 * What a store's entries promise, for readStore to refuse any other: each was scanned by this file's mayImport and
 * found without import(). A store another version wrote (a command still running across a rebuild) counts as none.
 */
const STORE_VERSION = 'cutover-code-cache-2';

/**
 * The store: a 4-byte length, a JSON index { version, entries: [file, source CRC-32, offset, length, data CRC-32] },
 * then each file's cached data. Node 20's V8 does not check cached data it is given: a damaged byte may crash or hang
 * the process, or run other code, so each entry's data is checked by its own CRC-32 before V8 sees it.
 */
function readStore(storeFile) {
  const entries = new Map();
  let bytes;
  try {
    bytes = readFileSync(storeFile);
  } catch {
    return entries;
  }
  try {
    const indexLength = bytes.readUInt32LE(0);
    const index = JSON.parse(bytes.subarray(4, 4 + indexLength).toString('utf8'));
    if (index.version !== STORE_VERSION) return entries;
    const start = 4 + indexLength;
    for (const [file, sourceCrc, offset, length, dataCrc] of index.entries) {
      entries.set(file, { sourceCrc, dataCrc, data: bytes.subarray(start + offset, start + offset + length) });
    }
  } catch {
    // Not a store (cut short, from another version): compiled as if there were none, and written anew.
    entries.clear();
  }
  return entries;
}

/** Written whole or not at all (processes may exit at once); a failure is only a slower next start, never an error. */
function writeStore(storeFile, entries) {
  const index = [];
  const buffers = [];
  let offset = 0;
  for (const [file, { sourceCrc, data }] of entries) {
    index.push([file, sourceCrc, offset, data.length, crc32(data)]);
    buffers.push(data);
    offset += data.length;
  }
  const indexBytes = Buffer.from(JSON.stringify({ version: STORE_VERSION, entries: index }), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(indexBytes.length, 0);
  // Unique on a volume that processes of several containers (each with its own pids) share.
  const partial = `${storeFile}.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    writeFileSync(partial, Buffer.concat([length, indexBytes, ...buffers]), { flag: 'wx' });
    renameSync(partial, storeFile);
  } catch {
    rmSync(partial, { force: true });
  }
}

/** A stored entry for this source whose data is as it was written, or undefined. */
function usable(entry, sourceCrc) {
  return entry !== undefined && entry.sourceCrc === sourceCrc && entry.dataCrc === crc32(entry.data) ? entry.data : undefined;
}

/**
 * Whether a module may call import(). A module compiled here cannot: vm.Script gives import() no loader, and one given
 * one loses it in a cache (nodejs/node#43663). Only a match on a line that starts with `//` does not count: whatever
 * follows is a comment, or text in a template literal. Any other does, in a block comment or a string too, and a
 * comment between `import` and its parenthesis: that only leaves the file to Node.
 */
function mayImport(content) {
  for (const match of content.matchAll(/\bimport\s*(?:\(|\/[/*])/g)) {
    const before = content.slice(content.lastIndexOf('\n', match.index) + 1, match.index).trimStart();
    if (!before.startsWith('//')) return true;
  }
  return false;
}

/** The build's own files and the dependencies' CommonJS; not the sources through tsx, nor a script with a shebang. */
function inScope(content, filename, buildDir) {
  return (filename.startsWith(buildDir) || filename.includes(`${sep}node_modules${sep}`)) && /\.c?js$/.test(filename) && !content.startsWith('#!');
}

/** What Node's loader passes a module's wrapper (lib/internal/modules/helpers.js, makeRequireFunction). */
function requireFor(module) {
  const require = (id) => module.require(id);
  require.resolve = (request, options) => Module._resolveFilename(request, module, false, options);
  require.resolve.paths = (request) => Module._resolveLookupPaths(request, module);
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}

/**
 * Where the cache would change what a process shows or does, Node compiles as before: before Node 20.15 (no
 * zlib.crc32), and where source maps are applied to stack traces or coverage, which V8 gets only from Node's own
 * compile.
 */
function applies() {
  return typeof crc32 === 'function' && !process.sourceMapsEnabled && !process.env.NODE_V8_COVERAGE;
}

function writable(dir) {
  try {
    accessSync(dir, W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * From now on, each cacheable module is compiled with its cached data from storeFile when its file's CRC-32 is the one
 * it was cached with and V8 accepts it. When anything was missing or refused, the store is written again with what
 * this process compiled and what it held besides: when the process exits with 0, or KEEP_AFTER_MS after this call,
 * whichever comes first. A short run that exits otherwise (a mistyped command, a refused plan, `watch` waiting for a
 * person) leaves the store as it was: its next run that ends well writes it.
 */
function installCodeCache(storeFile, buildDir) {
  if (!applies()) return;
  const stored = readStore(storeFile);
  /** Each module compiled here: its source's CRC-32, and the cached data V8 accepted, or its Script to take one from. */
  const compiled = new Map();
  let missing = false;
  let done = false;
  const nodeCompile = Module.prototype._compile;
  const compileWithCache = function (content, filename, format) {
    // An ES module required (Node 20.19's require(esm)) is Node's to load; so is CommonJS that does not compile (below).
    if (done || format === 'module' || !inScope(content, filename, buildDir)) return nodeCompile.call(this, content, filename, format);
    const sourceCrc = crc32(content);
    const cachedData = usable(stored.get(filename), sourceCrc);
    // Only sources found without import() are stored: one found in the store as it was is known to have none.
    if (cachedData === undefined && mayImport(content)) return nodeCompile.call(this, content, filename, format);
    let script;
    try {
      // The wrapper's opening is on the module's first line: its columns are counted from the module's own start.
      script = new Script(Module.wrap(content), { filename, columnOffset: -Module.wrapper[0].length, cachedData });
    } catch {
      // A syntax error is reported as Node reports it.
      return nodeCompile.call(this, content, filename, format);
    }
    const accepted = cachedData !== undefined && !script.cachedDataRejected;
    missing ||= !accepted;
    compiled.set(filename, accepted ? { sourceCrc, data: cachedData } : { sourceCrc, script });
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(this.exports, this.exports, requireFor(this), this, filename, dirname(filename));
  };
  Module.prototype._compile = compileWithCache;
  const keep = (exitCode) => {
    if (done) return;
    done = true;
    if (Module.prototype._compile === compileWithCache) Module.prototype._compile = nodeCompile;
    // Never an error of the command: at worst the next run compiles again.
    try {
      if (missing && exitCode === 0 && writable(dirname(storeFile))) {
        // What this run did not load is kept for the runs that do, if it is still as written.
        const kept = new Map([...stored].filter(([file, entry]) => !compiled.has(file) && entry.dataCrc === crc32(entry.data)));
        for (const [file, { sourceCrc, script, data }] of compiled) kept.set(file, { sourceCrc, data: data ?? script.createCachedData() });
        writeStore(storeFile, kept);
      }
    } catch {}
    stored.clear();
    compiled.clear();
  };
  process.once('exit', (code) => keep(code));
  setTimeout(() => keep(0), KEEP_AFTER_MS).unref();
}

module.exports = { installCodeCache };
