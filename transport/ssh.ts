/**
 * Runs commands on real hosts over SSH (the ssh2 library; no `ssh` binary). Key authentication (a key file named
 * by a secret reference, or the worker's SSH agent), the host key pinned (a fingerprint in the plan or a known_hosts
 * file on the worker), one connection per host reused by every step a worker runs on it, closed on shutdown.
 *
 * What counts as what: a command's exit status decides the step; a host that cannot be reached, or a connection
 * lost while a command ran, is a ConnectionError (retried by the step's policy); a host key that is not the pinned
 * one, or a key or secret that is missing, is a PermanentError (the operator decides, nothing is retried).
 */
import { readFile } from 'node:fs/promises';
import { constants, homedir } from 'node:os';
import type { Client, ClientChannel, ConnectConfig } from 'ssh2';
import type { Transport as TransportSpec } from '../core/plan';
import { type HostKeyType, hostKeyPinText, hostKeyPins } from '../core/hostKeys';
import { checkKnownHosts, fingerprint, keyType, knownKeyTypes, preferredHostKeyAlgorithms, sameFingerprint } from './knownHosts';
import { resolveSecret } from './secrets';
import { ConnectionError, type HostRunner, PermanentError, type CommandResult, appendTail } from './transport';

/** ssh2 is loaded by the first ssh connection, not at every worker's start (about 40 ms): most fleets are local. */
function newSshClient(): Client {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Client } = require('ssh2') as typeof import('ssh2');
  return new Client();
}

export type SshSpec = Extract<TransportSpec, { kind: 'ssh' }>;

/** The host presented a key that is not the one pinned for it. */
export class HostKeyRejected extends PermanentError {
  override readonly name = 'HostKeyRejected';
}

export interface SshTransportOptions {
  /** known_hosts for hosts that pin neither `hostKey` nor `knownHosts` (default ~/.ssh/known_hosts). */
  knownHosts?: string;
  /** How long the TCP connect and SSH handshake may take. */
  connectTimeoutMs?: number;
  /** SSH-level keepalives: a connection that stops answering three in a row counts as lost. */
  keepaliveIntervalMs?: number;
  /** Sessions open at once on one connection (OpenSSH allows 10 by default: MaxSessions). */
  maxSessionsPerHost?: number;
  /** Connections open at once, to all hosts: over it, the least recently used idle one is closed first (default 64). */
  maxConnections?: number;
  /** A connection nothing ran on for this long is closed (default 60 s). */
  idleMs?: number;
  /**
   * A connection older than this takes no new command and closes once its last one ends (default 30 min): the next
   * command logs in again, so a rotated key or a revoked host key is checked again.
   */
  maxAgeMs?: number;
}

/**
 * ConnectionError messages name the address, not the host id: the batch activity reports them as
 * `cannot reach HOST: ...`, the database activity as `database ACTION on HOST failed: ...`.
 */

/** What a command is waiting for on a session: told when the connection goes away under it. */
type Lost = (error: ConnectionError) => void;

interface Connection {
  client: Client;
  closed: boolean;
  sessions: number;
  queue: (() => void)[];
  inFlight: Set<Lost>;
  openedAt: number;
  /** In the pool (new commands may use it); a retired connection only finishes what runs on it. */
  pooled: boolean;
  idleTimer?: NodeJS.Timeout;
}

/** A pool entry: the connection once it is ready. */
interface Pooled {
  promise: Promise<Connection>;
  connection?: Connection;
}

function where(spec: SshSpec): string {
  return `${spec.user}@${spec.address}:${spec.port}`;
}

function signalExitCode(name: string | undefined): number {
  const number = name ? (constants.signals as Record<string, number>)[`SIG${name}`] : undefined;
  return 128 + (number ?? 9);
}

/**
 * Sends a signal to a session's command: OpenSSH delivers it to the command's process group; a server that ignores
 * signals still loses the channel, and a channel already closed gets nothing.
 */
function signalChannel(channel: ClientChannel, name: string): void {
  // Not ssh2's public signal(): it sends nothing once input is closed, and exec closes it at once (RFC 4254 allows signals after EOF).
  const internal = channel as unknown as { _client?: { _protocol?: { signal?(id: number, name: string): void } }; outgoing?: { id: number; state: string } };
  try {
    if (internal.outgoing && (internal.outgoing.state === 'open' || internal.outgoing.state === 'eof')) internal._client?._protocol?.signal?.(internal.outgoing.id, name);
  } catch {
    // the connection is already gone
  }
}

/** The ssh transport, and what it holds open (for tests and the worker's logs). */
export interface SshRunner extends HostRunner {
  openConnections(): number;
}

export function createSshTransport(options: SshTransportOptions = {}): SshRunner {
  const defaultKnownHosts = options.knownHosts ?? `${homedir()}/.ssh/known_hosts`;
  const connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
  const keepaliveIntervalMs = options.keepaliveIntervalMs ?? 10_000;
  const maxSessions = options.maxSessionsPerHost ?? 8;
  const maxConnections = Math.max(1, options.maxConnections ?? 64);
  const idleMs = options.idleMs ?? 60_000;
  const maxAgeMs = options.maxAgeMs ?? 30 * 60_000;
  /**
   * One connection per distinct way of reaching a host, least recently used first (a Map keeps insertion order; a use
   * moves an entry to the end); an entry leaves as soon as its connection is gone.
   */
  const pool = new Map<string, Pooled>();
  const live = new Set<Connection>();
  /** Commands waiting for room under maxConnections: told whenever a connection goes idle or away. */
  let roomWaiters: (() => void)[] = [];
  let closing = false;

  const roomMade = () => {
    const waiters = roomWaiters;
    roomWaiters = [];
    for (const wake of waiters) wake();
  };
  /** Sockets open or opening: the pool's, and retired ones still finishing a command. */
  const open = () => pool.size + [...live].filter((connection) => !connection.pooled).length;
  const idle = (connection: Connection) => connection.sessions === 0 && connection.queue.length === 0;

  /** Takes a connection out of the pool; it closes once nothing runs on it. */
  function retire(key: string, connection: Connection): void {
    if (pool.get(key)?.connection === connection) pool.delete(key);
    connection.pooled = false;
    clearTimeout(connection.idleTimer);
    if (idle(connection) && !connection.closed) connection.client.end();
  }

  /** Closes the least recently used idle connection, if there is one. */
  function evictIdle(): boolean {
    for (const [key, entry] of pool) {
      if (entry.connection && idle(entry.connection)) {
        retire(key, entry.connection);
        return true;
      }
    }
    return false;
  }

  async function hostKeyCheck(hostId: string, spec: SshSpec): Promise<{ verify: (key: Buffer) => string | undefined; algorithms?: string[] }> {
    const seen = (key: Buffer) => `${fingerprint(key)} (${keyType(key)})`;
    if (spec.hostKey) {
      const pins = hostKeyPins(spec.hostKey);
      const texts = pins.map(hostKeyPinText);
      const pinned = texts.length === 1 ? `not the pinned ${texts[0]}` : `none of the pinned ${texts.join(', ')}`;
      const types = [...new Set(pins.flatMap((pin) => (pin.type ? [pin.type] : [])))];
      const algorithms = preferredHostKeyAlgorithms(types);
      const reinstalled = 'if the host was reinstalled, check the new key with its administrator and update transport.hostKey';
      return {
        ...(algorithms ? { algorithms } : {}),
        verify: (key) => {
          const type = keyType(key);
          if (pins.some((pin) => sameFingerprint(fingerprint(key), pin.fingerprint) && (pin.type === undefined || pin.type === type))) return undefined;
          const refused = `host key of ${hostId} (${spec.address}:${spec.port}) is ${seen(key)}, ${pinned}`;
          // The worker asked for the pinned types first: a key of another type means the host has none of them.
          if (types.length > 0 && !types.includes(type as HostKeyType)) return `${refused}: the host has no ${types.join(' or ')} host key; ${reinstalled}`;
          if (pins.some((pin) => pin.type === undefined)) {
            return `${refused}: a pin without its key type is compared with the key the handshake prefers (here ${type}); if the pin is the host's RSA or ECDSA key, write its type before it (e.g. "ssh-rsa SHA256:..."); ${reinstalled}`;
          }
          return `${refused}: ${reinstalled}`;
        },
      };
    }
    const file = (spec.knownHosts ?? defaultKnownHosts).replace(/^~(?=\/)/, homedir());
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch {
      // No file lists nothing: every key is unknown, and refused below with the fingerprint to check.
    }
    const algorithms = preferredHostKeyAlgorithms(knownKeyTypes(text, spec.address, spec.port));
    return {
      ...(algorithms ? { algorithms } : {}),
      verify: (key) => {
        const verdict = checkKnownHosts(text, spec.address, spec.port, key);
        switch (verdict.kind) {
          case 'match':
            return undefined;
          case 'unknown':
            return `host key of ${hostId} (${spec.address}:${spec.port}) is ${seen(key)}, which ${file} does not list: check it with the host's administrator, then add it there (ssh-keyscan) or pin it as transport.hostKey`;
          case 'revoked':
            return `host key of ${hostId} (${spec.address}:${spec.port}) is ${seen(key)}, which ${file} marks @revoked`;
          case 'changed':
            return `host key of ${hostId} (${spec.address}:${spec.port}) CHANGED: it presents ${seen(key)}, but ${file} lists ${verdict.known.map((k) => `${k.fingerprint} (${k.type})`).join(', ')}; someone may be intercepting the connection, or the host was reinstalled: check with its administrator before updating ${file}`;
        }
      },
    };
  }

  async function connect(hostId: string, spec: SshSpec, gone: () => void): Promise<Connection> {
    const privateKey = spec.key ? (await resolveSecret(spec.key)).value : undefined;
    const passphrase = spec.passphrase ? (await resolveSecret(spec.passphrase)).value : undefined;
    const agent = privateKey === undefined ? process.env.SSH_AUTH_SOCK : undefined;
    if (privateKey === undefined && !agent) {
      throw new PermanentError(`${hostId}: no way to log in as ${spec.user}: the plan names no key (transport.key) and this worker has no SSH agent (SSH_AUTH_SOCK)`);
    }
    const hostKey = await hostKeyCheck(hostId, spec);

    return new Promise<Connection>((resolve, reject) => {
      const client = newSshClient();
      const connection: Connection = { client, closed: false, sessions: 0, queue: [], inFlight: new Set(), openedAt: Date.now(), pooled: true };
      let settled = false;
      let refusedKey: string | undefined;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        reject(error);
      };
      client.on('ready', () => {
        settled = true;
        live.add(connection);
        resolve(connection);
      });
      client.on('error', (error: Error & { level?: string }) => {
        if (refusedKey) fail(new HostKeyRejected(refusedKey));
        else if (error.level === 'client-authentication') {
          fail(new PermanentError(`${hostId}: ${where(spec)} refused the login (${spec.key ? `key ${spec.key}` : 'keys of the SSH agent'}): ${error.message}`));
        } else fail(new ConnectionError(`cannot connect to ${where(spec)}: ${error.message}`));
        // After `ready`, an error is followed by `close`, which fails whatever still runs on the connection.
      });
      client.on('close', () => {
        connection.closed = true;
        clearTimeout(connection.idleTimer);
        live.delete(connection);
        gone();
        roomMade();
        const lost = new ConnectionError(`the connection to ${where(spec)} was lost`);
        for (const notify of connection.inFlight) notify(lost);
        connection.inFlight.clear();
        fail(refusedKey ? new HostKeyRejected(refusedKey) : new ConnectionError(`${where(spec)} closed the connection during the handshake`));
      });
      const config: ConnectConfig = {
        host: spec.address,
        port: spec.port,
        username: spec.user,
        readyTimeout: connectTimeoutMs,
        keepaliveInterval: keepaliveIntervalMs,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          refusedKey = hostKey.verify(key);
          return refusedKey === undefined;
        },
        ...(hostKey.algorithms ? { algorithms: { serverHostKey: hostKey.algorithms as never } } : {}),
        ...(privateKey !== undefined ? { privateKey, ...(passphrase !== undefined ? { passphrase } : {}) } : { agent }),
      };
      try {
        client.connect(config);
      } catch (error) {
        // ssh2 parses the key before connecting: a wrong passphrase or a file that is no key ends here.
        fail(new PermanentError(`${hostId}: the key ${spec.key ?? ''} cannot be used: ${(error as Error).message}`));
      }
    });
  }

  const usable = (connection: Connection) => !connection.closed && connection.pooled && Date.now() - connection.openedAt < maxAgeMs;

  /**
   * A connection to the host, with its session already asked for: the session counts from this synchronous step on,
   * so no other command can find the connection idle and evict it before the session starts.
   */
  async function connection(hostId: string, spec: SshSpec): Promise<{ connection: Connection; started: Promise<() => void> }> {
    const key = JSON.stringify([spec.address, spec.port, spec.user, spec.key, spec.passphrase, spec.hostKey, spec.knownHosts]);
    for (;;) {
      const pooled = pool.get(key);
      if (pooled) {
        pool.delete(key);
        pool.set(key, pooled);
        const connection = await pooled.promise;
        if (usable(connection)) return { connection, started: session(key, connection) };
        retire(key, connection);
        continue;
      }
      if (open() >= maxConnections) {
        // The evicted connection counts until it has closed: only then is there room.
        evictIdle();
        await new Promise<void>((resolve) => roomWaiters.push(resolve));
        continue;
      }
      const entry: Pooled = {
        promise: connect(hostId, spec, () => {
          if (pool.get(key) === entry) pool.delete(key);
        }),
      };
      pool.set(key, entry);
      entry.promise.then(
        (connection) => (entry.connection = connection),
        () => {
          if (pool.get(key) === entry) pool.delete(key);
          roomMade();
        },
      );
      const connection = await entry.promise;
      if (usable(connection)) return { connection, started: session(key, connection) };
      retire(key, connection);
    }
  }

  async function session(key: string, connection: Connection): Promise<() => void> {
    clearTimeout(connection.idleTimer);
    // A released slot passes straight to the next waiter, so a newcomer cannot take it in between.
    if (connection.sessions >= maxSessions) await new Promise<void>((resolve) => connection.queue.push(resolve));
    else connection.sessions++;
    return () => {
      const next = connection.queue.shift();
      if (next) return next();
      connection.sessions--;
      if (!idle(connection)) return;
      if (!connection.pooled) retire(key, connection);
      else connection.idleTimer = setTimeout(() => retire(key, connection), idleMs).unref();
      roomMade();
    };
  }

  function exec(hostId: string, spec: SshSpec, connection: Connection, command: string, timeoutMs: number, signal: AbortSignal | undefined, onOutput: ((chunk: string) => void) | undefined) {
    return new Promise<CommandResult>((resolve, reject) => {
      let tail = '';
      let exitCode: number | undefined;
      let timedOut = false;
      let stopped = false;
      let settled = false;
      let channel: ClientChannel | undefined;
      let grace: NodeJS.Timeout | undefined;
      const cleanUp = () => {
        settled = true;
        clearTimeout(timer);
        clearTimeout(grace);
        signal?.removeEventListener('abort', stop);
        connection.inFlight.delete(lost);
      };
      const lost: Lost = (error) => {
        if (settled) return;
        cleanUp();
        reject(error);
      };
      const done = () => {
        if (settled) return;
        if (exitCode === undefined && !stopped) {
          // The session ended without an exit status: the command's fate is unknown, as with a lost connection.
          cleanUp();
          reject(new ConnectionError(`the session on ${where(spec)} ended without an exit status (connection lost?)`));
          return;
        }
        cleanUp();
        if (timedOut) tail = appendTail(tail, `\n[cutover] killed after ${timeoutMs} ms timeout\n`);
        resolve({ exitCode: exitCode ?? 137, outputTail: tail, timedOut });
      };
      function stop() {
        if (stopped || settled) return;
        stopped = true;
        if (channel) signalChannel(channel, 'KILL');
        channel?.close();
        grace = setTimeout(done, 1_000);
      }
      const timer = setTimeout(() => {
        timedOut = true;
        stop();
      }, timeoutMs);
      connection.inFlight.add(lost);
      signal?.addEventListener('abort', stop, { once: true });
      const opened = (error: Error | undefined, stream: ClientChannel) => {
        if (settled) {
          stream?.close();
          return;
        }
        if (error) {
          cleanUp();
          reject(new ConnectionError(`cannot open a session on ${where(spec)}: ${error.message}`));
          return;
        }
        channel = stream;
        if (stopped || signal?.aborted) {
          stopped = true;
          stream.close();
        }
        stream.end(); // no input: a command that reads stdin sees end-of-file instead of waiting forever
        const onData = (text: string) => {
          tail = appendTail(tail, text);
          onOutput?.(text);
        };
        stream.setEncoding('utf8');
        stream.stderr.setEncoding('utf8');
        stream.on('data', onData);
        stream.stderr.on('data', onData);
        stream.on('exit', (code: number | null, signalName?: string) => {
          exitCode = code ?? signalExitCode(signalName);
          // A service the command started in the background may hold the channel open: wait a moment for its
          // output to drain, then stop waiting (the service keeps running).
          grace ??= setTimeout(() => {
            done();
            stream.close();
          }, 500);
        });
        stream.on('close', done);
      };
      try {
        connection.client.exec(command, opened);
      } catch (error) {
        // ssh2 throws "Not connected" when the connection went away since it was taken from the pool.
        cleanUp();
        reject(new ConnectionError(`cannot open a session on ${where(spec)}: ${(error as Error).message}`));
      }
    });
  }

  return {
    async run(host, command, { timeoutMs, signal, onOutput }) {
      if (host.transport.kind !== 'ssh') throw new Error(`the ssh transport was asked to run on ${host.id}, a ${host.transport.kind} host`);
      if (closing) throw new ConnectionError(`this worker is shutting down`);
      const spec = host.transport;
      const { connection: connected, started } = await connection(host.id, spec);
      const release = await started;
      try {
        if (connected.closed) throw new ConnectionError(`the connection to ${where(spec)} was lost`);
        return await exec(host.id, spec, connected, command, timeoutMs, signal, onOutput);
      } finally {
        release();
      }
    },
    openConnections: () => open(),
    async close() {
      closing = true;
      await Promise.allSettled([...pool.values()].map((entry) => entry.promise));
      await Promise.all(
        [...live].map(
          (connection) =>
            new Promise<void>((resolve) => {
              if (connection.closed) return resolve();
              const force = setTimeout(() => {
                connection.client.destroy();
                resolve();
              }, 2_000);
              connection.client.once('close', () => {
                clearTimeout(force);
                resolve();
              });
              connection.client.end();
            }),
        ),
      );
      pool.clear();
    },
  };
}
