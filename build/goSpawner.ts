/**
 * The Go spawner's build (transport/goSpawner), run by build/build.ts: apart from the rest of the build, in
 * .cutover/bin, since a worker keeps the program it chose at its start.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { GO_SPAWNER_DIR, ROOT, goSpawnerProgram } from './layout.cjs';

/**
 * How Go runs here: the toolchain installed, never one it would download (GOTOOLCHAIN=local); this module alone, not a
 * workspace around the checkout; for this machine, whatever GOOS and GOARCH say; and without asking git for the
 * commit (a checkout owned by another user makes git refuse, and the build with it).
 */
const GO_ENVIRONMENT = (() => {
  const { GOOS: _os, GOARCH: _arch, ...rest } = process.env;
  return { ...rest, GOTOOLCHAIN: 'local', GOWORK: 'off', GOFLAGS: '-buildvcs=false', CGO_ENABLED: '0' };
})();

/** `go` on the PATH, else where Go's own installer puts it. */
export function goCommand(): string | undefined {
  for (const go of [process.env.GO ?? 'go', '/usr/local/go/bin/go']) {
    if (spawnSync(go, ['version'], { stdio: 'ignore', env: GO_ENVIRONMENT }).status === 0) return go;
  }
  return undefined;
}

/**
 * The Go spawner (transport/goSpawner), unless it is built from its sources as they are. Without Go, or when it
 * cannot build, the worker spawns commands from the Node spawner (transport/commandRunner.cjs): the same behaviour,
 * at about three times the cost per command (docs/benchmarks.md); the install goes on and says so.
 */
export function buildGoSpawner(log: (line: string) => void): void {
  const program = goSpawnerProgram();
  if (!program || existsSync(program)) return;
  const go = goCommand();
  if (!go) return log('no Go found (`go` on the PATH, or GO=path): the worker will spawn commands from Node, slower per command (see README)');
  const partial = `${program}.${process.pid}`;
  mkdirSync(dirname(program), { recursive: true });
  // Only the standard library, so nothing is downloaded; static (CGO_ENABLED=0), so it runs wherever the worker does.
  // Each build of other sources leaves its program beside this one: a worker started before keeps running its own.
  const built = spawnSync(go, ['build', '-trimpath', '-o', partial, '.'], { cwd: GO_SPAWNER_DIR, env: GO_ENVIRONMENT, encoding: 'utf8' });
  if (built.status !== 0) {
    rmSync(partial, { force: true });
    return log(`the Go spawner did not build (${go} build in ${GO_SPAWNER_DIR}): ${(built.stderr || built.error?.message || '').trim()}; the worker will spawn commands from Node`);
  }
  renameSync(partial, program);
  log(`built the Go spawner: ${relative(ROOT, program)}`);
}
