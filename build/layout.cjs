// Where the checkout and its build are, and whether the compiled JavaScript and workflow bundles in .cutover/build
// (build/build.ts, run by `npm install` and `npm run build`) were made from the sources as they are now. Plain
// CommonJS with no dependencies: bin/cutover.js asks it before it decides between the build and tsx, so it must cost a
// few milliseconds, not a TypeScript loader.
'use strict';
const { createHash } = require('node:crypto');
const { readFileSync, readdirSync, statSync } = require('node:fs');
const { join, sep } = require('node:path');

/** The checkout this file belongs to: its parent, or, run from the compiled tree (.cutover/build/js/build/), the directory holding .cutover. */
function checkoutOf(dir) {
  const built = `${dir}${sep}`.lastIndexOf(`${sep}.cutover${sep}build`);
  return built >= 0 ? dir.slice(0, built) : join(dir, '..');
}

const ROOT = checkoutOf(__dirname);
const BUILD_DIR = join(ROOT, '.cutover', 'build');
/** Everything the CLI, the worker and the workflow bundles are made of; test/, bench/ and scripts/ run through tsx. */
const SOURCE_DIRS = ['activities', 'build', 'client', 'codec', 'core', 'lab', 'stack', 'transport', 'worker', 'workflows'];
/**
 * The workflow bundles and the CLI bundle hold dependencies' code (@temporalio/workflow, xstate, zod, commander): a
 * changed lock, or a changed install (npm rewrites node_modules/.package-lock.json at each one, `--no-save` too),
 * makes them stale.
 */
const SOURCE_FILES = ['projectRoot.ts', 'package-lock.json', 'tsconfig.json', join('node_modules', '.package-lock.json')];
const SOURCE_EXTENSION = /\.(ts|cts|cjs|js|go|mod)$/;

/** The layout of a build: written by build/build.ts, read by bin/cutover.js, the worker and the tests. */
function buildLayout(dir = BUILD_DIR) {
  return {
    dir,
    /** The compiled tree: one .js per source .ts, at the same path below it, and the .cjs files copied. */
    js: join(dir, 'js'),
    /** The `cutover` command bundled (client/cli.ts), in the tree, which it requires the long-running commands from. */
    cli: join(dir, 'js', 'client', 'cli.bundle.js'),
    /** V8's code cache of what a `cutover` command loads, one per command, written by its first run (build/codeCache.cjs). */
    codeCache: (command) => join(dir, `${/^[a-z][a-z-]{0,30}$/.test(command ?? '') ? command : 'cutover'}.v8cache`),
    /** bundleWorkflowCode's output, without and with the codec's failure converter (CUTOVER_CODEC_KEYS). */
    workflows: join(dir, 'workflows.js'),
    workflowsEncrypted: join(dir, 'workflows-encrypted.js'),
    /** Written last: the sources' stamp at the start of the build that completed. */
    stamp: join(dir, 'stamp'),
  };
}

/** The source files below SOURCE_DIRS, relative to root, in a fixed order. */
function sourceFiles(root = ROOT) {
  const files = [];
  for (const dir of SOURCE_DIRS) walk(root, dir, files);
  return files;
}

function walk(root, dir, files) {
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    // A directory gone (a partial checkout, a move under way) is a stale build, not a crash of every command.
    files.push(dir);
    return;
  }
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(root, path, files);
    else if (SOURCE_EXTENSION.test(entry.name)) files.push(path);
  }
}

/** One line per source file: its path, mtime and size. Editing, adding or removing a file changes it. */
function sourceStamp(root = ROOT) {
  return [...sourceFiles(root), ...SOURCE_FILES].map((path) => statLine(root, path)).join('\n') + '\n';
}

function statLine(root, path) {
  const stat = statSync(join(root, path), { throwIfNoEntry: false });
  return stat ? `${path} ${stat.mtimeMs} ${stat.size}` : `${path} missing`;
}

/**
 * The build's layout when it was made from the current sources; otherwise undefined (none, or stale). With
 * CUTOVER_NO_BUILD=1 always undefined: the sources through tsx and the workflow code bundled at start, as before the
 * build existed (the benchmark's comparison; a debugger on the sources).
 */
function freshBuild(root = ROOT) {
  if (process.env.CUTOVER_NO_BUILD === '1') return undefined;
  const layout = buildLayout(join(root, '.cutover', 'build'));
  let built;
  try {
    built = readFileSync(layout.stamp, 'utf8');
  } catch {
    return undefined;
  }
  return built === sourceStamp(root) ? layout : undefined;
}

/** The Go spawner's sources (transport/goSpawner): a Go module with no dependencies. */
const goSpawnerDir = (root) => join(root, 'transport', 'goSpawner');
const GO_SPAWNER_DIR = goSpawnerDir(ROOT);

/**
 * The Go spawner's program, as `npm install` and `npm run build` build it from its sources now, named by their hash.
 * It lives in .cutover/bin, not in the build, which a build replaces whole: a worker that starts a spawner again after
 * an idle spell must still find the program it chose at its start.
 */
function goSpawnerProgram(root = ROOT) {
  const dir = goSpawnerDir(root);
  const hash = createHash('sha256');
  try {
    for (const name of readdirSync(dir).filter((name) => /\.go$|^go\.mod$/.test(name)).sort()) hash.update(`${name}\0`).update(readFileSync(join(dir, name)));
  } catch {
    // Sources gone (a partial checkout): no program to run, the Node spawner runs the commands.
    return undefined;
  }
  return join(root, '.cutover', 'bin', `cutover-spawner-${hash.digest('hex').slice(0, 16)}`);
}

module.exports = { ROOT, BUILD_DIR, GO_SPAWNER_DIR, buildLayout, sourceFiles, sourceStamp, freshBuild, goSpawnerProgram };
