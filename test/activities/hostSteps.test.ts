/** runHostStep in a mocked activity context, running real commands against a real lab through the local transport. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Info } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BatchProgress, type HostOutcome, createHostStepActivities } from '../../activities/hostSteps';
import type { HostTask, StepBatch } from '../../core/planner';
import { HEARTBEAT_EVERY_MS } from '../../core/heartbeat';
import { LAB_BIN, labFault, labOps, labStatus, labUp } from '../../lab/lab';
import { createLocalTransport } from '../../transport/local';
import { ConnectionError, type HostRunner, PermanentError } from '../../transport/transport';

let root: string;
let dir: string;
let transport: HostRunner;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'cutover-hoststeps-'));
  dir = join(root, 'lab');
  labUp(dir, { hosts: 3 });
  transport = createLocalTransport({ env: { PATH: `${LAB_BIN}:${process.env.PATH}`, CUTOVER_LAB_DIR: dir } });
});
afterEach(async () => {
  await transport.close();
  rmSync(root, { recursive: true, force: true });
});

const HOSTS = ['appv-01', 'appv-02', 'appv-03'];

function task(host: string, command: string): HostTask {
  return { host, command, transport: { kind: 'local' } };
}

function stepBatch(tasks: HostTask[], overrides: Partial<StepBatch> = {}): StepBatch {
  return {
    step: 'drain',
    role: 'management-server',
    tasks,
    maxParallel: 2,
    timeoutMs: 10_000,
    retry: { maxAttempts: 3, initialInterval: '1s', backoff: 2, maxInterval: '1m' },
    ...overrides,
  };
}

const ONE_ATTEMPT = { maxAttempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '1m' };

const drainAll = (hosts = HOSTS) => stepBatch(hosts.map((host) => task(host, `labhost ${host} drain`)));

/** Runs the activity as attempt `info.attempt`, recording a snapshot of every heartbeat. */
function runHostStep(batch: StepBatch, info: Partial<Info> = {}, deps: { runner: HostRunner } = { runner: transport }) {
  const env = new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
  const heartbeats: BatchProgress[] = [];
  // The activity heartbeats one object it keeps mutating: keep a copy of each.
  env.on('heartbeat', (details: BatchProgress) => heartbeats.push(structuredClone(details)));
  const { runHostStep: activity } = createHostStepActivities(deps);
  const result = env.run<[StepBatch], HostOutcome[], typeof activity>(activity, batch);
  return { env, heartbeats, result };
}

/** The lab's transport, except that a host `error` names fails with that error instead of running the command. */
function throwingFor(error: (hostId: string) => Error | undefined): HostRunner {
  return {
    async run(host, command, options) {
      const thrown = error(host.id);
      if (thrown) throw thrown;
      return transport.run(host, command, options);
    },
    async close() {},
  };
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the activity to fail');
}

const opsOn = (host: string) => labOps(dir).filter((op) => op.host === host);

describe('runHostStep', () => {
  it('runs the step on every host and returns one outcome per host, in task order', async () => {
    const { result, heartbeats } = runHostStep(drainAll(), { attempt: 1 });
    const outcomes = await result;
    expect(outcomes).toEqual(
      HOSTS.map((host) => ({ host, ok: true, exitCode: 0, outputTail: 'sessions signed out, new sessions blocked\n', attempt: 1 })),
    );
    expect(labStatus(dir).hosts.every((h) => h.drained && h.sessions === 0)).toBe(true);
    expect(labOps(dir).map((op) => [op.host, op.op, op.result]).sort()).toEqual(HOSTS.map((host) => [host, 'drain', 'ok']));
    // heartbeats as hosts finish (then a final one), each listing what is done so far
    const counts = heartbeats.map((beat) => Object.keys(beat.done).length);
    expect(counts.every((count, i) => count > 0 && count >= (counts[i - 1] ?? 0))).toBe(true);
    expect(heartbeats.at(-1)?.done).toEqual(Object.fromEntries(outcomes.map((outcome) => [outcome.host, outcome])));
  });

  it('keeps task order in the outcomes even when hosts finish in another order', async () => {
    const batch = stepBatch([task('appv-01', 'sleep 0.4; labhost appv-01 version'), task('appv-02', 'labhost appv-02 version')]);
    const { result, heartbeats } = runHostStep(batch);
    const outcomes = await result;
    expect(outcomes.map((o) => [o.host, o.ok, o.outputTail])).toEqual([
      ['appv-01', true, '4.1-SP1\n'],
      ['appv-02', true, '4.1-SP1\n'],
    ]);
    expect(Object.keys(heartbeats[0]?.done ?? {})).toEqual(['appv-02']);
  });

  it('fails the attempt retryably while attempts remain, heartbeating the hosts that succeeded', async () => {
    labFault(dir, 'appv-02', 'drain', 'always');
    const { result, heartbeats } = runHostStep(drainAll(), { attempt: 1 });
    const error = await failureOf(result);
    expect(error).toBeInstanceOf(ApplicationFailure);
    const failure = error as ApplicationFailure;
    expect(failure.nonRetryable).toBe(false);
    expect(failure.type).toBe('HostStepFailed');
    expect(failure.message).toBe(
      'drain failed on 1 of 3 host(s), first appv-02 (exit 1): FAULT: injected permanent failure of drain on appv-02',
    );
    const last = heartbeats.at(-1);
    expect(Object.keys(last?.done ?? {}).sort()).toEqual(['appv-01', 'appv-03']);
    expect(last?.done['appv-01']).toMatchObject({ ok: true, exitCode: 0, attempt: 1 });
    expect(heartbeats.some((beat) => 'appv-02' in beat.done)).toBe(false);
    expect(labStatus(dir).hosts.map((h) => h.drained)).toEqual([true, false, true]);
  });

  it("returns every outcome once the failing host's command has failed maxAttempts times, with its output", async () => {
    labFault(dir, 'appv-02', 'drain', 'always');
    // Two failed commands of appv-02 in earlier attempts, as their heartbeats recorded them.
    const outcomes = await runHostStep(drainAll(), { attempt: 3, heartbeatDetails: { done: {}, failures: { 'appv-02': 2 } } }).result;
    expect(outcomes.map((o) => o.host)).toEqual(HOSTS);
    expect(outcomes[0]).toMatchObject({ ok: true, exitCode: 0, attempt: 3 });
    expect(outcomes[2]).toMatchObject({ ok: true, exitCode: 0, attempt: 3 });
    expect(outcomes[1]).toMatchObject({ host: 'appv-02', ok: false, exitCode: 1, attempt: 3 });
    expect(outcomes[1]?.outputTail).toContain('FAULT: injected permanent failure of drain on appv-02');
  });

  it('keeps the result of a large batch of failing hosts far below the payload limit, each tail ending as it did', async () => {
    // 300 hosts each failing with 6 KB of output: whole tails would make a 1.2 MB result and heartbeat.
    const hosts = Array.from({ length: 300 }, (_, i) => `h${i}`);
    const command = (host: string) => `head -c 6000 /dev/zero | tr '\\0' x; echo; echo "${host} failed at the end"; exit 3`;
    const batch = stepBatch(hosts.map((host) => task(host, command(host))), { retry: ONE_ATTEMPT, maxParallel: 20 });
    const started = Date.now();
    const { result, heartbeats } = runHostStep(batch, { attempt: 1 });
    const outcomes = await result;
    const took = Date.now() - started;
    expect(outcomes.every((o) => !o.ok && o.exitCode === 3)).toBe(true);
    // Progress is heartbeated within 200 ms of a host finishing, not once per host: each heartbeat encodes every
    // host done so far (here, 300 growing payloads). Then one every HEARTBEAT_EVERY_MS, and a final one.
    expect(heartbeats.length).toBeLessThanOrEqual(Math.ceil(took / 200) + Math.ceil(took / HEARTBEAT_EVERY_MS) + 1);
    expect(outcomes[7]?.outputTail.endsWith('h7 failed at the end\n')).toBe(true);
    expect(outcomes[7]?.outputTail.startsWith('…')).toBe(true);
    expect(JSON.stringify(outcomes).length).toBeLessThan(600 * 1024);
    expect(JSON.stringify(heartbeats.at(-1)).length).toBeLessThan(600 * 1024);
  });

  it('keeps no control characters in an output tail (a UTF-16 tool\'s NULs, colour escapes), only the text', async () => {
    const batch = stepBatch([task('h1', "printf 'U\\0T\\0F\\0 \\033[31mred\\033[0m\\ttab\\r\\n'")], { retry: ONE_ATTEMPT });
    const [outcome] = await runHostStep(batch, { attempt: 1 }).result;
    expect(outcome).toMatchObject({ ok: true, outputTail: 'UTF [31mred[0m\ttab\r\n' });
  });

  it('a single attempt is also the last one', async () => {
    labFault(dir, 'appv-01', 'drain', 'always');
    const batch = { ...drainAll(), retry: ONE_ATTEMPT };
    const outcomes = await runHostStep(batch, { attempt: 1 }).result;
    expect(outcomes.map((o) => o.ok)).toEqual([false, true, true]);
  });

  it('on a retry, runs only the hosts the previous attempt did not finish', async () => {
    labFault(dir, 'appv-02', 'drain', { times: 1 });
    const first = runHostStep(drainAll(), { attempt: 1 });
    expect(await failureOf(first.result)).toBeInstanceOf(ApplicationFailure);
    const progress = first.heartbeats.at(-1) as BatchProgress;
    expect(Object.keys(progress.done).sort()).toEqual(['appv-01', 'appv-03']);

    const second = runHostStep(drainAll(), { attempt: 2, heartbeatDetails: progress });
    const outcomes = await second.result;
    expect(outcomes.map((o) => [o.host, o.ok, o.attempt])).toEqual([
      ['appv-01', true, 1],
      ['appv-02', true, 2],
      ['appv-03', true, 1],
    ]);
    // appv-01 and appv-03 ran once; appv-02 twice (the fault, then the drain)
    expect(opsOn('appv-01').map((op) => op.result)).toEqual(['ok']);
    expect(opsOn('appv-03').map((op) => op.result)).toEqual(['ok']);
    expect(opsOn('appv-02').map((op) => op.result)).toEqual(['fault', 'ok']);
    expect(Object.keys(second.heartbeats.at(-1)?.done ?? {}).sort()).toEqual(HOSTS);
  });

  it('does not run hosts recorded as done by an earlier attempt even on the last attempt', async () => {
    const done: Record<string, HostOutcome> = {
      'appv-01': { host: 'appv-01', ok: true, exitCode: 0, outputTail: 'from attempt 1\n', attempt: 1 },
      'appv-02': { host: 'appv-02', ok: true, exitCode: 0, outputTail: 'from attempt 2\n', attempt: 2 },
    };
    const outcomes = await runHostStep(drainAll(), { attempt: 3, heartbeatDetails: { done } }).result;
    expect(outcomes).toEqual([done['appv-01'], done['appv-02'], expect.objectContaining({ host: 'appv-03', ok: true, attempt: 3 })]);
    expect(labOps(dir).map((op) => op.host)).toEqual(['appv-03']);
    expect(labStatus(dir).hosts.map((h) => h.drained)).toEqual([false, false, true]);
  });

  it("a host that fails for good is done, failed, and does not take away the other hosts' retries", async () => {
    // appv-01's host key is rejected (permanent), appv-02 cannot be reached once, appv-03's drain fails once.
    const runs: string[] = [];
    const flaky = throwingFor((id) => {
      runs.push(id);
      if (id === 'appv-01') return new PermanentError('host key of appv-01 is SHA256:other, not the pinned SHA256:pinned');
      if (id === 'appv-02' && runs.filter((run) => run === 'appv-02').length === 1) return new ConnectionError('connect ECONNREFUSED');
      return undefined;
    });
    labFault(dir, 'appv-03', 'drain', { times: 1 });
    const first = runHostStep(drainAll(), { attempt: 1 }, { runner: flaky });
    const failure = (await failureOf(first.result)) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toMatch(/^drain failed on 2 of 3 host\(s\)/);
    const progress = first.heartbeats.at(-1) as BatchProgress;
    const rejected = { host: 'appv-01', ok: false, exitCode: -1, outputTail: 'host key of appv-01 is SHA256:other, not the pinned SHA256:pinned', attempt: 1 };
    expect(progress.done).toEqual({ 'appv-01': rejected });
    expect(progress.failures).toEqual({ 'appv-02': 1, 'appv-03': 1 });

    const second = runHostStep(drainAll(), { attempt: 2, heartbeatDetails: progress }, { runner: flaky });
    const outcomes = await second.result;
    expect(outcomes).toEqual([rejected, expect.objectContaining({ host: 'appv-02', ok: true, attempt: 2 }), expect.objectContaining({ host: 'appv-03', ok: true, attempt: 2 })]);
    // The rejected host was tried once; the others again.
    expect(runs.sort()).toEqual(['appv-01', 'appv-02', 'appv-02', 'appv-03', 'appv-03']);
  });

  it('with only hosts that failed for good, finishes on the first attempt', async () => {
    const rejecting = throwingFor((id) => (id === 'appv-02' ? new PermanentError('host key of appv-02 is revoked') : undefined));
    const outcomes = await runHostStep(drainAll(), { attempt: 1 }, { runner: rejecting }).result;
    expect(outcomes.map((o) => [o.host, o.ok, o.outputTail])).toEqual([
      ['appv-01', true, 'sessions signed out, new sessions blocked\n'],
      ['appv-02', false, 'host key of appv-02 is revoked'],
      ['appv-03', true, 'sessions signed out, new sessions blocked\n'],
    ]);
  });

  it("counts the plan's attempts per host command, so an attempt lost with its worker uses none up", async () => {
    labFault(dir, 'appv-02', 'drain', 'always');
    const batch = { ...drainAll(), retry: { ...ONE_ATTEMPT, maxAttempts: 2 } };
    const first = runHostStep(batch, { attempt: 1 });
    expect(await failureOf(first.result)).toBeInstanceOf(ApplicationFailure);
    const progress = first.heartbeats.at(-1) as BatchProgress;
    expect(progress.failures).toEqual({ 'appv-02': 1 });
    // Attempt 2 was lost (its worker killed before it ran anything): attempt 3 starts from attempt 1's heartbeat and
    // still has appv-02's second command attempt, its last.
    const third = await runHostStep(batch, { attempt: 3, heartbeatDetails: progress }).result;
    expect(third[1]).toMatchObject({ host: 'appv-02', ok: false, exitCode: 1, attempt: 3 });
    expect(opsOn('appv-02').map((op) => op.result)).toEqual(['fault', 'fault']);
    expect(opsOn('appv-01').map((op) => op.result)).toEqual(['ok']);
  });

  it('a host whose earlier attempts were all lost still has its attempts, however late the activity attempt', async () => {
    labFault(dir, 'appv-02', 'drain', 'always');
    const batch = { ...drainAll(), retry: { ...ONE_ATTEMPT, maxAttempts: 2 } };
    // Attempts 1 and 2 heartbeat appv-01 and appv-03 done and were lost before appv-02's command ended.
    const done = Object.fromEntries(['appv-01', 'appv-03'].map((host) => [host, { host, ok: true, exitCode: 0, outputTail: '', attempt: 1 }]));
    const failure = await failureOf(runHostStep(batch, { attempt: 3, heartbeatDetails: { done, failures: {} } }).result);
    expect(failure).toMatchObject({ type: 'HostStepFailed', nonRetryable: false });
    expect(opsOn('appv-02').map((op) => op.result)).toEqual(['fault']);
  });

  it("on Temporal's last attempt reports every host, even those with attempts left", async () => {
    labFault(dir, 'appv-02', 'drain', 'always');
    const retryPolicy = { maximumAttempts: 4, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' };
    const outcomes = await runHostStep(drainAll(), { attempt: 4, retryPolicy, heartbeatDetails: { done: {}, failures: { 'appv-02': 1 } } }).result;
    expect(outcomes.map((o) => [o.host, o.ok])).toEqual([
      ['appv-01', true],
      ['appv-02', false],
      ['appv-03', true],
    ]);
  });

  it('kills a command that exceeds the timeout and reports it as failed', async () => {
    const pidFile = join(root, 'sleeper.pid');
    const batch = stepBatch([task('appv-01', `sleep 30 & echo $! > ${pidFile}; wait`), task('appv-02', 'labhost appv-02 drain')], {
      timeoutMs: 300,
      retry: ONE_ATTEMPT,
    });
    const started = Date.now();
    const outcomes = await runHostStep(batch).result;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(outcomes[0]).toMatchObject({ host: 'appv-01', ok: false, exitCode: 137 });
    expect(outcomes[0]?.outputTail).toContain('[cutover] killed after 300 ms timeout');
    expect(outcomes[1]).toMatchObject({ host: 'appv-02', ok: true });
    // the whole process group went, not just the shell. SIGKILL is delivered asynchronously, and a loaded machine
    // may take a moment to retire the orphan, so it gets a short grace; a sleep the kill missed lives for 30 s.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await vi.waitFor(() => expect(isAlive(pid)).toBe(false), { timeout: 3_000, interval: 50 });
  });

  it('a hung labhost is killed by the timeout', async () => {
    labFault(dir, 'appv-01', 'drain', 'hang');
    const outcomes = await runHostStep(stepBatch([task('appv-01', 'labhost appv-01 drain')], { timeoutMs: 500, retry: ONE_ATTEMPT })).result;
    expect(outcomes[0]).toMatchObject({ ok: false, exitCode: 137 });
    expect(outcomes[0]?.outputTail).toContain('hanging (injected)');
    expect(outcomes[0]?.outputTail).toContain('killed after 500 ms timeout');
  });

  it('runs at most maxParallel commands at a time, and uses that parallelism', async () => {
    const trace = join(root, 'trace');
    const hosts = ['appv-01', 'appv-02', 'appv-03', 'h4', 'h5'];
    const command = (host: string) => `echo "start $(date +%s%N) ${host}" >> ${trace}; sleep 0.3; echo "end $(date +%s%N) ${host}" >> ${trace}`;
    const started = Date.now();
    const outcomes = await runHostStep(stepBatch(hosts.map((host) => task(host, command(host))), { maxParallel: 2 })).result;
    const elapsed = Date.now() - started;
    expect(outcomes.every((o) => o.ok)).toBe(true);

    const events = readFileSync(trace, 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const [kind, time] = line.split(' ');
        return { delta: kind === 'start' ? 1 : -1, time: BigInt(time ?? '0') };
      })
      // at equal times count the end first
      .sort((a, b) => (a.time === b.time ? a.delta - b.delta : a.time < b.time ? -1 : 1));
    expect(events).toHaveLength(10);
    let running = 0;
    let peak = 0;
    for (const event of events) {
      running += event.delta;
      peak = Math.max(peak, running);
    }
    expect(peak).toBe(2);
    // 5 commands of 0.3 s, 2 at a time: at least 3 rounds
    expect(elapsed).toBeGreaterThanOrEqual(850);
  });

  it('with maxParallel 1 runs the hosts one after another in task order', async () => {
    const trace = join(root, 'trace');
    const outcomes = await runHostStep(
      stepBatch(
        HOSTS.map((host) => task(host, `echo ${host} >> ${trace}; labhost ${host} drain`)),
        { maxParallel: 1 },
      ),
    ).result;
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(readFileSync(trace, 'utf8').trim().split('\n')).toEqual(HOSTS);
    expect(labOps(dir).map((op) => op.host)).toEqual(HOSTS);
  });

  it('reports a host the transport cannot reach as failed with exit -1', async () => {
    const unreachable = throwingFor((id) => (id === 'appv-02' ? new Error('connection refused') : undefined));
    const outcomes = await runHostStep({ ...drainAll(), retry: ONE_ATTEMPT }, { attempt: 1 }, { runner: unreachable }).result;
    expect(outcomes[1]).toEqual({ host: 'appv-02', ok: false, exitCode: -1, outputTail: 'cannot reach appv-02: connection refused', attempt: 1 });
    expect(outcomes.filter((o) => o.ok).map((o) => o.host)).toEqual(['appv-01', 'appv-03']);
  });

  it('passes the host id to the command and gives a command its own environment', async () => {
    const batch = stepBatch([task('appv-03', 'echo "$CUTOVER_HOST in $CUTOVER_LAB_DIR"; command -v labhost')]);
    const [outcome] = await runHostStep(batch).result;
    expect(outcome?.outputTail).toBe(`appv-03 in ${dir}\n${join(LAB_BIN, 'labhost')}\n`);
  });

  it('on cancellation lets running commands finish (an installer is never cut off) and starts no more', async () => {
    const batch = stepBatch(
      ['appv-01', 'appv-02', 'appv-03'].map((host) => task(host, `sleep 1.5; labhost ${host} drain`)),
      { maxParallel: 2 },
    );
    const { env, result } = runHostStep(batch);
    setTimeout(() => env.cancel(), 300);
    const error = await failureOf(result);
    expect(error).toBeInstanceOf(CancelledFailure);
    // The two commands under way at the cancellation completed; the third host was never started.
    expect(labOps(dir).map((op) => `${op.host} ${op.op} ${op.result}`).sort()).toEqual(['appv-01 drain ok', 'appv-02 drain ok']);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A killed process nobody has reaped yet is a zombie: dead all the same.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
