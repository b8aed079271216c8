/** Running the real `cutover` command (bin/cutover.js) as a child process, the way a user does. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ROOT } from '../helpers';

export const CLI = join(ROOT, 'bin', 'cutover.js');

export interface CliResult {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliOptions {
  /** Added to a clean environment (no TEMPORAL_* or CUTOVER_* from the test process); undefined removes a key. */
  env?: Record<string, string | undefined>;
  /** Killed (SIGKILL) after this long; the result then has signal set. */
  timeoutMs?: number;
}

/** The test process's environment without any Temporal or Cutover settings, plus the given ones. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('TEMPORAL_') && !key.startsWith('CUTOVER_')) env[key] = value;
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Starts `node bin/cutover.js ARGS` in the project root; `done` resolves (never rejects) when it has exited. */
export function startCutover(args: string[], options: CliOptions = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<CliResult>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ args, code: null, signal: null, stdout, stderr: `${stderr}\n(spawn failed: ${error.message})`, ms: Date.now() - started });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ args, code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
  return { child, done };
}

export function cutover(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCutover(args, options).done;
}

/** For assertion messages: what the command printed. */
export function describeRun(result: CliResult): string {
  return `cutover ${result.args.join(' ')} → code ${result.code}${result.signal ? ` (${result.signal})` : ''} after ${result.ms} ms\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** Exit 0; returns stdout. */
export function expectOk(result: CliResult): string {
  expect(result.code, describeRun(result)).toBe(0);
  return result.stdout;
}

/** Exit 0 and stdout is JSON; returns it parsed. */
export function expectJson<T>(result: CliResult): T {
  const stdout = expectOk(result);
  try {
    return JSON.parse(stdout) as T;
  } catch (error) {
    throw new Error(`stdout is not JSON (${(error as Error).message}):\n${describeRun(result)}`);
  }
}

/**
 * A mistake the user can fix: exit code 1, a message on stderr starting "cutover: " that matches every pattern,
 * and no stack trace. Returns stderr.
 */
export function expectUserError(result: CliResult, ...patterns: (string | RegExp)[]): string {
  const context = describeRun(result);
  expect(result.code, context).toBe(1);
  expect(result.stderr, context).toMatch(/^cutover: \S/);
  expect(result.stderr, context).not.toContain('    at ');
  expect(result.stderr, context).not.toMatch(/internal error|Error: |node:internal/);
  for (const pattern of patterns) {
    if (typeof pattern === 'string') expect(result.stderr, context).toContain(pattern);
    else expect(result.stderr, context).toMatch(pattern);
  }
  return result.stderr;
}

/** Polls a command until `accept` returns a value (exit codes other than 0 count as "not yet"). */
export async function pollCutover<T>(args: string[], options: CliOptions, accept: (result: CliResult) => T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: CliResult | undefined;
  for (;;) {
    last = await cutover(args, options);
    const value = last.code === 0 ? accept(last) : undefined;
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last run:\n${describeRun(last)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const tempDirs: string[] = [];
/** A fresh temp dir, removed by removeTempDirs(). */
export function tempDir(prefix = 'cutover-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface ProcessInfo {
  pid: number;
  cmdline: string;
}

/** Linux: the live (non-zombie) descendants of a process, from /proc. */
export function descendants(root: number): ProcessInfo[] {
  const children = new Map<number, number[]>();
  const live = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProc(`/proc/${entry}/stat`);
    if (!stat) continue;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ")".
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    if (state !== 'Z') live.add(pid);
    const siblings = children.get(Number(ppid)) ?? [];
    siblings.push(pid);
    children.set(Number(ppid), siblings);
  }
  const found: ProcessInfo[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (live.has(pid)) found.push({ pid, cmdline: (readProc(`/proc/${pid}/cmdline`) ?? '').split('\0').join(' ').trim() });
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** Whether a process is still alive (a zombie counts as gone: it has exited). */
export function alive(pid: number): boolean {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return false;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
