/**
 * What a local command inherits of the worker's environment: not the Temporal credentials nor the codec's keys, not the variables
 * CUTOVER_COMMAND_ENV_EXCLUDE names, not the env: secrets its step resolved; everything else (PATH, HOME...).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTask } from '../../activities/runTask';
import { commandEnvironment } from '../../transport/commandRunner.cjs';
import { createLocalTransport } from '../../transport/local';

/** Set before the first command: the spawner is forked with the worker's environment as it is then. */
const WORKER_ENV = {
  TEMPORAL_ADDRESS: 'temporal.example.internal:7233',
  TEMPORAL_API_KEY: 'test-api-key-do-not-leak',
  TEMPORAL_TLS_CLIENT_KEY_DATA: '-----BEGIN PRIVATE KEY-----test',
  TEMPORAL_GRPC_META_AUTHORIZATION: 'Bearer test-token',
  CUTOVER_COMMAND_ENV_EXCLUDE: ' VAULT_TOKEN, CUTOVER_SECRET_* ,',
  VAULT_TOKEN: 'test-vault-token',
  CUTOVER_SECRET_DB: 'test-secret-db',
  CUTOVER_TEST_DB_PASSWORD: 'test-db-password',
  CUTOVER_TEST_KEEP: 'kept',
  CUTOVER_CODEC_KEYS: 'k1=env:CUTOVER_CODEC_KEY_1',
  CUTOVER_CODEC_KEY_1: 'test-codec-key-do-not-leak',
};

beforeAll(() => Object.assign(process.env, WORKER_ENV));
afterAll(() => {
  for (const name of Object.keys(WORKER_ENV)) delete process.env[name];
});

/** `env`, only the lines the tests look at: a whole environment may not fit in the 4 KiB output tail. */
const ENV = "env | grep -E '^(TEMPORAL_|VAULT_|CUTOVER_|PATH=|HOME=)'";

/** The variables a command saw, from ENV run on the local host. */
function variables(output: string): Map<string, string> {
  return new Map(output.split('\n').flatMap((line) => (line.includes('=') ? [[line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]] : [])));
}

describe('the environment of local commands', () => {
  it.each(['spawner', 'worker'] as const)('has no Temporal credentials nor excluded variables, and keeps the rest (spawned from the %s)', async (spawnFrom) => {
    const transport = createLocalTransport({ spawnFrom, env: { CUTOVER_LAB_DIR: '/tmp/lab' } });
    const result = await transport.run({ id: 'appv-01', transport: { kind: 'local' } }, ENV, { timeoutMs: 10_000 });
    expect(result.exitCode).toBe(0);
    const seen = variables(result.outputTail);
    for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS_CLIENT_KEY_DATA', 'TEMPORAL_GRPC_META_AUTHORIZATION', 'VAULT_TOKEN', 'CUTOVER_SECRET_DB', 'CUTOVER_CODEC_KEYS', 'CUTOVER_CODEC_KEY_1']) {
      expect(seen.has(name), name).toBe(false);
    }
    expect(result.outputTail).not.toContain('test-api-key-do-not-leak');
    expect(seen.get('PATH')).toBe(process.env.PATH);
    expect(seen.get('HOME')).toBe(process.env.HOME);
    expect(seen.get('CUTOVER_TEST_KEEP')).toBe('kept');
    // The transport's own environment and the host still come through.
    expect(seen.get('CUTOVER_LAB_DIR')).toBe('/tmp/lab');
    expect(seen.get('CUTOVER_HOST')).toBe('appv-01');
  });

  it('leaves out the env: secrets the step uses, which the worker still resolves and substitutes', async () => {
    const transport = createLocalTransport();
    const task = { host: 'appv-01', transport: { kind: 'local' as const } };
    const uses = await runTask(transport, { ...task, command: `echo db {{secret:env:CUTOVER_TEST_DB_PASSWORD}} vault {{secret:env:CUTOVER_SECRET_DB}}; ${ENV}` }, { timeoutMs: 10_000 });
    expect(uses.outputTail).toContain('db [secret:env:CUTOVER_TEST_DB_PASSWORD] vault [secret:env:CUTOVER_SECRET_DB]\n');
    const seen = variables(uses.outputTail);
    expect(seen.has('CUTOVER_TEST_DB_PASSWORD')).toBe(false);
    expect(seen.has('CUTOVER_SECRET_DB')).toBe(false);
    expect(seen.get('CUTOVER_TEST_KEEP')).toBe('kept');
    // A step that does not use a secret still inherits its variable unless the exclude list names it (README).
    const other = await runTask(transport, { ...task, command: ENV }, { timeoutMs: 10_000 });
    expect(variables(other.outputTail).get('CUTOVER_TEST_DB_PASSWORD')).toBe('test-db-password');
    expect(variables(other.outputTail).has('CUTOVER_SECRET_DB')).toBe(false);
  });

  it('reads the exclude list as names or PREFIX* patterns', () => {
    const base = { PATH: '/bin', TEMPORAL_PROFILE: 'prod', A: '1', AB: '2', B_X: '3', B: '4', CUTOVER_COMMAND_ENV_EXCLUDE: 'A,B_*' };
    expect(commandEnvironment(base, ['B'])).toEqual({ PATH: '/bin', AB: '2', CUTOVER_COMMAND_ENV_EXCLUDE: 'A,B_*' });
    expect(commandEnvironment({ PATH: '/bin', TEMPORAL_API_KEY: 'k' })).toEqual({ PATH: '/bin' });
  });
});
