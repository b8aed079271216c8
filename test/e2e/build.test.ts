/**
 * The build `npm install` makes (build/build.ts): `cutover` runs it while it is made from the current sources, answers
 * as the sources through tsx do, and a build the sources moved away from is not used.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildLayout, freshBuild, sourceStamp } from '../../build/layout.cjs';
import { ROOT } from '../helpers';
import { CLI, cliEnv } from './cli';

const scratch = mkdtempSync(join(tmpdir(), 'cutover-build-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Preloaded into `cutover`: on exit it writes which of the two ways of running it the process loaded. */
const PROBE = join(scratch, 'probe.cjs');
writeFileSync(
  PROBE,
  `process.on('exit', () => { const files = Object.keys(require.cache);
     process.stderr.write('\\nprobe ' + JSON.stringify({ compiled: files.some((f) => f.endsWith('cli.bundle.js')), tsx: files.some((f) => f.includes('/node_modules/tsx/')) })); });`,
);

/** Node compiles everything itself where source maps apply (build/codeCache.cjs): these tests need the cache on. */
function withoutSourceMaps(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _options, NODE_V8_COVERAGE: _coverage, ...rest } = env;
  return rest;
}

function cutover(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['-r', PROBE, CLI, ...args], { cwd: ROOT, env: withoutSourceMaps(cliEnv(env)), encoding: 'utf8' });
  const [stderr = '', probe = '{}'] = result.stderr.split('\nprobe ');
  return { code: result.status, stdout: result.stdout, stderr, loaded: JSON.parse(probe) as { compiled?: boolean; tsx?: boolean } };
}

describe('the build made at install', () => {
  it('is what cutover runs while fresh, and answers validate as the sources through tsx do', () => {
    expect(freshBuild(), 'the build is stale or missing: npm run build (npm test does it first)').toBeDefined();
    const broken = join(scratch, 'broken.yaml');
    writeFileSync(broken, 'fleet: Not A Name\nsource: 4.1\nhosts: []\n');
    const compiled = cutover(['validate', broken]);
    const sources = cutover(['validate', broken], { CUTOVER_NO_BUILD: '1' });
    expect(compiled.loaded).toEqual({ compiled: true, tsx: false });
    expect(sources.loaded).toEqual({ compiled: false, tsx: true });
    expect(compiled.stderr).toMatch(/is not a valid upgrade plan \(\d+ problems\)/);
    expect({ code: compiled.code, stdout: compiled.stdout, stderr: compiled.stderr }).toEqual({ code: sources.code, stdout: sources.stdout, stderr: sources.stderr });
    const valid = cutover(['validate', join(ROOT, 'examples', 'appv-lab.yaml')]);
    expect(valid.loaded).toEqual({ compiled: true, tsx: false });
    expect(valid.stdout).toMatch(/valid plan for fleet appv-lab, 4 hosts/);
  });

  it('keeps a V8 code cache per command: written by its first run, left as it is while V8 accepts it', () => {
    // `cutover` keeps its caches beside the build; the rest uses a cache of its own, as other test files run `cutover` too.
    const build = freshBuild()!;
    rmSync(build.codeCache('validate'), { force: true });
    expect(cutover(['validate', join(ROOT, 'examples', 'appv-lab.yaml')]).code).toBe(0);
    expect(statSync(build.codeCache('validate')).size, 'cutover validate left a code cache of what it loaded').toBeGreaterThan(100_000);
    const store = join(scratch, 'validate.v8cache');
    const validate = () => {
      const script = `require(${JSON.stringify(join(ROOT, 'build', 'codeCache.cjs'))}).installCodeCache(${JSON.stringify(store)}, ${JSON.stringify(build.dir)});
        require(${JSON.stringify(build.cli)}).main(['node', 'cutover', 'validate', ${JSON.stringify(join(ROOT, 'examples', 'appv-lab.yaml'))}]).then(() => process.exit(process.exitCode ?? 0));`;
      return spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: withoutSourceMaps(cliEnv()), encoding: 'utf8' });
    };
    writeFileSync(store, 'not a code cache');
    const refused = validate();
    const written = statSync(store);
    const accepted = validate();
    expect(refused.stdout).toMatch(/valid plan for fleet appv-lab, 4 hosts/);
    expect([accepted.status, accepted.stdout, accepted.stderr]).toEqual([refused.status, refused.stdout, refused.stderr]);
    expect(written.size, 'the garbage was replaced by the code of what the run loaded').toBeGreaterThan(100_000);
    expect(statSync(store).ino, 'V8 accepted that cache: the next run did not write another').toBe(written.ino);
  });

  describe('its cache of a dependency', () => {
    const dir = join(scratch, 'dependency');
    const dependency = join(dir, 'node_modules', 'answer', 'index.js');
    const store = join(dir, 'run.v8cache');
    /** A process that installs the cache, as bin/cutover.js does, and prints what the dependency's function returns. */
    const run = () => {
      const script = `require(${JSON.stringify(join(ROOT, 'build', 'codeCache.cjs'))}).installCodeCache(${JSON.stringify(store)}, ${JSON.stringify(join(dir, 'build'))});
        Promise.resolve(require(${JSON.stringify(dependency)})()).then((answer) => process.stdout.write(String(answer)));`;
      const result = spawnSync(process.execPath, ['-e', script], { env: withoutSourceMaps(process.env), encoding: 'utf8', timeout: 20_000 });
      return { out: result.stdout, err: result.stderr, code: result.status };
    };
    const fresh = (source: string) => {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dirname(dependency), { recursive: true });
      writeFileSync(dependency, source);
    };

    it('compiles it from its file as it is now, not from a cache of it as it was, even at the same length', () => {
      fresh("module.exports = () => 'before';\n");
      expect(run().out).toBe('before');
      const cached = statSync(store);
      expect(run().out).toBe('before');
      expect(statSync(store).ino, 'the second run took the cache, and wrote none').toBe(cached.ino);
      // Same length: V8's own check of a cache compares the source's length only.
      writeFileSync(dependency, "module.exports = () => 'after!';\n");
      expect(run().out).toBe('after!');
    });

    it.each([
      ['plainly', "module.exports = () => import('node:os').then((os) => typeof os.cpus);\n"],
      ['after a banner comment on its line', "/*! answer v1 | MIT */module.exports = () => import('node:os').then((os) => typeof os.cpus);\n"],
      ['with a comment before its parenthesis', "module.exports = () => import /* the OS */ ('node:os').then((os) => typeof os.cpus);\n"],
    ])('leaves a dependency that calls import() %s to Node: compiled here, import() has no loader', (_how, source) => {
      fresh(source);
      expect([run(), run(), run()]).toEqual(Array(3).fill({ out: 'function', err: '', code: 0 }));
    });

    it('does not hand V8 cached data damaged on disk, and writes it anew', () => {
      fresh("module.exports = () => ['a', 'b', 'c'].map((letter) => letter.toUpperCase()).join('');\n");
      expect(run().out).toBe('ABC');
      const bytes = readFileSync(store);
      const dataStart = 4 + bytes.readUInt32LE(0);
      // The code after V8's header changed, which V8 in Node 20 does not check: it would run it, crash or hang.
      for (let i = dataStart + 64; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0x5a;
      writeFileSync(store, bytes);
      const damaged = statSync(store);
      expect(run()).toEqual({ out: 'ABC', err: '', code: 0 });
      const replaced = statSync(store);
      expect(replaced.ino, 'the damaged store was replaced').not.toBe(damaged.ino);
      expect(run()).toEqual({ out: 'ABC', err: '', code: 0 });
      expect(statSync(store).ino, 'the next run took the new store, and wrote none').toBe(replaced.ino);
    });
  });

  it('is stale once a source file is edited, added or removed', () => {
    // A checkout of its own: the real one's sources stay untouched for the other tests.
    const root = join(scratch, 'checkout');
    for (const dir of ['activities', 'build', 'client', 'codec', 'core', 'lab', 'stack', 'transport', 'worker', 'workflows']) mkdirSync(join(root, dir), { recursive: true });
    for (const file of ['projectRoot.ts', 'package-lock.json', 'tsconfig.json', 'core/plan.ts']) writeFileSync(join(root, file), 'x');
    const built = () => {
      mkdirSync(buildLayout(join(root, '.cutover', 'build')).dir, { recursive: true });
      writeFileSync(buildLayout(join(root, '.cutover', 'build')).stamp, sourceStamp(root));
    };
    built();
    expect(freshBuild(root)).toBeDefined();
    appendFileSync(join(root, 'core', 'plan.ts'), 'y');
    expect(freshBuild(root)).toBeUndefined();
    built();
    writeFileSync(join(root, 'workflows', 'new.ts'), 'x');
    expect(freshBuild(root)).toBeUndefined();
    built();
    rmSync(join(root, 'workflows', 'new.ts'));
    expect(freshBuild(root)).toBeUndefined();
    built();
    expect(freshBuild(root)).toBeDefined();
  });
});
