/**
 * Host key pinning: a host's key is accepted only when it is the fingerprint the plan pins, or a key an OpenSSH
 * known_hosts file lists for it. Nothing is ever added on first use: an unknown key is refused like a changed one.
 */
import { createHash, createHmac } from 'node:crypto';

/** As `ssh-keygen -lf` prints it: SHA256 of the key blob, base64 without padding. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside the blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`...). */
export function keyType(key: Buffer): string {
  if (key.length < 4) return 'unknown';
  const length = key.readUInt32BE(0);
  return length > 0 && length < 64 && key.length >= 4 + length ? key.subarray(4, 4 + length).toString('latin1') : 'unknown';
}

export function sameFingerprint(a: string, b: string): boolean {
  return a.replace(/=+$/, '') === b.replace(/=+$/, '');
}

export type KnownHostsVerdict =
  | { kind: 'match' }
  | { kind: 'unknown' }
  /** The file lists other keys for this host: it changed, or it offers a type the file does not have. */
  | { kind: 'changed'; known: { type: string; fingerprint: string }[] }
  | { kind: 'revoked' };

interface KnownHostsLine {
  marker?: 'revoked' | 'cert-authority';
  patterns: string;
  type: string;
  key: Buffer;
}

export function parseKnownHosts(text: string): KnownHostsLine[] {
  const lines: KnownHostsLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostsLine['marker'];
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift()?.slice(1);
      if (name !== 'revoked' && name !== 'cert-authority') continue;
      marker = name;
    }
    const [patterns, type, base64] = fields;
    if (!patterns || !type || !base64) continue;
    lines.push({ ...(marker ? { marker } : {}), patterns, type, key: Buffer.from(base64, 'base64') });
  }
  return lines;
}

/** How OpenSSH names a host in known_hosts: the bare name on port 22, `[name]:port` otherwise. */
export function knownHostsName(address: string, port: number): string {
  const name = address.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

function wildcard(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return regex.test(name);
}

/** `|1|salt|hash`: HMAC-SHA1 of the name keyed with the salt, as `ssh-keygen -H` writes it. */
function hashedMatch(entry: string, name: string): boolean {
  const [, version, salt, hash] = entry.split('|');
  if (version !== '1' || !salt || !hash) return false;
  return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
}

function hostMatches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatch(patterns, name);
  let matched = false;
  for (const pattern of patterns.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcard(pattern.slice(1), name)) return false;
    } else if (wildcard(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export function checkKnownHosts(text: string, address: string, port: number, key: Buffer): KnownHostsVerdict {
  const name = knownHostsName(address, port);
  const forHost = parseKnownHosts(text).filter((line) => line.marker !== 'cert-authority' && hostMatches(line.patterns, name));
  if (forHost.some((line) => line.marker === 'revoked' && line.key.equals(key))) return { kind: 'revoked' };
  const listed = forHost.filter((line) => line.marker === undefined);
  if (listed.some((line) => line.key.equals(key))) return { kind: 'match' };
  if (listed.length === 0) return { kind: 'unknown' };
  return { kind: 'changed', known: listed.map((line) => ({ type: line.type, fingerprint: fingerprint(line.key) })) };
}

/**
 * Host key algorithms the handshake offers, per key type, in ssh2's default order of preference. An RSA key signs
 * the handshake with SHA-2 (RFC 8332) or, on old servers, SHA-1 (`ssh-rsa`): all three are that one key.
 */
const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * The host key algorithms to offer when `types` are the key types the worker can check: those first, then every
 * other (as OpenSSH orders HostKeyAlgorithms by the types known_hosts lists). The server presents the first one in
 * this list that it has, so a host with a key of a known type shows that key. The others stay on the list so that a
 * host without any such key still completes the handshake and is refused with the key it presents, rather than with
 * a bare "no matching host key format" that reads like a network problem. Undefined: ssh2's default order will do.
 */
export function preferredHostKeyAlgorithms(types: string[]): string[] | undefined {
  const preferred = [...new Set(types.flatMap((type) => ALGORITHMS_FOR_KEY_TYPE[type] ?? []))];
  if (preferred.length === 0) return undefined;
  const rest = Object.values(ALGORITHMS_FOR_KEY_TYPE).flat().filter((algorithm) => !preferred.includes(algorithm));
  return [...preferred, ...rest];
}

/** The key types known_hosts lists for a host, so the handshake asks for one of those rather than another type. */
export function knownKeyTypes(text: string, address: string, port: number): string[] {
  const name = knownHostsName(address, port);
  return [...new Set(parseKnownHosts(text).filter((line) => line.marker === undefined && hostMatches(line.patterns, name)).map((line) => line.type))];
}
