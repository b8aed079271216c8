/**
 * Real hosts in the plan, pure: secret references (parsing, templates, redaction), the ssh transport's fields,
 * probes in verify steps, and how the planner and the rollback carry a probe. No I/O.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { hostKeyPinText, hostKeyPins, parseHostKeyPin } from '../../core/hostKeys';
import { hostTransport, validatePlan } from '../../core/plan';
import { planRun } from '../../core/planner';
import { planRollback } from '../../core/rollback';
import { parseSecretRef, redact, secretTemplates, shellQuote, substituteSecrets } from '../../core/secrets';
import { preferredHostKeyAlgorithms } from '../../transport/knownHosts';
import { refusal, validExample } from './fixtures';


const FINGERPRINT = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';
const ssh = (extra: Record<string, unknown> = {}) => ({ kind: 'ssh', address: 'appv-01.example.internal', user: 'svc-cutover', key: 'file:/etc/cutover/id_ed25519', hostKey: FINGERPRINT, ...extra });

describe('secret references', () => {
  it('parses env: and file: references and says what is wrong with others', () => {
    expect(parseSecretRef('env:DB_PASSWORD')).toEqual({ ok: true, ref: { source: 'env', name: 'DB_PASSWORD' } });
    expect(parseSecretRef('file:/run/secrets/db password')).toEqual({ ok: true, ref: { source: 'file', path: '/run/secrets/db password' } });
    expect(parseSecretRef('env:')).toMatchObject({ ok: false, reason: expect.stringContaining('env: takes a variable name') });
    expect(parseSecretRef('env:DB-PASSWORD')).toMatchObject({ ok: false });
    expect(parseSecretRef('file:relative/path')).toMatchObject({ ok: false, reason: expect.stringContaining('an absolute path') });
    expect(parseSecretRef('vault:kv/db')).toMatchObject({ ok: false, reason: '"vault:kv/db" is not a secret reference: use env:NAME or file:/absolute/path' });
    expect(parseSecretRef('hunter2')).toMatchObject({ ok: false });
  });

  it('finds the templates a text uses and substitutes only known values', () => {
    const text = 'sqlcmd -U sa -P {{secret:env:SA}} -i {{ secret:file:/etc/x.sql }} {{host}} {{secret:env:SA}} {{secret:bad}}';
    expect(secretTemplates(text)).toEqual([
      { source: 'env', name: 'SA' },
      { source: 'file', path: '/etc/x.sql' },
    ]);
    expect(substituteSecrets(text, new Map([['env:SA', 'pw']]))).toBe('sqlcmd -U sa -P pw -i {{ secret:file:/etc/x.sql }} {{host}} pw {{secret:bad}}');
  });

  it('redacts every value, longest first, and the lines of a multi-line value', () => {
    const secrets = [
      { ref: { source: 'env' as const, name: 'A' }, value: 'abc' },
      { ref: { source: 'env' as const, name: 'AB' }, value: 'abcdef' },
      { ref: { source: 'file' as const, path: '/k' }, value: '-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\n-----END KEY-----' },
      { ref: { source: 'env' as const, name: 'EMPTY' }, value: '' },
    ];
    expect(redact('x abcdef y abc z', secrets)).toBe('x [secret:env:AB] y [secret:env:A] z');
    expect(redact('key line: AAAAB3NzaC1yc2EAAAADAQAB\r\n', secrets)).toBe('key line: [secret:file:/k]\r\n');
    expect(redact('nothing here', secrets)).toBe('nothing here');
  });

  it('redacts the forms stricter JSON writers and form encoders give a value', () => {
    const secrets = [{ ref: { source: 'env' as const, name: 'PW' }, value: 'pä ss&<x>' }];
    // Python's json.dumps (ensure_ascii), PowerShell's ConvertTo-Json, lowercase percent escapes, a form's + for space.
    expect(redact('{"pw": "p\\u00e4 ss&<x>"}', secrets)).toBe('{"pw": "[secret:env:PW]"}');
    expect(redact('{"pw":  "p\\u00e4 ss\\u0026\\u003cx\\u003e"}', secrets)).toBe('{"pw":  "[secret:env:PW]"}');
    expect(redact('pw=p%c3%a4%20ss%26%3cx%3e', secrets)).toBe('pw=[secret:env:PW]');
    expect(redact('pw=p%C3%A4+ss%26%3Cx%3E', secrets)).toBe('pw=[secret:env:PW]');
  });

  it('redacts the forms a value takes in JSON, in a URL and in a shell command line', () => {
    const secrets = [{ ref: { source: 'env' as const, name: 'PW' }, value: `it's "x" a&b\\` }];
    expect(redact(`{"password":"it's \\"x\\" a&b\\\\"}`, secrets)).toBe('{"password":"[secret:env:PW]"}');
    expect(redact(`GET /login?pw=it's%20%22x%22%20a%26b%5C`, secrets)).toBe('GET /login?pw=[secret:env:PW]');
    expect(redact(`sh: login --pw 'it'\\''s "x" a&b\\'`, secrets)).toBe('sh: login --pw [secret:env:PW]');
  });
});

describe('plan: secrets, the ssh transport, probes', () => {
  it('accepts secret templates in commands, undos and probes, and refuses malformed ones with their path', () => {
    validExample((raw) => {
      raw.database.backup.run = 'backup --password {{secret:env:DB_PASSWORD}} {{backup}}';
      raw.roles['management-server'].steps.drain.undo = 'labhost {{host}} online --token {{secret:file:/etc/cutover/token}}';
    });
    const result = refusal((raw) => (raw.database.backup.run = 'backup --password {{secret:vault:db}}'));
    expect(result.issues).toEqual([
      expect.objectContaining({ path: ['database', 'backup', 'run'], message: '{{secret:vault:db}}: "vault:db" is not a secret reference: use env:NAME or file:/absolute/path' }),
    ]);
    const relative = refusal((raw) => (raw.roles['management-server'].steps.stop.run = 'x {{secret:file:token}}'));
    expect(relative.issues[0]?.path).toEqual(['roles', 'management-server', 'steps', 'stop', 'run']);
  });

  it('accepts an ssh host with a key and a pinned host key, and fills the port', () => {
    const plan = validExample((raw) => (raw.hosts[1].transport = ssh({ passphrase: 'env:KEY_PASSPHRASE' })));
    expect(plan.hosts[1]?.transport).toEqual({ ...ssh({ passphrase: 'env:KEY_PASSPHRASE' }), port: 22 });
    // An agent instead of a key, and known_hosts instead of a fingerprint.
    validExample((raw) => (raw.hosts[1].transport = ssh({ key: undefined, hostKey: undefined, knownHosts: '/etc/cutover/known_hosts' })));
  });

  it('accepts a pin with its key type, and a list of pins', () => {
    validExample((raw) => (raw.hosts[1].transport = ssh({ hostKey: `ssh-rsa ${FINGERPRINT}` })));
    const plan = validExample((raw) => (raw.hosts[1].transport = ssh({ hostKey: [`ecdsa-sha2-nistp256 ${FINGERPRINT}`, FINGERPRINT] })));
    expect(plan.hosts[1]?.transport).toMatchObject({ hostKey: [`ecdsa-sha2-nistp256 ${FINGERPRINT}`, FINGERPRINT] });
  });

  it.each([
    ['a key that is not a reference', { key: '/root/.ssh/id_ed25519' }, ['hosts', 1, 'transport', 'key'], 'is not a secret reference'],
    ['a passphrase written into the plan', { passphrase: 'hunter2' }, ['hosts', 1, 'transport', 'passphrase'], 'is not a secret reference'],
    ['a passphrase without a key', { key: undefined, passphrase: 'env:P' }, ['hosts', 1, 'transport', 'passphrase'], 'a passphrase needs a key'],
    ['a malformed fingerprint', { hostKey: 'SHA256:short' }, ['hosts', 1, 'transport', 'hostKey'], 'as `ssh-keygen -lf` prints it'],
    ['a key type ssh2 cannot verify', { hostKey: `ssh-dss ${FINGERPRINT}` }, ['hosts', 1, 'transport', 'hostKey'], '"ssh-dss" is not a host key type the worker can verify; use ssh-ed25519, ecdsa-sha2-nistp256'],
    ["ssh-keygen's short type name in a list", { hostKey: [FINGERPRINT, `RSA ${FINGERPRINT}`] }, ['hosts', 1, 'transport', 'hostKey', 1], '"RSA" is not a host key type'],
    ['an empty list of pins', { hostKey: [] }, ['hosts', 1, 'transport', 'hostKey'], '>=1'],
    ['two pins', { knownHosts: '/etc/ssh/ssh_known_hosts' }, ['hosts', 1, 'transport', 'knownHosts'], 'hostKey or knownHosts, not both'],
  ])('refuses %s, with its path', (_name, extra, path, says) => {
    const result = refusal((raw) => (raw.hosts[1].transport = ssh(extra)));
    expect(result.issues).toEqual([expect.objectContaining({ path, message: expect.stringContaining(says) })]);
  });

  it('accepts an http or tcp probe as a verify step and fills its defaults', () => {
    const plan = validExample((raw) => {
      raw.roles['management-server'].steps.verify = {
        probe: { kind: 'http', url: 'https://{{host}}.example.internal/health', json: { version: '{{version}}' }, headers: { Authorization: 'Bearer {{secret:env:HEALTH_TOKEN}}' } },
        timeout: '2m',
      };
    });
    expect(plan.roles['management-server']?.steps.verify?.probe).toEqual({
      kind: 'http',
      url: 'https://{{host}}.example.internal/health',
      method: 'GET',
      headers: { Authorization: 'Bearer {{secret:env:HEALTH_TOKEN}}' },
      status: 200,
      json: { version: '{{version}}' },
      insecureSkipTlsVerify: false,
      deadline: '1m',
      interval: '2s',
    });
    validExample((raw) => (raw.roles['management-server'].steps.verify = { probe: { kind: 'tcp', address: '{{host}}', port: 1433 } }));
  });

  it.each([
    ['run and probe together', { run: 'x', probe: { kind: 'tcp', address: 'a', port: 1 } }, ['roles', 'management-server', 'steps', 'verify'], 'exactly one'],
    ['neither', { timeout: '1m' }, ['roles', 'management-server', 'steps', 'verify'], 'exactly one'],
    ['a deadline past the timeout', { probe: { kind: 'tcp', address: 'a', port: 1, deadline: '10m' }, timeout: '5m' }, ['roles', 'management-server', 'steps', 'verify', 'probe', 'deadline'], 'longer than the step'],
    ['an unknown template in the URL', { probe: { kind: 'http', url: 'http://{{hots}}/' } }, ['roles', 'management-server', 'steps', 'verify', 'probe', 'url'], 'unknown template {{hots}}'],
    ['{{target}} in a probe', { probe: { kind: 'http', url: 'http://{{host}}/', json: { v: '{{target}}' } } }, ['roles', 'management-server', 'steps', 'verify', 'probe'], 'verify with {{version}}'],
    ['not a URL', { probe: { kind: 'http', url: 'ftp://x' } }, ['roles', 'management-server', 'steps', 'verify', 'probe', 'url'], 'http:// or https://'],
  ])('refuses a verify step with %s, with its path', (_name, verify, path, says) => {
    const result = refusal((raw) => (raw.roles['management-server'].steps.verify = verify));
    expect(result.issues).toEqual([expect.objectContaining({ path, message: expect.stringContaining(says) })]);
  });

  it('refuses a probe anywhere but a verify step', () => {
    const result = refusal((raw) => (raw.roles['management-server'].steps.start = { probe: { kind: 'tcp', address: 'a', port: 1 } }));
    expect(result.issues.map((issue) => issue.path)).toContainEqual(['roles', 'management-server', 'steps', 'start']);
  });

  it('validates its own output again (the workflow re-validates what the client validated)', () => {
    const plan = validExample((raw) => {
      raw.hosts[1].transport = ssh();
      raw.roles['management-server'].steps.verify = { probe: { kind: 'http', url: 'https://{{host}}/health' } };
    });
    expect(validatePlan(JSON.parse(JSON.stringify(plan)))).toEqual({ ok: true, plan });
  });
});

describe("the plan's transport for every host", () => {
  const login = { kind: 'ssh', user: 'svc-cutover', key: 'file:/etc/cutover/id_ed25519', knownHosts: '/etc/cutover/known_hosts' };

  it('reaches each host that names no transport at its address, or its id, with the plan\'s login', () => {
    const plan = validExample((raw) => {
      raw.transport = login;
      raw.hosts[0].address = '10.0.0.1';
      raw.hosts[2].transport = { kind: 'local' };
    });
    const [first, second, third] = plan.hosts.map((host) => hostTransport(plan, host));
    expect(first).toEqual({ ...login, port: 22, address: '10.0.0.1' });
    expect(second).toEqual({ ...login, port: 22, address: plan.hosts[1]?.id });
    expect(third).toEqual({ kind: 'local' });
    // What the batches carry to the activities is the resolved transport.
    const run = planRun(plan, { backup: 'b1' });
    const drained = run.phases.drain.batches.flatMap((batch) => batch.tasks);
    expect(drained.find((task) => task.host === plan.hosts[1]?.id)?.transport).toEqual(second);
  });

  it('refuses an address where the plan\'s transport is local, or beside a host\'s own transport, naming the host', () => {
    expect(refusal((raw) => (raw.hosts[1].address = 'appv-02.corp')).issues).toEqual([
      expect.objectContaining({ path: ['hosts', 1, 'address'], message: "an address is for the plan's ssh transport, and the plan's transport is local" }),
    ]);
    const beside = refusal((raw) => {
      raw.transport = login;
      raw.hosts[1].transport = ssh();
      raw.hosts[1].address = 'appv-02.corp';
    });
    expect(beside.issues).toEqual([expect.objectContaining({ path: ['hosts', 1, 'address'], message: 'this host has its own transport: put the address in it' })]);
    expect(refusal((raw) => (raw.transport = { ...login, address: 'one.corp' })).issues).toEqual([expect.objectContaining({ path: ['transport'] })]);
  });

  it('keeps a plan of 10,000 ssh hosts far below the 2 MB a run\'s input may have', () => {
    const plan = validExample((raw) => {
      raw.transport = login;
      const [owner, other] = raw.hosts;
      raw.hosts = [owner, ...Array.from({ length: 9_999 }, (_, i) => ({ ...other, id: `appv-${String(i + 2).padStart(5, '0')}`, address: `appv-${String(i + 2).padStart(5, '0')}.corp.example.internal` }))];
    });
    expect(JSON.stringify(plan).length).toBeLessThan(1.2 * 1024 * 1024);
  });
});

describe('host key pins', () => {
  it('reads a bare fingerprint or one after its key type', () => {
    expect(parseHostKeyPin(FINGERPRINT)).toEqual({ ok: true, pin: { fingerprint: FINGERPRINT } });
    expect(parseHostKeyPin(`ssh-rsa ${FINGERPRINT}`)).toEqual({ ok: true, pin: { type: 'ssh-rsa', fingerprint: FINGERPRINT } });
    expect(parseHostKeyPin(`ssh-rsa ${FINGERPRINT} comment`)).toMatchObject({ ok: false });
    expect(hostKeyPins([`ssh-ed25519 ${FINGERPRINT}`, FINGERPRINT]).map(hostKeyPinText)).toEqual([`ssh-ed25519 ${FINGERPRINT}`, FINGERPRINT]);
  });

  it('has the handshake ask for the pinned or known types first, every RSA signature for an RSA key, then the rest', () => {
    expect(preferredHostKeyAlgorithms([])).toBeUndefined();
    expect(preferredHostKeyAlgorithms(['ssh-rsa'])).toEqual([
      'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa',
      'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
    ]);
    expect(preferredHostKeyAlgorithms(['ecdsa-sha2-nistp384', 'ssh-dss'])?.slice(0, 2)).toEqual(['ecdsa-sha2-nistp384', 'ssh-ed25519']);
  });
});

describe('planner and rollback carry the probe', () => {
  const plan = validExample((raw) => {
    raw.roles['management-server'].steps.verify = {
      probe: { kind: 'http', url: 'https://{{host}}.example.internal/health?key={{secret:env:K}}', json: { version: '{{version}}' }, deadline: '30s' },
    };
  });

  it('renders the probe per host, keeps secret references, and describes it as the command', () => {
    const run = planRun(plan, { backup: 'b1' });
    const task = run.phases.verify.batches[0]?.tasks[1];
    expect(task).toEqual({
      host: 'appv-02',
      command: 'http GET https://appv-02.example.internal/health?key={{secret:env:K}} expect 200 version="4.5" within 30s',
      transport: { kind: 'local' },
      probe: expect.objectContaining({ url: 'https://appv-02.example.internal/health?key={{secret:env:K}}', json: { version: '4.5' } }),
    });
    // Commands are untouched: no probe field where there is none.
    expect(run.phases.stop.batches[0]?.tasks[0]).not.toHaveProperty('probe');
  });

  it("the rollback's verify runs the same probe, expecting the source version", () => {
    const run = planRun(plan, { backup: 'b1' });
    const stop = run.phases.stop.batches[0];
    const steps = planRollback(plan, [{ phase: 'stopping', step: 'stop', hosts: ['appv-01'], undo: [{ host: 'appv-01', command: stop?.tasks[0]?.undo as string }] }]);
    const verify = steps.find((step) => step.kind === 'hosts' && step.name === 'rollback-verify');
    expect(verify?.kind === 'hosts' && verify.batches[0]?.tasks[0]).toEqual({
      host: 'appv-01',
      command: 'http GET https://appv-01.example.internal/health?key={{secret:env:K}} expect 200 version="4.1-SP1" within 30s',
      transport: { kind: 'local' },
      probe: expect.objectContaining({ kind: 'http', json: { version: '4.1-SP1' } }),
    });
  });
});

describe('secrets in commands', () => {
  it('go into the shell as one quoted word, whatever they hold', () => {
    const value = `p&ss'w"ord $HOME; rm -rf /`;
    const command = substituteSecrets('login --password {{secret:env:PW}}', new Map([['env:PW', value]]), shellQuote);
    expect(command).toBe(`login --password 'p&ss'\\''w"ord $HOME; rm -rf /'`);
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(value)}`], { encoding: 'utf8' })).toBe(value);
  });
});
