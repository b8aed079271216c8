// The V8 flags a worker process runs with. A process cannot change its own heap's layout once started
// (v8.setFlagsFromString has no effect on it then), so whoever starts a worker passes them in NODE_OPTIONS: the
// stack of `npm start` and `cutover dev` (bin/cutover.js sets them before it starts), `npm run worker`, the benchmark.
// Plain CommonJS: bin/cutover.js loads it before anything else.
'use strict';

/**
 * V8's young generation kept at 1 MiB a half instead of growing to 16: the idle worker holds about 30 MiB less
 * (docs/benchmarks.md, *A lean worker*). The worker allocates little that dies young once it polls.
 */
const WORKER_V8_FLAGS = ['--max-semi-space-size=1'];

/** NODE_OPTIONS with the worker's flags added to what it holds, unless it sets them already. */
function workerNodeOptions(nodeOptions = '') {
  const missing = WORKER_V8_FLAGS.filter((flag) => !nodeOptions.includes(flag.split('=')[0]));
  return [nodeOptions, ...missing].filter(Boolean).join(' ');
}

module.exports = { WORKER_V8_FLAGS, workerNodeOptions };
