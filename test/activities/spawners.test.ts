/**
 * The two spawner programs keep one contract (transport/spawner.ts): the Go spawner, which a worker runs where
 * `npm install` could build it, and the Node spawner, where it could not. Each case runs against both, through the
 * worker's own side of the channel (SpawnerPool), so a difference between them fails here first.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../activities/journal';
import { goCommand } from '../../build/goSpawner';
import type { CommandRequest } from '../../transport/commandRunner.cjs';
import { SpawnerPool, spawnerProgram } from '../../transport/spawner';

const built = spawnerProgram({});

it('is the Go spawner that a worker runs where Go is installed, and the Node spawner when asked', () => {
  expect(spawnerProgram({ CUTOVER_SPAWNER: 'node' })).toEqual({ kind: 'node' });
  expect(() => spawnerProgram({ CUTOVER_SPAWNER: 'rust' })).toThrow('CUTOVER_SPAWNER is "rust": it takes go or node');
  // npm install builds it wherever Go is (a machine with Go and no Go spawner had a build that failed), and only there.
  expect(built.kind).toBe(goCommand() ? 'go' : 'node');
});

it('fails the commands of a spawner program that cannot start, instead of leaving them waiting', async () => {
  const pool = new SpawnerPool(1, { kind: 'go', path: '/nonexistent/cutover-spawner' });
  await expect(pool.run({ host: 'h1', command: 'true', timeoutMs: 5_000 })).rejects.toThrow('the command spawner did not start (/nonexistent/cutover-spawner): spawn /nonexistent/cutover-spawner ENOENT');
});

const SECRET = 'CUTOVER_CONTRACT_SECRET';
const dir = mkdtempSync(join(tmpdir(), 'cutover-spawners-'));
const journalLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);

// Each program a worker of this machine may run: the Node spawner, and the Go spawner where Go is (checked above).
const programs = built.kind === 'go' ? [built, { kind: 'node' } as const] : [built];
describe.each(programs.map((program) => [program.kind, program] as const))('the %s spawner', (kind, program) => {
  let pool: SpawnerPool;
  const run = (request: Partial<CommandRequest> & { command: string }, options: Parameters<SpawnerPool['run']>[1] = {}) =>
    pool.run({ host: 'h1', timeoutMs: 10_000, ...request }, options);

  beforeAll(() => {
    // A spawner inherits the worker's environment as it is when the spawner starts.
    process.env[SECRET] = 'do-not-show';
    pool = new SpawnerPool(1, program);
  });
  afterAll(async () => {
    const keepAlive = setInterval(() => {}, 1_000);
    await pool.close().finally(() => clearInterval(keepAlive));
    delete process.env[SECRET];
  });

  it('runs a command with the transport environment and the host, without the step secrets, from its own process', async () => {
    const result = await run({ command: `echo "$GREETING from $CUTOVER_HOST \${${SECRET}:-hidden}"; echo pid=$PPID`, env: { GREETING: 'hello' }, withoutEnv: [SECRET] });
    expect(result).toEqual({ exitCode: 0, timedOut: false, outputTail: `hello from h1 hidden\npid=${pool.pids[0]}\n` });
    expect(pool.pids).not.toContain(process.pid);
  });

  it('gives the exit code, and 137 for a command a signal ended', async () => {
    expect((await run({ command: 'echo out; echo err >&2; exit 3' })).exitCode).toBe(3);
    expect((await run({ command: 'kill -TERM $$' })).exitCode).toBe(137);
  });

  it('keeps the last 4096 characters of the output, without control characters', async () => {
    const result = await run({ command: `printf 'a\\001b\\033[0m\\n'; for i in $(seq 3000); do printf 'éé'; done` });
    expect(result.outputTail).toHaveLength(4096);
    expect(result.outputTail).toBe('é'.repeat(4096));
    const short = await run({ command: `printf 'a\\001b\\033[0m\\tc\\r\\n'` });
    expect(short.outputTail).toBe('ab[0m\tc\r\n');
  });

  it('kills a command at its timeout with everything it started, and says so in its tail', async () => {
    const pidFile = join(dir, `${kind}-background.pid`);
    const started = Date.now();
    const result = await run({ command: `sleep 30 & echo $! > ${pidFile}; sleep 30`, timeoutMs: 300.5 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBe(137);
    expect(result.outputTail).toBe('\n[cutover] killed after 300.5 ms timeout\n');
    expect(Date.now() - started).toBeLessThan(5_000);
    // Killed: gone, or a zombie until whoever inherited it reaps it.
    const stat = `/proc/${readFileSync(pidFile, 'utf8').trim()}/stat`;
    expect(existsSync(stat) ? readFileSync(stat, 'utf8').split(') ')[1]?.[0] : 'gone').toMatch(/gone|Z/);
  });

  it('kills a command when the worker aborts it, and streams its output while it runs', async () => {
    const abort = new AbortController();
    const chunks: string[] = [];
    const result = await run(
      { command: 'echo one; sleep 30' },
      {
        signal: abort.signal,
        onOutput: (chunk) => {
          chunks.push(chunk);
          abort.abort();
        },
      },
    );
    expect(chunks).toEqual(['one\n']);
    expect(result).toEqual({ exitCode: 137, outputTail: 'one\n', timedOut: false });
  });

  it('kills a command aborted before it started', async () => {
    const abort = new AbortController();
    abort.abort();
    expect(await run({ command: 'sleep 30' }, { signal: abort.signal })).toEqual({ exitCode: 137, outputTail: '', timedOut: false });
  });

  it('does not wait for a background service holding its output open, beyond a moment, nor stop it from writing', async () => {
    const alive = join(dir, `${kind}-service.alive`);
    const started = Date.now();
    const result = await run({ command: `(sleep 2; echo still writing; echo alive > ${alive}) & echo started` });
    expect(result).toEqual({ exitCode: 0, outputTail: 'started\n', timedOut: false });
    expect(Date.now() - started).toBeLessThan(1_500);
    // Its line after the result goes nowhere, and it goes on: no SIGPIPE from a closed pipe.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(readFileSync(alive, 'utf8')).toBe('alive\n');
  });

  it('does not hand the channel to the worker down to a command', async () => {
    // The channel is a socket (Node's IPC); a command that had it could write into the worker's messages.
    // Past standard input, output and error (the Node spawner's output is a socket pair); the glob's own directory
    // descriptor is gone by the time readlink looks, hence `|| true`.
    const result = await run({ command: 'cd /proc/$$/fd && for fd in *; do [ "$fd" -gt 2 ] && readlink "$fd" || true; done; echo listed' });
    expect(result.outputTail).toContain('listed');
    expect(result.outputTail).not.toContain('socket:');
  });

  it('refuses a command it cannot start, and runs the next one', async () => {
    // Linux takes no single variable over 128 KiB (E2BIG).
    const file = join(dir, kind, 'refused.jsonl');
    await expect(run({ command: 'true', env: { TOO_LARGE: 'x'.repeat(200_000) }, journalFile: file })).rejects.toThrow(/E2BIG|argument list too long/);
    // Journaled as a failed attempt, which a retry counts.
    expect(journalLines(file).at(-1)).toMatchObject({ host: 'h1', event: 'failed', exitCode: -1 });
    expect((await run({ command: 'echo next' })).outputTail).toBe('next\n');
  });

  it('journals the start and the end, with what a retry needs to wait for the command', async () => {
    const file = join(dir, kind, 'new', 'j.jsonl');
    await run({ command: 'echo fine', journalFile: file });
    await run({ command: 'echo secret-output; exit 2', host: 'h2', journalFile: file, journalKey: 'db-backup', journalOutput: false });
    const lines = journalLines(file);
    expect(lines.map(({ host, event }) => [host, event])).toEqual([
      ['h1', 'start'],
      ['h1', 'done'],
      ['db-backup', 'start'],
      ['db-backup', 'failed'],
    ]);
    const start = lines[0] as { pid: number; token: string; pgid: number; until: number };
    expect(start.pid).toBe(pool.pids[0]);
    expect(readFileSync(`/proc/${start.pid}/cmdline`, 'utf8')).toContain(start.token);
    expect(start.pgid).toBeGreaterThan(0);
    expect(start.until).toBeGreaterThan(Date.now());
    expect(lines[1]).toEqual({ host: 'h1', event: 'done', exitCode: 0, outputTail: 'fine\n' });
    expect(lines[3]).toEqual({ host: 'db-backup', event: 'failed', exitCode: 2, outputTail: '' });
    expect([...readJournal(file).done.keys()]).toEqual(['h1']);
  });

  it('finishes and journals what runs when its worker lets it go, then exits', async () => {
    const orphan = new SpawnerPool(1, program);
    const file = join(dir, kind, 'orphan.jsonl');
    const result = orphan.run({ host: 'h3', command: 'sleep 1; echo late', timeoutMs: 10_000, journalFile: file });
    result.catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [spawner] = orphan.pids;
    const keepAlive = setInterval(() => {}, 1_000);
    await orphan.close().finally(() => clearInterval(keepAlive));
    expect(journalLines(file).at(-1)).toEqual({ host: 'h3', event: 'done', exitCode: 0, outputTail: 'late\n' });
    expect(existsSync(`/proc/${spawner}`)).toBe(false);
  });
});
