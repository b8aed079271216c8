#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so there is no build step to forget.
require('tsx/cjs');
require('../client/cli.ts')
  .main(process.argv)
  .then(() => {
    // The worker and stack keep their own handles open; short commands exit as soon as they are done.
    if (!['worker', 'dev', 'demo'].includes(process.argv[2] ?? '')) process.exit(process.exitCode ?? 0);
  });
