/**
 * Host key pins as a plan writes them, the pure half (transport/knownHosts.ts checks keys against them).
 *
 * A SHA256 fingerprint does not say which of a host's keys it is, and a host usually has several (Windows OpenSSH
 * generates ed25519, ECDSA and RSA keys). The handshake shows only one of them: the first type in the worker's list
 * that the server has, ed25519 when it has one. A pin may therefore name its key type, as known_hosts does
 * (`ssh-rsa SHA256:...`), and the worker asks for that type first.
 */

/** Key types a pin may name, as public key files and known_hosts write them; ssh2 verifies all of them. */
export const HOST_KEY_TYPES = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'] as const;
export type HostKeyType = (typeof HOST_KEY_TYPES)[number];

export interface HostKeyPin {
  /** Absent when the plan wrote a bare fingerprint: it is compared with whichever key the handshake prefers. */
  type?: HostKeyType;
  /** `SHA256:` and the base64 hash, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

/** `SHA256:...` or `TYPE SHA256:...`; the reason it is neither, for the plan's error messages. */
export function parseHostKeyPin(text: string): { ok: true; pin: HostKeyPin } | { ok: false; reason: string } {
  const words = text.trim().split(/\s+/);
  const fingerprint = words.at(-1) ?? '';
  if (words.length > 2 || !FINGERPRINT.test(fingerprint)) {
    return { ok: false, reason: `"${text}" is not a host key pin: write "SHA256:" and 43 base64 characters, as \`ssh-keygen -lf\` prints it, optionally after the key type (e.g. "ssh-rsa SHA256:...")` };
  }
  if (words.length === 1) return { ok: true, pin: { fingerprint } };
  const type = words[0] as HostKeyType;
  if (!HOST_KEY_TYPES.includes(type)) {
    return { ok: false, reason: `"${words[0]}" is not a host key type the worker can verify; use ${HOST_KEY_TYPES.join(', ')} (the first word of the host's .pub file)` };
  }
  return { ok: true, pin: { type, fingerprint } };
}

/** A plan's `hostKey`: one pin or a list of them. Validated plans only. */
export function hostKeyPins(hostKey: string | string[]): HostKeyPin[] {
  return (Array.isArray(hostKey) ? hostKey : [hostKey]).map((text) => {
    const parsed = parseHostKeyPin(text);
    if (!parsed.ok) throw new Error(parsed.reason);
    return parsed.pin;
  });
}

export function hostKeyPinText(pin: HostKeyPin): string {
  return pin.type ? `${pin.type} ${pin.fingerprint}` : pin.fingerprint;
}
