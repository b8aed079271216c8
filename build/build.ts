/**
 * `npm run build`, and the end of `npm install`: the sources compiled to CommonJS, one .js per .ts (esbuild, the
 * transform tsx applies at run time, done once), and the workflow code bundled as the worker would bundle it at start
 * (bundleWorkflowCode), all in .cutover/build (gitignored). bin/cutover.js, the worker and the tests use them only
 * while build/layout.cjs finds them made from the current sources.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Plugin, build } from 'esbuild';
import { FAILURE_CONVERTER_PATH } from '../codec/dataConverter';
import { bundleWorkflows } from './prebuilt';
import { buildGoSpawner } from './goSpawner';
import { BUILD_DIR, ROOT, type BuildLayout, buildLayout, freshBuild, sourceFiles, sourceStamp } from './layout.cjs';

/** Per file, not bundled: a command loads only the modules it requires (client/cli.ts requires on demand). */
async function compileSources(files: string[], outdir: string): Promise<void> {
  const typescript = files.filter((file) => /\.ts$/.test(file) && !file.endsWith('.d.ts'));
  await build({
    entryPoints: [...typescript, 'projectRoot.ts'].map((file) => join(ROOT, file)),
    outdir,
    outbase: ROOT,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  // The plain CommonJS modules (the spawner's command runner, the failure converter, the layout) are required by path.
  for (const file of files.filter((file) => file.endsWith('.cjs'))) {
    mkdirSync(dirname(join(outdir, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(outdir, file));
  }
}

/**
 * Loaded from the compiled tree, not copied into the CLI's bundle, though the bundle imports them: their classes are
 * checked with instanceof (UserError, the codec's key errors) against errors thrown by the worker, the stack and the
 * codec server, which the bundle requires from the tree.
 */
const SHARED = ['core/errors.ts', 'codec/codec.ts'];
/** The long-running commands: the bundle requires them from the tree when they run (client/cli.ts). */
const FROM_TREE = ['worker/index.ts', 'stack/demo.ts', 'codec/serve.ts'];
/** Dependencies the CLI requires on demand (client/onDemand.ts) or that carry native code: left to node_modules. */
const EXTERNAL_PACKAGES = ['@temporalio/*', 'ssh2', 'log-update', 'jose', '@noble/*', 'xstate', 'proper-lockfile'];

/** Where a source is required from outside a bundle: its compiled file in the tree, or the bundle made of it. */
type Outside = Record<string, string>;

/** Each source at its compiled file in the tree. */
function inTree(outdir: string, files: string[]): Outside {
  return Object.fromEntries(files.map((file) => [file, join(outdir, file).replace(/\.ts$/, '.js')]));
}

/** The SHARED and FROM_TREE sources, each at its compiled file in the tree; the worker as its own bundle. */
function outsideCli(outdir: string): Outside {
  return { ...inTree(outdir, [...SHARED, ...FROM_TREE]), [WORKER_ENTRY]: workerBundle(outdir) };
}

/** Resolves imports of the sources in `outside` to the file given there, required beside the bundle, not copied in. */
function fromTree(outside: Outside, bundleDir: string): Plugin {
  const keep = new Map(Object.entries(outside).map(([file, path]) => [join(ROOT, file), path]));
  return {
    name: 'cutover-from-tree',
    setup(esbuild) {
      esbuild.onResolve({ filter: /^\./ }, async (args) => {
        if (args.pluginData === 'cutover-from-tree') return undefined;
        const resolved = await esbuild.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, pluginData: 'cutover-from-tree' });
        const path = keep.get(resolved.path);
        return path === undefined ? undefined : { path: `./${relative(bundleDir, path)}`, external: true };
      });
    },
  };
}

/**
 * The `cutover` command as one file with commander, zod and yaml inside: about 170 fewer files to find and read at
 * every start than the tree (measured with `npm run bench -- --cli`, docs/benchmarks.md). What a command needs on
 * demand stays outside.
 */
async function bundleCli(outdir: string): Promise<void> {
  await bundle(join(ROOT, 'client', 'cli.ts'), join(outdir, 'client', 'cli.bundle.js'), outsideCli(outdir));
}

const WORKER_ENTRY = 'worker/index.ts';
const workerBundle = (outdir: string) => join(outdir, 'worker', 'index.bundle.js');

/**
 * `cutover worker` as one file with zod, yaml, Cutover's activities and transports: about 200 modules fewer to find
 * and load at its start (docs/benchmarks.md, *A lean worker*). The Temporal SDK stays in node_modules.
 */
async function bundleWorker(outdir: string): Promise<void> {
  await bundle(join(ROOT, WORKER_ENTRY), workerBundle(outdir), inTree(outdir, SHARED));
}

async function bundle(entry: string, outfile: string, outside: Outside): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL_PACKAGES,
    plugins: [fromTree(outside, dirname(outfile))],
    logLevel: 'warning',
  });
}

/** As the worker would bundle at start (build/prebuilt.ts), without and with the codec's failure converter. */
async function writeWorkflowBundle(file: string, failureConverterPath?: string): Promise<void> {
  const bundle = await bundleWorkflows(failureConverterPath);
  writeFileSync(file, bundle.code);
}

/** A build moved aside by a swap that did not finish removing it (a build killed then): nothing reads it. */
function removeOldBuilds(): void {
  const parent = dirname(BUILD_DIR);
  for (const name of existsSync(parent) ? readdirSync(parent) : []) {
    if (name.startsWith(`${basename(BUILD_DIR)}-old-`)) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

/**
 * Swapped in whole, so a reader sees the old build or the new one, never half of one. The old one is moved aside
 * before it is removed: a command still running writes its code cache to .cutover/build by name (build/codeCache.cjs),
 * which would make removing it in place fail. Failing to remove the old one is no failure of the new one.
 */
function swapIn(dir: string): void {
  const old = `${BUILD_DIR}-old-${process.pid}`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(BUILD_DIR)) renameSync(BUILD_DIR, old);
  renameSync(dir, BUILD_DIR);
  try {
    rmSync(old, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // Removed by the next build (removeOldBuilds).
  }
}

export async function buildAll(log: (line: string) => void): Promise<BuildLayout> {
  removeOldBuilds();
  // Taken before any source is read: a file edited during the build leaves the build stale, never wrongly fresh.
  const stamp = sourceStamp();
  const layout = buildLayout(`${BUILD_DIR}-${process.pid}`);
  rmSync(layout.dir, { recursive: true, force: true });
  const started = performance.now();
  await compileSources(sourceFiles(), layout.js);
  await bundleCli(layout.js);
  await bundleWorker(layout.js);
  const compiled = performance.now();
  await writeWorkflowBundle(layout.workflows);
  await writeWorkflowBundle(layout.workflowsEncrypted, FAILURE_CONVERTER_PATH);
  writeFileSync(layout.stamp, stamp);
  swapIn(layout.dir);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  log(`built ${BUILD_DIR}: sources compiled in ${seconds(compiled - started)}, workflow bundles in ${seconds(performance.now() - compiled)}`);
  return buildLayout();
}

/** Builds unless the build is fresh already (`--force`: anyway), so `npm test` can ask for it at no cost on a fresh clone. */
async function main(argv: string[]): Promise<void> {
  const log = (line: string) => console.log(`cutover: ${line}`);
  const fresh = freshBuild();
  // Built apart from the rest (.cutover/bin), so it can be missing from a fresh build: deleted, or Go installed since.
  buildGoSpawner(log);
  if (fresh && !argv.includes('--force')) return log(`${fresh.dir} is built from the current sources (npm run build -- --force rebuilds)`);
  await buildAll(log);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`cutover: build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
