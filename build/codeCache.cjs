// V8's code cache for every CommonJS module a `cutover` process loads from the build and from node_modules, so a
// command skips compiling what an earlier run of it compiled: the CLI's bundle, and the Temporal SDK, gRPC and protobuf
// definitions that `status`, `approve` and the worker load (docs/benchmarks.md, *The compile cache*). Node 20 has no
// module.enableCompileCache (Node 22). v8-compile-cache (npm) takes its cache as soon as a module is compiled, before it
// runs, when V8 has compiled little more than the top level, and hashes each file with SHA-1. This one takes it once
// the command has run (or the worker has started), with every function it ran, and checks each file by its CRC-32.
// Plain CommonJS, like layout.cjs: bin/cutover.js loads it before anything else.
'use strict';
const { readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname, sep } = require('node:path');
const { Script, constants } = require('node:vm');
const { crc32 } = require('node:zlib');

/**
 * A long-running command (the worker, the stack) keeps its cache from its start, and lets go of the hook and of the
 * cache's memory then: what it requires later is compiled as Node compiles it.
 */
const KEEP_AFTER_MS = 15_000;

/** The store: a 4-byte length, a JSON index of [file, crc, offset, length], then each file's cached data. */
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
    const data = 4 + indexLength;
    for (const [file, crc, offset, length] of index) entries.set(file, { crc, data: bytes.subarray(data + offset, data + offset + length) });
  } catch {
    // Garbage (a partial write by an older version, a disk error): compiled as if there were none, and written anew.
    entries.clear();
  }
  return entries;
}

/** Written whole or not at all (processes may exit at once); a failure is only a slower next start, never an error. */
function writeStore(storeFile, entries) {
  const index = [];
  const buffers = [];
  let offset = 0;
  for (const [file, { crc, data }] of entries) {
    index.push([file, crc, offset, data.length]);
    buffers.push(data);
    offset += data.length;
  }
  const indexBytes = Buffer.from(JSON.stringify(index), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(indexBytes.length, 0);
  const partial = `${storeFile}.${process.pid}`;
  try {
    writeFileSync(partial, Buffer.concat([length, indexBytes, ...buffers]));
    renameSync(partial, storeFile);
  } catch {
    rmSync(partial, { force: true });
  }
}

/** The build's own files and the dependencies' CommonJS; not the sources through tsx, nor a script with a shebang. */
function cacheable(content, filename, buildDir) {
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
 * From now on, each cacheable module is compiled with its cached data from storeFile when V8 accepts it and the file's
 * CRC-32 is the one it was cached with. The store is written again, with what this process compiled, when anything was
 * missing or refused: when the process exits, or KEEP_AFTER_MS after this call, whichever comes first.
 */
function installCodeCache(storeFile, buildDir) {
  const stored = readStore(storeFile);
  /** Each module compiled here: its CRC-32, and its Script, or the cached data V8 accepted. */
  const compiled = new Map();
  let missing = false;
  const nodeCompile = Module.prototype._compile;
  const compileWithCache = function (content, filename, format) {
    // An ES module required (Node 20.19's require(esm)) is Node's to load; so is CommonJS that does not compile (below).
    if (format === 'module' || !cacheable(content, filename, buildDir)) return nodeCompile.call(this, content, filename, format);
    const crc = crc32(content);
    const entry = stored.get(filename);
    const cachedData = entry && entry.crc === crc ? entry.data : undefined;
    let script;
    try {
      script = new Script(Module.wrap(content), { filename, cachedData, importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
    } catch {
      // A syntax error is reported as Node reports it.
      return nodeCompile.call(this, content, filename, format);
    }
    const accepted = cachedData !== undefined && !script.cachedDataRejected;
    missing ||= !accepted;
    compiled.set(filename, accepted ? { crc, data: cachedData } : { crc, script });
    const wrapper = script.runInThisContext({ displayErrors: true });
    return wrapper.call(this.exports, this.exports, requireFor(this), this, filename, dirname(filename));
  };
  Module.prototype._compile = compileWithCache;
  let done = false;
  const keep = () => {
    if (done) return;
    done = true;
    if (Module.prototype._compile === compileWithCache) Module.prototype._compile = nodeCompile;
    // Never an error of the command: at worst the next run compiles again.
    try {
      if (missing) writeStore(storeFile, new Map([...compiled].map(([file, { crc, script, data }]) => [file, { crc, data: data ?? script.createCachedData() }])));
    } catch {}
    stored.clear();
    compiled.clear();
  };
  process.once('exit', keep);
  setTimeout(keep, KEEP_AFTER_MS).unref();
}

module.exports = { installCodeCache };
