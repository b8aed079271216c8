/**
 * The spawner and the journal: host commands run from a lean child process, which journals each host's start and
 * end before the worker hears of it; a retry of the batch on this machine skips what the journal shows done.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { type HostOutcome, createHostStepActivities } from '../../activities/hostSteps';
import { claimBatch, journalFile, readJournal, settledJournal } from '../../activities/journal';
import type { StepBatch } from '../../core/planner';
import { LAB_BIN, labFault, labOps, labUp } from '../../lab/lab';
import { createLocalTransport } from '../../transport/local';
import { sharedSpawner } from '../../transport/spawner';

const local = { kind: 'local' as const };

describe('the spawner', () => {
  it('runs commands from its own small process, with the transport environment and the host id', async () => {
    const transport = createLocalTransport({ env: { GREETING: 'hello' } });
    const result = await transport.run({ id: 'h1', transport: local }, 'echo "$GREETING from $CUTOVER_HOST"; echo pid=$PPID', { timeoutMs: 5_000 });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(result.outputTail).toContain('hello from h1');
    const spawners = sharedSpawner().pids;
    expect(spawners.length).toBeGreaterThan(0);
    expect(spawners).not.toContain(process.pid);
    // The command's shell is a child of a spawner, not of this process.
    expect(spawners.map((pid) => `pid=${pid}`)).toContain(result.outputTail.trim().split('\n').pop());
  });

  it('kills a command at its timeout, with everything it started', async () => {
    const transport = createLocalTransport();
    const started = Date.now();
    const result = await transport.run({ id: 'h1', transport: local }, 'sleep 30 & sleep 30', { timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(result.outputTail).toContain('killed after 300 ms timeout');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('spawns from the worker itself when asked (what the benchmark compares against)', async () => {
    const transport = createLocalTransport({ spawnFrom: 'worker' });
    const result = await transport.run({ id: 'h1', transport: local }, 'echo pid=$PPID', { timeoutMs: 5_000 });
    expect(result.outputTail).toBe(`pid=${process.pid}\n`);
  });

  it('goes on when the journal cannot be written (a full disk): the command runs, its result arrives, the spawner lives', async () => {
    const transport = createLocalTransport();
    await transport.run({ id: 'h0', transport: local }, 'true', { timeoutMs: 5_000 });
    const spawners = sharedSpawner().pids;
    // /dev/full refuses every write with ENOSPC.
    const result = await transport.run({ id: 'h1', transport: local }, 'echo installed', { timeoutMs: 5_000, journalFile: '/dev/full' });
    expect(result).toMatchObject({ exitCode: 0, outputTail: 'installed\n', timedOut: false });
    expect(sharedSpawner().pids).toEqual(spawners);
  });

  it('journals a host when its command starts and when it ends', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'cutover-journal-')), 'j.jsonl');
    const transport = createLocalTransport();
    await transport.run({ id: 'ok', transport: local }, 'echo fine', { timeoutMs: 5_000, journalFile: file });
    await transport.run({ id: 'bad', transport: local }, 'exit 3', { timeoutMs: 5_000, journalFile: file });
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { host: string; event: string });
    expect(lines.map((l) => [l.host, l.event])).toEqual([
      ['ok', 'start'],
      ['ok', 'done'],
      ['bad', 'start'],
      ['bad', 'failed'],
    ]);
    const state = readJournal(file);
    expect([...state.done.entries()]).toEqual([['ok', 'fine\n']]);
    expect([...state.failed.entries()]).toEqual([['bad', { times: 1, exitCode: 3, outputTail: '' }]]);
    expect(state.running.size).toBe(0);
  });
});

describe('the journal', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'cutover-journal-'));

  it('skips a corrupted or truncated line with a warning, and never takes a line that is no entry for one', () => {
    const file = join(dir(), 'j.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({ host: 'a', event: 'done', outputTail: 'fine' }),
        '\u0000\u0000\u0000 garbage',
        // Valid JSON but no entry: a "done" without its output must not make host b done.
        JSON.stringify({ host: 'b', event: 'done' }),
        '{"host":"c","event":"do',
      ].join('\n'),
    );
    const warnings: string[] = [];
    const state = readJournal(file, (message) => warnings.push(message));
    expect([...state.done.keys()]).toEqual(['a']);
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toContain('line 2 is not a journal entry, skipped');
  });

  it('counts a started host as running only while the spawner that runs it lives, and survives a cut-off line', () => {
    const file = join(dir(), 'j.jsonl');
    writeFileSync(
      file,
      [
        JSON.stringify({ host: 'a', event: 'start', pid: process.pid }),
        JSON.stringify({ host: 'b', event: 'start', pid: 999_999_999 }),
        JSON.stringify({ host: 'c', event: 'start', pid: process.pid }),
        JSON.stringify({ host: 'c', event: 'done', outputTail: 'ok' }),
        // A live pid that is not the spawner which wrote the line (its token is not on that process's command line).
        JSON.stringify({ host: 'e', event: 'start', pid: process.pid, token: 'a-spawner-long-gone' }),
        '{"host":"d","ev',
      ].join('\n'),
    );
    const state = readJournal(file);
    expect([...state.running.keys()]).toEqual(['a']);
    expect([...state.done.keys()]).toEqual(['c']);
  });

  it("waits for a command's process group when its spawner is gone, until the group ends or its timeout passes", async () => {
    const file = join(dir(), 'j.jsonl');
    // The spawner died with the worker (pid 999999999 lives nowhere); the command's group goes on for a second.
    const command = spawn('/bin/sh', ['-c', 'sleep 1'], { detached: true, stdio: 'ignore' });
    const pgid = command.pid as number;
    writeFileSync(file, `${JSON.stringify({ host: 'a', event: 'start', pid: 999_999_999, pgid, until: Date.now() + 10_000 })}\n`);
    const started = Date.now();
    const state = await settledJournal(file, { pollMs: 50 });
    expect(Date.now() - started).toBeGreaterThan(700);
    expect(state.running.size).toBe(0);
    // A group alive after its command's timeout is what the command left behind: not waited for.
    const leftover = spawn('/bin/sh', ['-c', 'sleep 5'], { detached: true, stdio: 'ignore' });
    writeFileSync(file, `${JSON.stringify({ host: 'b', event: 'start', pid: 999_999_999, pgid: leftover.pid, until: Date.now() - 1 })}\n`);
    expect(readJournal(file).running.size).toBe(0);
    process.kill(-(leftover.pid as number), 'SIGKILL');
  });

  it('waits for a host another spawner is still running, then reports it done', async () => {
    const file = join(dir(), 'j.jsonl');
    writeFileSync(file, `${JSON.stringify({ host: 'a', event: 'start', pid: process.pid })}\n`);
    setTimeout(() => writeFileSync(file, `${JSON.stringify({ host: 'a', event: 'done', outputTail: 'late' })}\n`, { flag: 'a' }), 300);
    const state = await settledJournal(file, { pollMs: 50 });
    expect(state.done.get('a')).toBe('late');
  });

  it('makes a retried batch skip the hosts a killed worker finished after its last heartbeat', async () => {
    // What the spawner of the killed worker wrote: appv-02 finished, after the last heartbeat (which had nothing).
    const { outcomes, lab } = await retryAfterLostWorker([{ host: 'appv-02', event: 'done', outputTail: 'sessions signed out\n' }], 3);
    expect(outcomes.map((o) => [o.host, o.ok])).toEqual([
      ['appv-01', true],
      ['appv-02', true],
      ['appv-03', true],
    ]);
    expect(labOps(lab).map((op) => op.host).sort()).toEqual(['appv-01', 'appv-03']);
  });

  it("counts a failure the killed worker's spawner journaled against the step's attempts", async () => {
    // Attempt 1 was lost with its worker; its spawner saw appv-01 succeed and appv-02's only allowed attempt fail.
    const { outcomes, lab } = await retryAfterLostWorker(
      [
        { host: 'appv-01', event: 'done', outputTail: 'sessions signed out\n' },
        { host: 'appv-02', event: 'failed', exitCode: 1, outputTail: 'drain refused\n' },
      ],
      1,
    );
    expect(outcomes.map((o) => [o.host, o.ok, o.exitCode, o.outputTail])).toEqual([
      ['appv-01', true, 0, 'sessions signed out\n'],
      ['appv-02', false, 1, 'drain refused\n'],
      ['appv-03', true, 0, 'sessions signed out, new sessions blocked\n'],
    ]);
    // appv-02 failed its one attempt already: it is reported, not run again.
    expect(labOps(lab).map((op) => op.host)).toEqual(['appv-03']);
  });
});

describe('claims', () => {
  it('hold a batch for one attempt: another waits until it is released', async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'cutover-claims-')), 'j.jsonl');
    const warnings: string[] = [];
    const options = { signal: new AbortController().signal, warn: (message: string) => warnings.push(message) };
    const first = await claimBatch(journal, options);
    // A second claim of the batch (another attempt) waits: it gives up when its signal aborts.
    await expect(claimBatch(journal, { ...options, signal: AbortSignal.timeout(300) })).rejects.toThrow();
    await first.release();
    const second = await claimBatch(journal, options);
    await second.release();
    expect([first.lost.aborted, second.lost.aborted, warnings]).toEqual([false, false, []]);
  });

  it('an attempt whose claim another took over (as proper-lockfile takes a stale one) knows it before its next host, not at its next refresh', async () => {
    const journal = join(mkdtempSync(join(tmpdir(), 'cutover-claims-')), 'j.jsonl');
    const options = { signal: new AbortController().signal, warn: () => undefined };
    const first = await claimBatch(journal, options);
    expect(first.held()).toBe(true);
    // What proper-lockfile does to a claim not refreshed within the stale time: the lock directory goes.
    rmSync(`${journal}.claim.lock`, { recursive: true });
    const second = await claimBatch(journal, options);
    expect([first.held(), first.lost.aborted, second.held()]).toEqual([false, true, true]);
    await second.release();
  });

  it('let two overlapping attempts of one batch never start one host twice', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cutover-claims-'));
    const lab = join(root, 'lab');
    labUp(lab, { hosts: 3 });
    for (const host of ['appv-01', 'appv-02', 'appv-03']) labFault(lab, host, 'drain', { delaySeconds: 1 });
    const journalDir = join(root, 'journal');
    const transport = createLocalTransport({ env: { PATH: `${LAB_BIN}:${process.env.PATH}`, CUTOVER_LAB_DIR: lab } });
    const { runHostStep } = createHostStepActivities({ runner: transport, journalDir });
    // One host at a time, so the second attempt arrives while the first is between hosts.
    const batch = { ...drainBatch(3), maxParallel: 1 };
    const attempt = (n: number) =>
      new MockActivityEnvironment({ workflowExecution: { workflowId: 'wf', runId: 'run' }, activityId: '7', attempt: n }, { logger: new DefaultLogger('ERROR') }).run<
        [StepBatch],
        HostOutcome[],
        typeof runHostStep
      >(runHostStep, batch);
    // The server gave up on attempt 1 after a heartbeat timeout, but its worker goes on: attempt 2 overlaps it.
    const [first, second] = await Promise.all([attempt(1), attempt(2)]);
    expect(first.every((o) => o.ok) && second.every((o) => o.ok)).toBe(true);
    const drains = labOps(lab).filter((op) => op.result === 'ok');
    expect(drains.map((op) => op.host).sort()).toEqual(['appv-01', 'appv-02', 'appv-03']);
  });
});

function drainBatch(maxAttempts: number): StepBatch {
  return {
    step: 'drain',
    role: 'management-server',
    maxParallel: 3,
    timeoutMs: 10_000,
    retry: { maxAttempts, initialInterval: '1s', backoff: 2, maxInterval: '1m' },
    tasks: ['appv-01', 'appv-02', 'appv-03'].map((host) => ({ host, command: `labhost ${host} drain`, transport: local })),
  };
}

/**
 * Attempt 2 of a drain batch on a fresh 3-host lab, after attempt 1 was lost with its worker, whose spawner left
 * `journaled` in the batch's journal.
 */
async function retryAfterLostWorker(journaled: object[], maxAttempts: number): Promise<{ outcomes: HostOutcome[]; lab: string }> {
  const root = mkdtempSync(join(tmpdir(), 'cutover-journal-'));
  const lab = join(root, 'lab');
  labUp(lab, { hosts: 3 });
  const journalDir = join(root, 'journal');
  mkdirSync(journalDir);
  const execution = { workflowId: 'wf', runId: 'run' };
  writeFileSync(journalFile(journalDir, { ...execution, activityId: '7' }), journaled.map((line) => `${JSON.stringify(line)}\n`).join(''));
  const transport = createLocalTransport({ env: { PATH: `${LAB_BIN}:${process.env.PATH}`, CUTOVER_LAB_DIR: lab } });
  const { runHostStep } = createHostStepActivities({ runner: transport, journalDir });
  const batch = drainBatch(maxAttempts);
  const env = new MockActivityEnvironment({ workflowExecution: execution, activityId: '7', attempt: 2 }, { logger: new DefaultLogger('ERROR') });
  return { outcomes: await env.run<[StepBatch], HostOutcome[], typeof runHostStep>(runHostStep, batch), lab };
}
