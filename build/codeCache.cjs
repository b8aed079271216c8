// Requires the CLI's bundle with a V8 code cache, so a command skips compiling what an earlier one compiled: about a
// third of `cutover validate`'s start (docs/benchmarks.md, *The CLI's code cache*). Node 20 has no
// module.enableCompileCache (Node 22), and v8-compile-cache (npm) takes its cache as soon as a module is compiled,
// before it runs, when V8 has compiled little more than the top level: it kept about half the gain measured here. This
// one is taken when the process exits, with every function the command ran, and only when there was none or V8
// refused it (another Node, other V8 flags, another bundle). Plain CommonJS, like layout.cjs: bin/cutover.js loads it
// before anything else.
'use strict';
const { readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname } = require('node:path');
const { Script } = require('node:vm');

/** The cache as the last run left it; none (a fresh build, or a file unreadable to this user) means compile. */
function readCache(cacheFile) {
  try {
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

/** Written whole or not at all (processes may exit at once); a failure is only a slower next start, never an error. */
function writeCache(cacheFile, script) {
  const partial = `${cacheFile}.${process.pid}`;
  try {
    writeFileSync(partial, script.createCachedData());
    renameSync(partial, cacheFile);
  } catch {
    rmSync(partial, { force: true });
  }
}

/** `require(file)`, with its compiled code taken from cacheFile when V8 accepts it, and left there for the next run. */
function requireWithCodeCache(file, cacheFile) {
  const cachedData = readCache(cacheFile);
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) process.once('exit', () => writeCache(cacheFile, script));
  const module = new Module(file, require.main);
  module.filename = file;
  // In require.cache as Node's own require would put it, so a later require(file) gets this module, not a second copy.
  Module._cache[file] = module;
  script.runInThisContext().call(module.exports, module.exports, Module.createRequire(file), module, file, dirname(file));
  module.loaded = true;
  return module.exports;
}

module.exports = { requireWithCodeCache };
