/** What a plan may reference is the worker's decision: its own settings and files never, the rest by its allowlist. */
import { describe, expect, it } from 'vitest';
import { planSecrets, refuseSecret, secretRefusals } from '../../core/secretPolicy';
import { parseTrustFile, type TrustPolicy } from '../../core/trust';

function policy(file: unknown): TrustPolicy {
  const parsed = parseTrustFile(file);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.policy;
}

const PLAN = {
  transport: { kind: 'ssh', user: 'svc', key: 'file:/etc/cutover/id_ed25519', passphrase: 'env:KEY_PASSPHRASE' },
  roles: { web: { steps: { verify: { probe: { headers: { Authorization: 'Bearer {{secret:env:CUTOVER_SECRET_HEALTH}}' } } } } } },
  database: { backup: { run: 'backup --password {{secret:file:/etc/cutover/secrets/db}} {{secret:env:TEMPORAL_API_KEY}}' } },
};

describe('secrets a plan may use', () => {
  it('finds every reference with its path: templates anywhere, and the ssh key and passphrase', () => {
    expect(planSecrets(PLAN).map(({ path, ref }) => [path.join('.'), ref])).toEqual([
      ['transport.key', { source: 'file', path: '/etc/cutover/id_ed25519' }],
      ['transport.passphrase', { source: 'env', name: 'KEY_PASSPHRASE' }],
      ['roles.web.steps.verify.probe.headers.Authorization', { source: 'env', name: 'CUTOVER_SECRET_HEALTH' }],
      ['database.backup.run', { source: 'file', path: '/etc/cutover/secrets/db' }],
      ['database.backup.run', { source: 'env', name: 'TEMPORAL_API_KEY' }],
    ]);
  });

  it("never gives the worker's own settings and files, even without an allowlist", () => {
    const open = policy({});
    expect(refuseSecret(open, { source: 'env', name: 'TEMPORAL_API_KEY' }, [])).toContain("worker's own setting");
    expect(refuseSecret(open, { source: 'env', name: 'CUTOVER_TRUST_FILE' }, [])).toContain("worker's own setting");
    for (const name of ['CUTOVER_CODEC_KEYS', 'CUTOVER_CODEC_KEY_2026_11', 'CUTOVER_CODEC_SERVER_TOKEN']) {
      expect(refuseSecret(open, { source: 'env', name }, []), name).toContain("worker's own setting");
    }
    expect(refuseSecret(open, { source: 'file', path: '/etc/cutover/trust.yaml' }, ['/etc/cutover/trust.yaml'])).toContain("worker's own files");
    expect(refuseSecret(open, { source: 'env', name: 'DB_PASSWORD' }, [])).toBeUndefined();
    // Other spellings of the same file, and the process's own files, which hold its environment.
    for (const path of ['/etc/cutover/./trust.yaml', '//etc/cutover/trust.yaml', '/etc/x/../cutover/trust.yaml']) {
      expect(refuseSecret(open, { source: 'file', path }, ['/etc/cutover/trust.yaml']), path).toContain("worker's own files");
    }
    for (const path of ['/proc/self/environ', '/proc/1/environ', '/etc/../proc/self/environ', '/dev/stdin']) {
      expect(refuseSecret(open, { source: 'file', path }, []), path).toContain("worker's processes");
    }
  });

  it('with an allowlist, gives only what it lists, and names each refused reference with its path', () => {
    const strict = policy({ secrets: { env: ['CUTOVER_SECRET_*'], files: ['/etc/cutover/secrets'] } });
    const refused = secretRefusals(PLAN, strict, []) ?? '';
    expect(refused.split('\n').filter((line) => line.startsWith('✖'))).toEqual([
      '✖ file:/etc/cutover/id_ed25519: the trust policy does not allow the secret file:/etc/cutover/id_ed25519 (secrets.files: /etc/cutover/secrets)',
      '✖ env:KEY_PASSPHRASE: the trust policy does not allow the secret env:KEY_PASSPHRASE (secrets.env: CUTOVER_SECRET_*)',
      "✖ env:TEMPORAL_API_KEY: env:TEMPORAL_API_KEY is the worker's own setting, never a plan's secret",
    ]);
    expect(refused).toContain('→ at transport.key');
    expect(secretRefusals({ run: 'echo {{secret:env:CUTOVER_SECRET_X}}' }, strict, [])).toBeUndefined();
  });
});
