#!/usr/bin/env node
// Runs the compiled JavaScript that `npm install` and `npm run build` make (.cutover/build) while it was made from the
// sources as they are; otherwise the TypeScript sources through tsx, so an edit takes effect at once, without a build
// step to forget.
const { installCodeCache } = require('../build/codeCache.cjs');
const { freshBuild } = require('../build/layout.cjs');

function loadCli() {
  const build = freshBuild();
  if (build) {
    installCodeCache(build.codeCache(process.argv[2]), build.dir);
    return require(build.cli);
  }
  noteSources();
  require('tsx/cjs');
  return require('../client/cli.ts');
}

// A developer at a terminal learns why the start is slower; scripts and pipes see nothing.
function noteSources() {
  if (process.stderr.isTTY) console.error('cutover: running the sources through tsx (no build, or sources changed since it); `npm run build` starts faster');
}

loadCli()
  .main(process.argv)
  .then(() => {
    // The worker and stack keep their own handles open; short commands exit as soon as they are done.
    if (!['worker', 'dev', 'demo'].includes(process.argv[2] ?? '')) process.exit(process.exitCode ?? 0);
  });
