/** The SSH transport against real OpenSSH servers on loopback: commands, exit status, timeouts, host keys, reuse. */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type HostOutcome, createHostStepActivities } from '../../activities/hostSteps';
import type { StepBatch } from '../../core/planner';
import { HostKeyRejected, type SshRunner, createSshTransport } from '../../transport/ssh';
import { ConnectionError, type HostRunner, OUTPUT_TAIL_CHARS, PermanentError } from '../../transport/transport';
import { type SshFleet, keygen, startProxy, startSshFleet } from '../sshd';

let fleet: SshFleet;
let transport: HostRunner;

beforeAll(async () => {
  fleet = await startSshFleet(['h1', 'h2', 'h3'], { CUTOVER_GREETING: 'hello-from-sshd' });
});
afterAll(async () => {
  await fleet?.stop();
});
afterEach(async () => {
  await transport?.close();
});

const run = (id: string, command: string, timeoutMs = 10_000, spec = fleet.transport(id)) => transport.run({ id, transport: spec }, command, { timeoutMs });

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Processes whose command line contains `marker` (read from /proc, so the test needs no procps). */
function processesWith(marker: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readFileSync(join('/proc', pid, 'cmdline'), 'utf8').replaceAll('\0', ' ').includes(marker)) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

describe('ssh transport', () => {
  it('runs a command in a session with the server environment; its exit status and output come back', async () => {
    transport = createSshTransport();
    const ok = await run('h1', 'echo "out $CUTOVER_GREETING"; echo err >&2; whoami');
    expect(ok).toMatchObject({ exitCode: 0, timedOut: false });
    // stdout and stderr are separate streams: each keeps its order, their interleaving is the server's.
    expect(ok.outputTail.split('\n').sort()).toEqual(['', 'err', `out hello-from-sshd`, fleet.user].sort());
    const failed = await run('h2', 'echo about to fail; exit 7');
    expect(failed.exitCode).toBe(7);
    expect(failed.outputTail).toBe('about to fail\n');
  });

  it('reuses one connection per host for every command, including concurrent ones', async () => {
    transport = createSshTransport();
    const before = fleet.host('h3').logins();
    await Promise.all(Array.from({ length: 5 }, (_, i) => run('h3', `echo ${i}`)));
    await run('h3', 'true');
    expect(fleet.host('h3').logins() - before).toBe(1);
  });

  it('keeps only the tail of long output', async () => {
    transport = createSshTransport();
    const result = await run('h1', "head -c 100000 /dev/zero | tr '\\0' x; echo; echo last line");
    expect(result.exitCode).toBe(0);
    expect(result.outputTail.length).toBeLessThanOrEqual(OUTPUT_TAIL_CHARS);
    expect(result.outputTail.endsWith('x\nlast line\n')).toBe(true);
  });

  it('a command over its timeout is signalled to die, its channel closed, and reported as timed out', async () => {
    transport = createSshTransport();
    const marker = `sleep 15.${process.pid}`;
    const started = Date.now();
    const result = await run('h1', `echo started; ${marker}; echo never`, 1_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.timedOut).toBe(true);
    expect(result.outputTail).toContain('started');
    expect(result.outputTail).not.toContain('never');
    expect(result.outputTail).toContain('killed after 1000 ms timeout');
    if (process.getuid?.() === 0) {
      // OpenSSH runs a root login's session without privilege separation and then refuses signal requests
      // ("session signalling requires privilege separation"): the request went out, the command keeps running.
      await expect.poll(() => fleet.host('h1').log(), { timeout: 5_000 }).toContain('session_signal_req');
    } else {
      await expect.poll(() => processesWith(marker), { timeout: 5_000 }).toBe(0);
    }
    // The connection survives and serves the next command.
    expect((await run('h1', 'echo again')).outputTail).toBe('again\n');
  });

  it('accepts a host listed in a known_hosts file', async () => {
    transport = createSshTransport();
    const result = await run('h2', 'echo known', 10_000, fleet.transport('h2', { hostKey: undefined, knownHosts: fleet.knownHosts }));
    expect(result.outputTail).toBe('known\n');
  });

  it('reads known_hosts as OpenSSH writes it: hashed names (ssh-keygen -H), wildcards, @revoked', async () => {
    transport = createSshTransport();
    const hashed = join(fleet.dir, 'known_hosts.hashed');
    writeFileSync(hashed, `# hashed below\n[127.0.0.1]:${fleet.host('h1').port} ${fleet.host('h1').publicKey}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', hashed], { stdio: 'ignore' });
    expect(readFileSync(hashed, 'utf8')).toMatch(/^\|1\|/m);
    expect((await run('h1', 'echo hashed', 10_000, fleet.transport('h1', { hostKey: undefined, knownHosts: hashed }))).outputTail).toBe('hashed\n');

    const wildcard = join(fleet.dir, 'known_hosts.wildcard');
    writeFileSync(wildcard, `[127.0.0.?]:*,!nothing ${fleet.host('h2').publicKey}\n`);
    expect((await run('h2', 'echo wildcard', 10_000, fleet.transport('h2', { hostKey: undefined, knownHosts: wildcard }))).outputTail).toBe('wildcard\n');

    const revoked = join(fleet.dir, 'known_hosts.revoked');
    writeFileSync(revoked, `@revoked * ${fleet.host('h3').publicKey}\n[127.0.0.1]:${fleet.host('h3').port} ${fleet.host('h3').publicKey}\n`);
    const error = await rejection(run('h3', 'true', 10_000, fleet.transport('h3', { hostKey: undefined, knownHosts: revoked })));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error.message).toContain(`which ${revoked} marks @revoked`);
  });

  it('refuses a host key that is not the pinned fingerprint, naming the host and the key it saw', async () => {
    transport = createSshTransport();
    const other = keygen(join(fleet.dir, `other-${Date.now()}`)).fingerprint;
    const error = await rejection(run('h1', 'echo never', 10_000, fleet.transport('h1', { hostKey: other })));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain('host key of h1 (127.0.0.1:');
    expect(error.message).toContain(`is ${fleet.host('h1').fingerprint} (ssh-ed25519), not the pinned ${other}`);
  });

  it('refuses a pinned key type the host does not have, saying so', async () => {
    transport = createSshTransport();
    const rsa = keygen(join(fleet.dir, `rsa-${Date.now()}`), { type: 'rsa' }).fingerprint;
    const error = await rejection(run('h1', 'true', 10_000, fleet.transport('h1', { hostKey: `ssh-rsa ${rsa}` })));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error.message).toContain(`is ${fleet.host('h1').fingerprint} (ssh-ed25519), not the pinned ssh-rsa ${rsa}: the host has no ssh-rsa host key;`);
  });

  it('refuses a host whose only key is of another type than the one known_hosts lists, as a changed key', async () => {
    transport = createSshTransport();
    const ecdsa = keygen(join(fleet.dir, `ecdsa-${Date.now()}`), { type: 'ecdsa' });
    const file = join(fleet.dir, 'known_hosts.ecdsa-only');
    writeFileSync(file, `[127.0.0.1]:${fleet.host('h2').port} ${ecdsa.publicKey}\n`);
    // The worker asks for ECDSA first but accepts the handshake with the key h2 has, to name it in the refusal.
    const error = await rejection(run('h2', 'true', 10_000, fleet.transport('h2', { hostKey: undefined, knownHosts: file })));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error.message).toContain(`CHANGED: it presents ${fleet.host('h2').fingerprint} (ssh-ed25519), but ${file} lists ${ecdsa.fingerprint} (ecdsa-sha2-nistp256)`);
  });

  it('refuses a host a known_hosts file does not list, and one whose key changed', async () => {
    transport = createSshTransport();
    const empty = join(fleet.dir, 'known_hosts.empty');
    writeFileSync(empty, '# nobody yet\n');
    const unknown = await rejection(run('h2', 'true', 10_000, fleet.transport('h2', { hostKey: undefined, knownHosts: empty })));
    expect(unknown).toBeInstanceOf(HostKeyRejected);
    expect(unknown.message).toContain(`host key of h2 (127.0.0.1:${fleet.host('h2').port}) is ${fleet.host('h2').fingerprint} (ssh-ed25519), which ${empty} does not list`);

    // h3's line in a known_hosts file that holds h1's key for it: the host key "changed".
    const changed = join(fleet.dir, 'known_hosts.changed');
    writeFileSync(changed, `[127.0.0.1]:${fleet.host('h3').port} ${fleet.host('h1').publicKey}\n`);
    const error = await rejection(run('h3', 'true', 10_000, fleet.transport('h3', { hostKey: undefined, knownHosts: changed })));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error.message).toContain(`host key of h3 (127.0.0.1:${fleet.host('h3').port}) CHANGED: it presents ${fleet.host('h3').fingerprint}`);
    expect(error.message).toContain(`lists ${fleet.host('h1').fingerprint}`);
  });

  it('a host nobody listens on is a connection error (retryable)', async () => {
    transport = createSshTransport({ connectTimeoutMs: 3_000 });
    const port = fleet.host('h1').port;
    await fleet.host('h1').stop();
    try {
      const error = await rejection(run('h1', 'true'));
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error.message).toContain(`cannot connect to ${fleet.user}@127.0.0.1:${port}: connect ECONNREFUSED`);
    } finally {
      // Bring h1 back for the other tests: a fresh fleet is cheaper than restarting one sshd by hand.
      await fleet.stop();
      fleet = await startSshFleet(['h1', 'h2', 'h3'], { CUTOVER_GREETING: 'hello-from-sshd' });
    }
  });

  it('a connection dropped mid-command fails that command as a connection error; the next command reconnects', async () => {
    transport = createSshTransport();
    const proxy = await startProxy(fleet.host('h2').port);
    try {
      const spec = fleet.transport('h2', { port: proxy.port });
      const slow = run('h2', 'echo working; sleep 5; echo done', 10_000, spec);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      proxy.drop();
      const error = await rejection(slow);
      expect(error).toBeInstanceOf(ConnectionError);
      expect(error.message).toMatch(/^the (connection to|session on) .*127\.0\.0\.1:\d+ (was lost|ended without an exit status)/);
      const again = await run('h2', 'echo back', 10_000, spec);
      expect(again.outputTail).toBe('back\n');
      expect(proxy.connections()).toBe(2);
    } finally {
      await proxy.close();
    }
  });

  it('a key the server does not accept fails for good, naming the key', async () => {
    transport = createSshTransport();
    const stranger = join(fleet.dir, `stranger-${Date.now()}`);
    keygen(stranger);
    const error = await rejection(run('h1', 'true', 10_000, fleet.transport('h1', { key: `file:${stranger}` })));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain(`refused the login (key file:${stranger})`);
  });

  it('an encrypted key with its passphrase from the environment', async () => {
    transport = createSshTransport();
    const locked = join(fleet.dir, `locked-${Date.now()}`);
    const { publicKey } = keygen(locked, { passphrase: 'open sesame' });
    writeFileSync(join(fleet.dir, 'authorized_keys'), `${readFileSync(join(fleet.dir, 'authorized_keys'), 'utf8')}${publicKey}\n`);
    process.env.CUTOVER_TEST_PASSPHRASE = 'open sesame';
    try {
      const spec = fleet.transport('h3', { key: `file:${locked}`, passphrase: 'env:CUTOVER_TEST_PASSPHRASE' });
      expect((await run('h3', 'echo unlocked', 10_000, spec)).outputTail).toBe('unlocked\n');
      await transport.close();
      transport = createSshTransport();
      process.env.CUTOVER_TEST_PASSPHRASE = 'wrong';
      const error = await rejection(run('h3', 'true', 10_000, spec));
      expect(error).toBeInstanceOf(PermanentError);
      expect(error.message).toContain(`the key file:${locked} cannot be used`);
    } finally {
      delete process.env.CUTOVER_TEST_PASSPHRASE;
    }
  });

  it('logs in with the SSH agent when the plan names no key', async () => {
    const socket = join(fleet.dir, `agent-${Date.now()}.sock`);
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      await expect.poll(() => readdirSync(fleet.dir).includes(socket.split('/').pop() as string), { timeout: 5_000 }).toBe(true);
      execFileSync('ssh-add', [fleet.userKey], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      process.env.SSH_AUTH_SOCK = socket;
      transport = createSshTransport();
      expect((await run('h1', 'echo via agent', 10_000, fleet.transport('h1', { key: undefined }))).outputTail).toBe('via agent\n');
      delete process.env.SSH_AUTH_SOCK;
      await transport.close();
      transport = createSshTransport();
      const error = await rejection(run('h1', 'true', 10_000, fleet.transport('h1', { key: undefined })));
      expect(error).toBeInstanceOf(PermanentError);
      expect(error.message).toContain('no SSH agent');
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
      agent.kill();
    }
  });

  it('streams output over the channel while the command runs', async () => {
    transport = createSshTransport();
    // The command waits for a file the test writes only once the command's first line has arrived: output held
    // back until the end would leave it waiting until its timeout.
    const flag = join(fleet.dir, `flag-${Date.now()}`);
    let streamed = '';
    const result = await transport.run({ id: 'h1', transport: fleet.transport('h1') }, `echo waiting; while [ ! -e ${flag} ]; do sleep 0.1; done; echo released`, {
      timeoutMs: 10_000,
      onOutput: (chunk) => {
        streamed += chunk;
        if (streamed.includes('waiting\n')) writeFileSync(flag, '');
      },
    });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false, outputTail: 'waiting\nreleased\n' });
    expect(streamed).toBe('waiting\nreleased\n');
  });

  it('a long silent step over ssh holds its connection with keepalives while the batch heartbeats', async () => {
    // A keepalive every 300 ms: a connection that left three unanswered (0.9 s) would count as lost, long before
    // the commands' 4 s of silence are over.
    transport = createSshTransport({ keepaliveIntervalMs: 300 });
    const batch: StepBatch = {
      step: 'upgrade',
      role: 'management-server',
      tasks: ['h1', 'h2'].map((id) => ({ host: id, command: `sleep 4; echo "${id} upgraded, $CUTOVER_GREETING"`, transport: fleet.transport(id) })),
      maxParallel: 2,
      timeoutMs: 20_000,
      retry: { maxAttempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '1m' },
    };
    const env = new MockActivityEnvironment({ attempt: 1 }, { logger: new DefaultLogger('ERROR') });
    const beats: number[] = [];
    env.on('heartbeat', () => beats.push(Date.now()));
    const logins = () => ['h1', 'h2'].map((id) => fleet.host(id).logins());
    const before = logins();
    const started = Date.now();
    const { runHostStep } = createHostStepActivities({ runner: transport });
    const outcomes = await env.run<[StepBatch], HostOutcome[], typeof runHostStep>(runHostStep, batch);
    // Each command ran in an sshd session (the greeting is sshd's SetEnv) on one connection that outlived the silence.
    expect(outcomes.map((o) => [o.host, o.ok, o.outputTail])).toEqual([
      ['h1', true, 'h1 upgraded, hello-from-sshd\n'],
      ['h2', true, 'h2 upgraded, hello-from-sshd\n'],
    ]);
    expect(logins().map((n, i) => n - (before[i] as number))).toEqual([1, 1]);
    // Meanwhile the worker kept heartbeating every second (the heartbeat timeout is 5 s).
    expect(beats.filter((at) => at - started < 3_900).length).toBeGreaterThanOrEqual(1);
  });

  it('close() ends every pooled connection', async () => {
    transport = createSshTransport();
    await Promise.all(['h1', 'h2', 'h3'].map((id) => run(id, 'true')));
    const disconnects = () => fleet.hosts.map((host) => host.log().split('\n').filter((line) => line.includes('Received disconnect')).length);
    const before = disconnects();
    await transport.close();
    await expect.poll(() => disconnects().map((n, i) => n - (before[i] as number)), { timeout: 5_000 }).toEqual([1, 1, 1]);
  });
});

describe('ssh transport: a host with ed25519, ECDSA and RSA host keys (as Windows OpenSSH generates them)', () => {
  let multi: SshFleet;
  beforeAll(async () => {
    multi = await startSshFleet(['w1'], {}, { extraHostKeys: ['ecdsa', 'rsa'] });
  });
  afterAll(async () => {
    await multi?.stop();
  });
  const runOn = (overrides: Parameters<SshFleet['transport']>[1]) => transport.run({ id: 'w1', transport: multi.transport('w1', overrides) }, 'echo in', { timeoutMs: 10_000 });
  const key = (type: 'ed25519' | 'ecdsa' | 'rsa') => multi.host('w1').keys[type] as { publicKey: string; fingerprint: string };

  it('connects with its RSA or ECDSA key pinned with the key type, though ed25519 is the one a handshake prefers', async () => {
    transport = createSshTransport();
    expect((await runOn({ hostKey: `ssh-rsa ${key('rsa').fingerprint}` })).outputTail).toBe('in\n');
    expect((await runOn({ hostKey: `ecdsa-sha2-nistp256 ${key('ecdsa').fingerprint}` })).outputTail).toBe('in\n');
    // A list of pins: the host may present any of them (here the RSA key, the only type listed).
    const stranger = keygen(join(multi.dir, `stranger-rsa-${Date.now()}`), { type: 'rsa' }).fingerprint;
    expect((await runOn({ hostKey: [`ssh-rsa ${stranger}`, `ssh-rsa ${key('rsa').fingerprint}`] })).outputTail).toBe('in\n');
  });

  it('refuses its RSA fingerprint pinned without a type, saying to write the type', async () => {
    transport = createSshTransport();
    const error = await rejection(runOn({ hostKey: key('rsa').fingerprint }));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error.message).toContain(`is ${key('ed25519').fingerprint} (ssh-ed25519), not the pinned ${key('rsa').fingerprint}: a pin without its key type`);
    expect(error.message).toContain('write its type before it (e.g. "ssh-rsa SHA256:...")');
  });

  it('connects when known_hosts lists only its ECDSA key', async () => {
    transport = createSshTransport();
    const file = join(multi.dir, 'known_hosts.ecdsa');
    writeFileSync(file, `[127.0.0.1]:${multi.host('w1').port} ${key('ecdsa').publicKey}\n`);
    expect((await runOn({ hostKey: undefined, knownHosts: file })).outputTail).toBe('in\n');
  });

  it('refuses an RSA key that is not the pinned one, for good, naming the host and both fingerprints', async () => {
    transport = createSshTransport();
    const other = keygen(join(multi.dir, `other-rsa-${Date.now()}`), { type: 'rsa' }).fingerprint;
    const error = await rejection(runOn({ hostKey: `ssh-rsa ${other}` }));
    expect(error).toBeInstanceOf(HostKeyRejected);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toBe(
      `host key of w1 (127.0.0.1:${multi.host('w1').port}) is ${key('rsa').fingerprint} (ssh-rsa), not the pinned ssh-rsa ${other}: if the host was reinstalled, check the new key with its administrator and update transport.hostKey`,
    );
  });
});

/** Connections the test's sshd servers hold established, as the kernel lists them (server side: local port). */
function serverConnections(ports: number[]): number {
  const wanted = new Set(ports.map((port) => port.toString(16).toUpperCase().padStart(4, '0')));
  return ['/proc/net/tcp', '/proc/net/tcp6']
    .flatMap((file) => readFileSync(file, 'utf8').split('\n').slice(1))
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[3] === '01' && wanted.has(fields[1]?.split(':')[1] ?? '');
    }).length;
}

describe('ssh transport: bounded connections', () => {
  const ports = () => ['h1', 'h2', 'h3'].map((id) => (fleet.transport(id) as { port: number }).port);

  it('holds the cap with more hosts than the cap, closing the least recently used idle connection first', async () => {
    const ssh: SshRunner = createSshTransport({ maxConnections: 2 });
    transport = ssh;
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, serverConnections(ports()))), 10);
    try {
      for (let round = 0; round < 2; round++) {
        const results = await Promise.all(['h1', 'h2', 'h3'].map((id) => run(id, 'sleep 0.2; echo ok')));
        expect(results.map((r) => r.exitCode)).toEqual([0, 0, 0]);
      }
    } finally {
      clearInterval(watch);
    }
    expect(most).toBe(2);
    expect(ssh.openConnections()).toBeLessThanOrEqual(2);
  });

  it('closes a connection left idle, and logs in again once one is older than its maximum age', async () => {
    const ssh = createSshTransport({ idleMs: 300, maxAgeMs: 1_000 });
    transport = ssh;
    const logins = () => fleet.host('h1').logins();
    const before = logins();
    await run('h1', 'true');
    expect(ssh.openConnections()).toBe(1);
    await expect.poll(() => ssh.openConnections(), { timeout: 5_000 }).toBe(0);
    await run('h1', 'true');
    // Kept busy past its maximum age (never idle for 300 ms): the next command logs in again.
    await run('h1', 'sleep 1.1');
    await run('h1', 'true');
    expect(logins() - before).toBe(3);
  });
});
