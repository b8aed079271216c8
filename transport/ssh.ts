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
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Transport as TransportSpec } from '../core/plan';
import { type HostKeyType, hostKeyPinText, hostKeyPins } from '../core/hostKeys';
import { checkKnownHosts, fingerprint, keyType, knownKeyTypes, preferredHostKeyAlgorithms, sameFingerprint } from './knownHosts';
import { resolveSecret } from './secrets';
import { ConnectionError, type HostRunner, PermanentError, type CommandResult, appendTail } from './transport';

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

export function createSshTransport(options: SshTransportOptions = {}): HostRunner {
  const defaultKnownHosts = options.knownHosts ?? `${homedir()}/.ssh/known_hosts`;
  const connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
  const keepaliveIntervalMs = options.keepaliveIntervalMs ?? 10_000;
  const maxSessions = options.maxSessionsPerHost ?? 8;
  /** One connection per distinct way of reaching a host; an entry leaves as soon as its connection is gone. */
  const pool = new Map<string, Promise<Connection>>();
  const live = new Set<Connection>();
  let closing = false;

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
      const client = new Client();
      const connection: Connection = { client, closed: false, sessions: 0, queue: [], inFlight: new Set() };
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
        live.delete(connection);
        gone();
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

  function connection(hostId: string, spec: SshSpec): Promise<Connection> {
    const key = JSON.stringify([spec.address, spec.port, spec.user, spec.key, spec.passphrase, spec.hostKey, spec.knownHosts]);
    const pooled = pool.get(key);
    if (pooled) return pooled;
    const entry: Promise<Connection> = connect(hostId, spec, () => {
      if (pool.get(key) === entry) pool.delete(key);
    });
    pool.set(key, entry);
    entry.catch(() => {
      if (pool.get(key) === entry) pool.delete(key);
    });
    return entry;
  }

  async function session(connection: Connection): Promise<() => void> {
    // A released slot passes straight to the next waiter, so a newcomer cannot take it in between.
    if (connection.sessions >= maxSessions) await new Promise<void>((resolve) => connection.queue.push(resolve));
    else connection.sessions++;
    return () => {
      const next = connection.queue.shift();
      if (next) next();
      else connection.sessions--;
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
      const connected = await connection(host.id, spec);
      const release = await session(connected);
      try {
        if (connected.closed) throw new ConnectionError(`the connection to ${where(spec)} was lost`);
        return await exec(host.id, spec, connected, command, timeoutMs, signal, onOutput);
      } finally {
        release();
      }
    },
    async close() {
      closing = true;
      await Promise.allSettled([...pool.values()]);
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
