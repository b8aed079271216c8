/**
 * Real OpenSSH servers for the tests, standing for hosts: Debian's sshd (scripts/ensure-test-deps.sh installs it)
 * on loopback ports, each with its own generated host key (or keys: ECDSA and RSA besides ed25519, as Windows
 * OpenSSH generates them), all accepting one generated user key, running as the
 * current user. `SetEnv` gives their sessions the lab's PATH and directory, so `labhost` works over ssh the way an
 * installer works on a real server.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { Transport } from '../core/plan';
import { freePort } from '../stack/devServer';

export const SSHD = '/usr/sbin/sshd';

/** Host key types a test server may have, as `ssh-keygen -t` names them. */
export type HostKeyKind = 'ed25519' | 'ecdsa' | 'rsa';

export interface SshHost {
  id: string;
  port: number;
  /** The ed25519 host key's fingerprint, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** The host's ed25519 public key line (`ssh-ed25519 AAAA...`), for known_hosts files. */
  publicKey: string;
  /** Every host key of the server, by type (ecdsa is nistp256). */
  keys: Partial<Record<HostKeyKind, { publicKey: string; fingerprint: string }>>;
  /** Everything sshd logged (-e): accepted logins, disconnects. */
  log(): string;
  /** How many logins this server accepted: one per connection. */
  logins(): number;
  stop(): Promise<void>;
}

export interface SshFleet {
  dir: string;
  user: string;
  /** The private key every server accepts (no passphrase). */
  userKey: string;
  hosts: SshHost[];
  host(id: string): SshHost;
  /** A known_hosts file listing every host (as `[127.0.0.1]:port`). */
  knownHosts: string;
  /** The transport a plan names for a host: key by file reference, host key pinned by fingerprint. */
  transport(id: string, overrides?: Partial<Extract<Transport, { kind: 'ssh' }>>): Extract<Transport, { kind: 'ssh' }>;
  stop(): Promise<void>;
}

export function keygen(file: string, options: { passphrase?: string; comment?: string; type?: HostKeyKind } = {}): { publicKey: string; fingerprint: string } {
  execFileSync('ssh-keygen', ['-q', '-t', options.type ?? 'ed25519', '-N', options.passphrase ?? '', '-C', options.comment ?? 'cutover-test', '-f', file]);
  const publicKey = readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1] as string;
  return { publicKey, fingerprint };
}

export interface SshFleetOptions {
  /** Host keys each server has besides its ed25519 one. */
  extraHostKeys?: Exclude<HostKeyKind, 'ed25519'>[];
}

async function startSshd(dir: string, id: string, authorizedKeys: string, env: Record<string, string>, options: SshFleetOptions): Promise<SshHost> {
  const home = join(dir, id);
  mkdirSync(home, { recursive: true });
  const { publicKey, fingerprint } = keygen(join(home, 'host_key'), { comment: id });
  const keys: SshHost['keys'] = { ed25519: { publicKey, fingerprint } };
  for (const type of options.extraHostKeys ?? []) keys[type] = keygen(join(home, `host_key_${type}`), { comment: id, type });
  const port = await freePort();
  const setEnv = Object.entries(env)
    .map(([name, value]) => `"${name}=${value}"`)
    .join(' ');
  const config = join(home, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(home, 'host_key')}`,
      ...(options.extraHostKeys ?? []).map((type) => `HostKey ${join(home, `host_key_${type}`)}`),
      'PidFile none',
      `AuthorizedKeysFile ${authorizedKeys}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      `AllowUsers ${userInfo().username}`,
      'LogLevel INFO',
      ...(setEnv ? [`SetEnv ${setEnv}`] : []),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => (log += text));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd for ${id} did not start listening within 10 s:\n${log}`)), 10_000);
    const check = () => {
      if (log.includes('Server listening')) {
        clearTimeout(timer);
        child.stderr?.off('data', check);
        resolve();
      }
    };
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sshd for ${id} exited with ${code}:\n${log}`));
    });
  });
  return {
    id,
    port,
    fingerprint,
    publicKey,
    keys,
    log: () => log,
    logins: () => log.split('\n').filter((line) => line.includes('Accepted publickey')).length,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Starts one sshd per id. `env` is set in every session (e.g. PATH with lab/bin, CUTOVER_LAB_DIR). */
export async function startSshFleet(ids: string[], env: Record<string, string> = {}, options: SshFleetOptions = {}): Promise<SshFleet> {
  // sshd's privilege separation directory; Debian's package creates it only when its service starts.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'cutover-sshd-'));
  chmodSync(dir, 0o700);
  const userKey = join(dir, 'user_key');
  const user = keygen(userKey, { comment: 'cutover-worker' });
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${user.publicKey}\n`);
  const hosts: SshHost[] = [];
  try {
    for (const id of ids) hosts.push(await startSshd(dir, id, authorizedKeys, env, options));
  } catch (error) {
    await Promise.all(hosts.map((host) => host.stop()));
    throw error;
  }
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, hosts.map((host) => `[127.0.0.1]:${host.port} ${host.publicKey}\n`).join(''));
  const host = (id: string) => {
    const found = hosts.find((h) => h.id === id);
    if (!found) throw new Error(`no ssh host ${id}`);
    return found;
  };
  return {
    dir,
    user: userInfo().username,
    userKey,
    hosts,
    host,
    knownHosts,
    transport: (id, overrides = {}) => ({
      kind: 'ssh',
      address: '127.0.0.1',
      port: host(id).port,
      user: userInfo().username,
      key: `file:${userKey}`,
      hostKey: host(id).fingerprint,
      ...overrides,
    }),
    async stop() {
      await Promise.all(hosts.map((h) => h.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy in front of a server: `drop()` cuts every connection through it, as a network failure would. */
export async function startProxy(targetPort: number): Promise<{ port: number; connections(): number; drop(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const forget = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => accepted,
    drop: () => {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Starts a fleet for the test that calls it and stops it after that test. */
export function sshFleetPerTest(): (ids: string[], env?: Record<string, string>) => Promise<SshFleet> {
  let current: SshFleet | undefined;
  afterEach(async () => {
    await current?.stop();
    current = undefined;
  });
  return async (ids, env) => (current = await startSshFleet(ids, env));
}
