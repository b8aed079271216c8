/** The lab: labhost's rules, its ops log and faults, and the lab.ts helpers that create and inspect a lab. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LABHOST, PROFILES, hostIds, labDown, labFault, labOps, labStatus, labUp, type LabUpOptions } from '../../lab/lab';

let root: string;
let dir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'cutover-labtest-'));
  dir = join(root, 'lab');
  labUp(dir, { hosts: 3 });
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh lab in the same directory, replacing the default one. */
function relab(options: LabUpOptions): void {
  labUp(dir, options);
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function labhost(...args: string[]): Run {
  const result = spawnSync(LABHOST, args, { env: { ...process.env, CUTOVER_LAB_DIR: dir }, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr.trim() };
}

/** Runs an op that must succeed and returns its result line (the last line it prints). */
function ok(...args: string[]): string {
  const run = labhost(...args);
  expect(run, `labhost ${args.join(' ')}`).toMatchObject({ status: 0, stderr: '' });
  return run.stdout.split('\n').at(-1) ?? '';
}

/** Runs an op that must be refused (exit 2) and returns the reason. */
function refused(...args: string[]): string {
  const run = labhost(...args);
  expect(run.status, `labhost ${args.join(' ')}: ${run.stderr}`).toBe(2);
  expect(run.stdout).toBe('');
  expect(run.stderr).toMatch(/^REFUSED: /);
  return run.stderr.replace(/^REFUSED: /, '');
}

/** Runs an op that must fail (exit 1) and returns its stderr. */
function failed(...args: string[]): string {
  const run = labhost(...args);
  expect(run.status, `labhost ${args.join(' ')}: ${run.stderr}`).toBe(1);
  expect(run.stdout).toBe('');
  return run.stderr;
}

const host = (id: string) => {
  const found = labStatus(dir).hosts.find((h) => h.id === id);
  if (!found) throw new Error(`no host ${id}`);
  return found;
};
const service = (id: string) => host(id).services.AppVServer;

function takeOffline(...ids: string[]): void {
  for (const id of ids) {
    ok(id, 'drain');
    ok(id, 'stop');
  }
}

describe('labUp and labStatus', () => {
  it('creates the appv profile fleet: hosts at the source version, running, with sessions, db at the source schema', () => {
    const status = labStatus(dir);
    expect(status.profile).toBe('appv');
    expect(status.dir).toBe(dir);
    expect(status.hosts).toEqual(
      ['appv-01', 'appv-02', 'appv-03'].map((id) => ({
        id,
        version: '4.1-SP1',
        services: { AppVServer: 'running' },
        sessions: 2,
        drained: false,
        online: true,
      })),
    );
    expect(status.database.schema).toBe('4.1-SP1');
    expect(status.database.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(status.backups).toEqual([]);
    expect(status.faults).toEqual([]);
    expect(labOps(dir)).toEqual([]);
  });

  it('reports the same database checksum as `labhost db checksum`, before and after the schema changes', () => {
    expect(ok('db', 'checksum')).toBe(labStatus(dir).database.checksum);
    takeOffline('appv-01', 'appv-02', 'appv-03');
    const before = labStatus(dir).database.checksum;
    ok('appv-01', 'install', '4.5', '--upgrade-schema');
    const after = labStatus(dir).database.checksum;
    expect(after).not.toBe(before);
    expect(ok('db', 'checksum')).toBe(after);
  });

  it('reports what the ops did: versions, previous version, services, sessions, drained and online', () => {
    ok('appv-02', 'drain');
    expect(host('appv-02')).toMatchObject({ sessions: 0, drained: true, online: false, services: { AppVServer: 'running' } });
    ok('appv-02', 'stop');
    expect(service('appv-02')).toBe('stopped');
    // the others are untouched
    expect(host('appv-01')).toMatchObject({ sessions: 2, drained: false, online: true, services: { AppVServer: 'running' } });
    takeOffline('appv-01', 'appv-03');
    ok('appv-01', 'install', '4.5', '--upgrade-schema');
    ok('appv-01', 'start');
    ok('appv-01', 'online');
    expect(host('appv-01')).toEqual({
      id: 'appv-01',
      version: '4.5',
      previousVersion: '4.1-SP1',
      services: { AppVServer: 'running' },
      sessions: 0,
      drained: false,
      online: true,
    });
  });

  it('uses per-host starting versions and names hosts with enough digits', () => {
    relab({ hosts: 2, version: '4.1', versions: { 'appv-02': '4.5' } });
    expect(labStatus(dir).hosts.map((h) => h.version)).toEqual(['4.1', '4.5']);
    expect(ok('appv-01', 'version')).toBe('4.1');
    expect(ok('appv-02', 'version')).toBe('4.5');
    expect(hostIds(PROFILES.appv!, 3)).toEqual(['appv-01', 'appv-02', 'appv-03']);
    expect(hostIds(PROFILES.appv!, 100).slice(-2)).toEqual(['appv-099', 'appv-100']);
  });

  it('replaces a previous lab on labUp, removes it on labDown, and rejects bad options', () => {
    ok('appv-01', 'drain');
    labFault(dir, 'appv-01', 'stop', 'always');
    relab({ hosts: 2 });
    const status = labStatus(dir);
    expect(status.hosts.map((h) => h.id)).toEqual(['appv-01', 'appv-02']);
    expect(status.hosts[0]).toMatchObject({ sessions: 2, drained: false });
    expect(status.faults).toEqual([]);
    expect(labOps(dir)).toEqual([]);

    expect(() => labUp(dir, { hosts: 0 })).toThrow(/at least 1/);
    expect(() => labUp(dir, { profile: 'nope' })).toThrow(/unknown lab profile "nope"/);

    labDown(dir);
    expect(existsSync(dir)).toBe(false);
    expect(() => labStatus(dir)).toThrow(/no lab at/);
    const run = labhost('appv-01', 'version');
    expect(run.status).toBe(3);
    expect(run.stderr).toContain(`no lab at ${dir}`);
  });
});

describe('labhost rules', () => {
  it('refuses to stop a host with active sessions until it is drained', () => {
    expect(refused('appv-01', 'stop')).toBe('2 user session(s) active on appv-01; drain it first');
    expect(service('appv-01')).toBe('running');

    expect(ok('appv-01', 'drain')).toBe('sessions signed out, new sessions blocked');
    expect(ok('appv-01', 'stop')).toBe('services stopped');
    expect(service('appv-01')).toBe('stopped');
    // the other hosts still have their sessions and still may not stop
    expect(refused('appv-02', 'stop')).toBe('2 user session(s) active on appv-02; drain it first');
  });

  it('refuses to install while the host service runs', () => {
    ok('appv-01', 'drain');
    expect(refused('appv-01', 'install', '4.5')).toBe('AppVServer is running on appv-01; stop it before installing');
    expect(refused('appv-01', 'install', '4.5', '--upgrade-schema')).toBe('AppVServer is running on appv-01; stop it before installing');
    expect(host('appv-01').version).toBe('4.1-SP1');
    expect(labStatus(dir).database.schema).toBe('4.1-SP1');
  });

  it('refuses a schema upgrade while any host service runs, and performs it once all are stopped', () => {
    const before = labStatus(dir).database;
    takeOffline('appv-01');
    expect(refused('appv-01', 'install', '4.5', '--upgrade-schema')).toMatch(
      /^schema upgrade needs every service of every host stopped; running: appv-02:AppVServer appv-03:AppVServer\s*$/,
    );
    takeOffline('appv-02');
    expect(refused('appv-01', 'install', '4.5', '--upgrade-schema')).toMatch(/running: appv-03:AppVServer\s*$/);
    expect(labStatus(dir).database).toEqual(before);
    expect(host('appv-01').version).toBe('4.1-SP1');

    takeOffline('appv-03');
    expect(ok('appv-01', 'install', '4.5', '--upgrade-schema')).toBe('installed 4.5 over 4.1-SP1');
    const after = labStatus(dir).database;
    expect(after.schema).toBe('4.5');
    expect(after.checksum).not.toBe(before.checksum);
    expect(readFileSync(join(dir, 'db', 'content'), 'utf8')).toContain('schema upgraded 4.1-SP1 -> 4.5 by appv-01');
    expect(host('appv-01')).toMatchObject({ version: '4.5', previousVersion: '4.1-SP1' });
  });

  it('refuses a new version on a non-owner host until the schema is upgraded', () => {
    takeOffline('appv-01', 'appv-02', 'appv-03');
    expect(refused('appv-02', 'install', '4.5')).toBe('the database schema is still 4.1-SP1: upgrade the DB-owning server to 4.5 first');
    expect(host('appv-02').version).toBe('4.1-SP1');

    ok('appv-01', 'install', '4.5', '--upgrade-schema');
    expect(labhost('appv-02', 'install', '4.5').stdout).toBe('package validation: AppVServer validated for 4.5 on appv-02\ninstalled 4.5 over 4.1-SP1');
    expect(host('appv-02')).toMatchObject({ version: '4.5', previousVersion: '4.1-SP1' });
    // installing the version a host already has is a no-op that succeeds (idempotent retries)
    expect(ok('appv-02', 'install', '4.5')).toBe('already at 4.5');
    expect(labStatus(dir).database.schema).toBe('4.5');
  });

  it('refuses to start a host whose version does not match the database schema', () => {
    takeOffline('appv-01', 'appv-02', 'appv-03');
    // versions match: a stopped host may start again
    expect(ok('appv-03', 'start')).toBe('services running at 4.1-SP1');
    takeOffline('appv-03');

    ok('appv-01', 'install', '4.5', '--upgrade-schema');
    expect(refused('appv-02', 'start')).toBe('appv-02 is at 4.1-SP1 but the database schema is 4.5');
    expect(service('appv-02')).toBe('stopped');
    expect(ok('appv-01', 'start')).toBe('services running at 4.5');
    expect(service('appv-01')).toBe('running');

    ok('appv-02', 'install', '4.5');
    expect(ok('appv-02', 'start')).toBe('services running at 4.5');
  });

  it('refuses to let sessions in before the service runs', () => {
    takeOffline('appv-01');
    expect(refused('appv-01', 'online')).toBe('AppVServer is not running on appv-01; start it before allowing sessions');
    expect(host('appv-01')).toMatchObject({ online: false, drained: true });
    ok('appv-01', 'start');
    expect(ok('appv-01', 'online')).toBe('accepting sessions');
    expect(host('appv-01')).toMatchObject({ online: true, drained: false });
  });

  it('refuses a database restore while any service runs; the restore brings back the backup exactly', () => {
    const original = labStatus(dir).database;
    takeOffline('appv-01', 'appv-02', 'appv-03');
    expect(ok('db', 'backup', 'before-4.5')).toBe(`backup before-4.5 ${original.checksum}`);
    expect(labStatus(dir).backups).toEqual(['before-4.5']);

    ok('appv-01', 'install', '4.5', '--upgrade-schema');
    ok('appv-01', 'start');
    expect(labStatus(dir).database.schema).toBe('4.5');

    expect(refused('db', 'restore', 'before-4.5')).toMatch(/^restore needs every service stopped; running: appv-01:AppVServer\s*$/);
    expect(labStatus(dir).database.schema).toBe('4.5');

    ok('appv-01', 'stop');
    expect(ok('db', 'restore', 'before-4.5')).toBe(`restored before-4.5 ${original.checksum}`);
    expect(labStatus(dir).database).toEqual(original);
    expect(ok('db', 'checksum')).toBe(original.checksum);

    expect(failed('db', 'restore', 'nope')).toBe('FAILED: no backup named nope');
  });

  it('counts a backup under way, refuses a backup or restore beside it, stops counting one that was killed, and tells how many times one finished', async () => {
    takeOffline('appv-01', 'appv-02', 'appv-03');
    expect(ok('db', 'under-way')).toBe('0');
    labFault(dir, 'db', 'backup', 'hang');
    const hanging = spawn(LABHOST, ['db', 'backup', 'first'], { env: { ...process.env, CUTOVER_LAB_DIR: dir }, stdio: 'ignore', detached: true });
    try {
      await expect.poll(() => ok('db', 'under-way'), { timeout: 5_000, interval: 50 }).toBe('1');
      labFault(dir, 'db', 'backup', 'clear');
      expect(refused('db', 'backup', 'second')).toBe(`another backup or restore of the database is under way (process ${hanging.pid}: backup first); the lab runs them one at a time`);
      expect(refused('db', 'restore', 'first')).toContain('another backup or restore of the database is under way');
    } finally {
      // As a step's timeout does: the whole process group.
      process.kill(-hanging.pid!, 'SIGKILL');
    }
    await expect.poll(() => ok('db', 'under-way'), { timeout: 5_000, interval: 50 }).toBe('0');
    expect(ok('db', 'backup', 'second')).toMatch(/^backup second /);
    // What msdb's history tells a retry: how many times a backup (or a restore) of that name finished.
    expect([ok('db', 'finished', 'backup', 'second'), ok('db', 'finished', 'backup', 'first'), ok('db', 'finished', 'restore', 'second')]).toEqual(['1', '0', '0']);
  });

  it('refuses a version the upgrade path does not allow from the current one', () => {
    relab({ hosts: 3, version: '4.0' });
    takeOffline('appv-01', 'appv-02', 'appv-03');
    expect(refused('appv-01', 'install', '4.5', '--upgrade-schema')).toBe(
      '4.5 cannot be installed over 4.0 on appv-01; upgrade it to 4.1 or 4.1-SP1 first',
    );
    expect(refused('appv-01', 'install', '9.9')).toBe('no upgrade path leads to 9.9');
    expect(host('appv-01').version).toBe('4.0');
    expect(labStatus(dir).database.schema).toBe('4.1-SP1');
  });

  it('allows going back to the previous version (rollback), which the upgrade path alone would refuse', () => {
    relab({ hosts: 3, versions: { 'appv-03': '4.5' } });
    takeOffline('appv-01', 'appv-02', 'appv-03');
    ok('db', 'backup', 'b');
    ok('appv-01', 'install', '4.5', '--upgrade-schema');
    ok('appv-02', 'install', '4.5');
    // with the schema still upgraded, the old version does not fit the database
    expect(refused('appv-02', 'install', '4.1-SP1')).toMatch(/^the database schema is still 4\.5/);

    ok('db', 'restore', 'b');
    expect(ok('appv-01', 'install', '4.1-SP1')).toBe('installed 4.1-SP1 over 4.5');
    expect(ok('appv-02', 'install', '4.1-SP1')).toBe('installed 4.1-SP1 over 4.5');
    expect(host('appv-02')).toMatchObject({ version: '4.1-SP1', previousVersion: '4.5' });
    // appv-03 was never at 4.1-SP1: no path leads there, so it is refused
    expect(refused('appv-03', 'install', '4.1-SP1')).toBe('no upgrade path leads to 4.1-SP1');
    expect(host('appv-03').version).toBe('4.5');
    expect(ok('appv-01', 'start')).toBe('services running at 4.1-SP1');
  });

  it('verifies hosts and the database, failing (exit 1) on a mismatch or a stopped service', () => {
    expect(ok('appv-01', 'verify', '4.1-SP1')).toBe('appv-01 healthy at 4.1-SP1');
    expect(failed('appv-01', 'verify', '4.5')).toBe('FAILED: appv-01 is at 4.1-SP1, expected 4.5');
    takeOffline('appv-01');
    expect(failed('appv-01', 'verify', '4.1-SP1')).toBe('FAILED: AppVServer is not running on appv-01');
    expect(ok('db', 'verify', '4.1-SP1')).toBe('schema 4.1-SP1');
    expect(failed('db', 'verify', '4.5')).toBe('FAILED: database schema is 4.1-SP1, expected 4.5');
  });

  it('fails unknown hosts and operations', () => {
    expect(failed('appv-99', 'version')).toBe('FAILED: unknown host: appv-99');
    expect(failed('appv-01', 'reboot')).toBe('FAILED: unknown host operation: reboot');
    expect(failed('db', 'drop')).toBe('FAILED: unknown database operation: drop');
  });
});

describe('labhost rules of each kind of host', () => {
  const offline = (...hosts: string[]) => hosts.forEach((host) => (ok(host, 'drain'), ok(host, 'stop')));

  it('App-V: a console-only host never upgrades the database; a 4.1 host runs against the schema 4.1 SP1 shares', () => {
    relab({ hosts: 1, webService: true, consoles: 1, versions: { 'appv-01': '4.1' } });
    expect(labStatus(dir).hosts.map((h) => [h.id, h.version, Object.keys(h.services)])).toEqual([
      ['appv-01', '4.1', ['AppVServer']],
      ['appv-ws-01', '4.1-SP1', ['AppVManagementWebService']],
      ['appv-console-01', '4.1-SP1', []],
    ]);
    ok('appv-01', 'drain');
    ok('appv-01', 'stop');
    ok('appv-ws-01', 'stop');
    expect(refused('appv-console-01', 'install', '4.5', '--upgrade-schema')).toBe(
      'appv-console-01 has only the Management Console: upgrade the database from a Management Server or the Management Web Service',
    );
    expect(ok('appv-01', 'start')).toBe('services running at 4.1');
  });

  it('GP: a session host never creates the new database, nor installs before the web host did', () => {
    relab({ profile: 'gp-web', hosts: 3 });
    ok('tenant', 'upgrade', '18.0');
    offline('gp-web-01', 'gp-session-01', 'gp-session-02');
    expect(refused('gp-session-01', 'install', '18.0', '--upgrade-schema', '--database', 'GPCONFIGURATION')).toBe(
      'gp-session-01 is a session host: the host with the web site and Session Central Service creates the new configuration database',
    );
    expect(refused('gp-session-01', 'install', '18.0', '--database', 'GPCONFIGURATION')).toContain('the configuration database GPCONFIGURATION does not exist yet');
    ok('gp-web-01', 'install', '18.0', '--upgrade-schema', '--database', 'GPCONFIGURATION');
    // Pointing at the old database, whose schema is the old version, is refused too.
    expect(refused('gp-session-01', 'install', '18.0')).toBe('the configuration database GPWEBCONFIG is at 16.0: install 18.0 on gp-session-01 pointing at a database of 18.0 (--database NAME)');
    ok('gp-session-01', 'install', '18.0', '--database', 'GPCONFIGURATION');
    const state = labStatus(dir);
    expect(state.newDatabases).toEqual({ GPCONFIGURATION: { schema: '18.0' } });
    expect(state.database).toMatchObject({ name: 'GPWEBCONFIG', schema: '16.0' });
    expect(state.hosts.map((h) => h.database)).toEqual(['GPCONFIGURATION', 'GPCONFIGURATION', 'GPWEBCONFIG']);
  });

  it('GP: verify checks the database a host points at; the web host goes online only while every session host is up', () => {
    relab({ profile: 'gp-web', hosts: 3 });
    expect(failed('gp-session-01', 'verify', '16.0', '--database', 'GPCONFIGURATION')).toContain('gp-session-01 points at the configuration database GPWEBCONFIG, expected GPCONFIGURATION');
    expect(ok('gp-session-01', 'verify', '16.0', '--database', 'GPWEBCONFIG')).toBe('gp-session-01 healthy at 16.0');
    offline('gp-web-01', 'gp-session-02');
    ok('gp-web-01', 'start');
    expect(refused('gp-web-01', 'online')).toBe('session host(s) down: gp-session-02; start them before letting users in through gp-web-01');
    ok('gp-session-02', 'start');
    ok('gp-web-01', 'online');
  });
});

describe('ops log', () => {
  it('records every operation, refused and failed ones included, in order with increasing seq', () => {
    refused('appv-01', 'stop');
    ok('appv-01', 'drain');
    ok('appv-01', 'stop');
    refused('appv-01', 'install', '4.5', '--upgrade-schema');
    failed('appv-99', 'version');
    ok('db', 'checksum');
    const checksum = labStatus(dir).database.checksum;

    const ops = labOps(dir);
    expect(ops.map(({ seq, host, op, result, message }) => ({ seq, host, op, result, message }))).toEqual([
      { seq: 1, host: 'appv-01', op: 'stop', result: 'refused', message: '2 user session(s) active on appv-01; drain it first' },
      { seq: 2, host: 'appv-01', op: 'drain', result: 'ok', message: 'sessions signed out, new sessions blocked' },
      { seq: 3, host: 'appv-01', op: 'stop', result: 'ok', message: 'services stopped' },
      {
        seq: 4,
        host: 'appv-01',
        op: 'install 4.5 --upgrade-schema',
        result: 'refused',
        message: expect.stringMatching(/^schema upgrade needs every service of every host stopped/),
      },
      { seq: 5, host: 'appv-99', op: 'version', result: 'failed', message: 'unknown host: appv-99' },
      { seq: 6, host: 'db', op: 'checksum', result: 'ok', message: checksum },
    ]);
    for (const op of ops) expect(op.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const times = ops.map((op) => Date.parse(op.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(readFileSync(join(dir, 'seq'), 'utf8').trim()).toBe('6');
  });

  it('gives 30 parallel operations on 30 hosts 30 unique consecutive seq numbers', async () => {
    relab({ hosts: 30 });
    const ids = hostIds(PROFILES.appv!, 30);
    const codes = await Promise.all(
      ids.map(
        (id) =>
          new Promise<number | null>((resolve, reject) => {
            const child = spawn(LABHOST, [id, 'drain'], { env: { ...process.env, CUTOVER_LAB_DIR: dir }, stdio: 'ignore' });
            child.on('error', reject);
            child.on('close', resolve);
          }),
      ),
    );
    expect(codes).toEqual(ids.map(() => 0));

    const lines = readFileSync(join(dir, 'ops.log'), 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(30);
    for (const line of lines) expect(line.split('\t')).toHaveLength(6);
    const ops = labOps(dir);
    expect(ops.map((op) => op.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(ops.map((op) => op.host))).toEqual(new Set(ids));
    expect(ops.every((op) => op.op === 'drain' && op.result === 'ok')).toBe(true);
    expect(readFileSync(join(dir, 'seq'), 'utf8').trim()).toBe('30');
    expect(labStatus(dir).hosts.every((h) => h.drained && h.sessions === 0)).toBe(true);
  });
});

describe('faults', () => {
  it('fails an operation a given number of times, logging each as a fault, then lets it through', () => {
    ok('appv-02', 'drain');
    labFault(dir, 'appv-02', 'stop', { times: 2 });
    expect(labStatus(dir).faults).toEqual([{ host: 'appv-02', op: 'stop', mode: '2' }]);

    expect(failed('appv-02', 'stop')).toBe('FAULT: injected transient failure of stop on appv-02');
    expect(labStatus(dir).faults).toEqual([{ host: 'appv-02', op: 'stop', mode: '1' }]);
    expect(failed('appv-02', 'stop')).toBe('FAULT: injected transient failure of stop on appv-02');
    expect(labStatus(dir).faults).toEqual([]);
    expect(service('appv-02')).toBe('running');

    expect(ok('appv-02', 'stop')).toBe('services stopped');
    expect(service('appv-02')).toBe('stopped');

    expect(labOps(dir).map(({ host, op, result, message }) => ({ host, op, result, message }))).toEqual([
      { host: 'appv-02', op: 'drain', result: 'ok', message: 'sessions signed out, new sessions blocked' },
      { host: 'appv-02', op: 'stop', result: 'fault', message: 'injected transient failure (1 left)' },
      { host: 'appv-02', op: 'stop', result: 'fault', message: 'injected transient failure (0 left)' },
      { host: 'appv-02', op: 'stop', result: 'ok', message: 'services stopped' },
    ]);
  });

  it('fails an operation every time with "always" until the fault is cleared', () => {
    ok('appv-02', 'drain');
    labFault(dir, 'appv-02', 'stop', 'always');
    for (let i = 0; i < 3; i++) expect(failed('appv-02', 'stop')).toBe('FAULT: injected permanent failure of stop on appv-02');
    expect(labStatus(dir).faults).toEqual([{ host: 'appv-02', op: 'stop', mode: 'always' }]);
    expect(service('appv-02')).toBe('running');
    // only that operation on that host is affected
    takeOffline('appv-01');
    expect(ok('appv-02', 'version')).toBe('4.1-SP1');

    labFault(dir, 'appv-02', 'stop', 'clear');
    expect(labStatus(dir).faults).toEqual([]);
    expect(ok('appv-02', 'stop')).toBe('services stopped');

    const results = labOps(dir)
      .filter((op) => op.host === 'appv-02' && op.op === 'stop')
      .map((op) => [op.result, op.message]);
    expect(results).toEqual([
      ['fault', 'injected permanent failure'],
      ['fault', 'injected permanent failure'],
      ['fault', 'injected permanent failure'],
      ['ok', 'services stopped'],
    ]);
  });

  it('injects faults into database operations too', () => {
    labFault(dir, 'db', 'backup', { times: 1 });
    expect(failed('db', 'backup', 'b')).toBe('FAULT: injected transient failure of backup on db');
    expect(labStatus(dir).backups).toEqual([]);
    ok('db', 'backup', 'b');
    expect(labStatus(dir).backups).toEqual(['b']);
  });

  it('reads a backup back with its content\'s checksum, and a backup cut short ("truncate") reads back with another', () => {
    const { checksum } = labStatus(dir).database;
    ok('db', 'backup', 'good');
    expect(ok('db', 'verify-backup', 'good')).toBe(checksum);
    labFault(dir, 'db', 'backup', 'truncate');
    // The backup itself says nothing went wrong, as a backup written to a failing disk may not.
    expect(ok('db', 'backup', 'cut')).toBe(`backup cut ${checksum}`);
    expect(ok('db', 'verify-backup', 'cut')).toMatch(/^[0-9a-f]{64}$/);
    expect(ok('db', 'verify-backup', 'cut')).not.toBe(checksum);
    expect(failed('db', 'verify-backup', 'none')).toBe('FAILED: backup none cannot be read: it is missing or empty');
  });

  it('hangs an operation with "hang" without holding the lab lock', async () => {
    labFault(dir, 'appv-01', 'drain', 'hang');
    const child = spawn(LABHOST, ['appv-01', 'drain'], { env: { ...process.env, CUTOVER_LAB_DIR: dir }, detached: true });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('labhost never reported the hang')), 10_000);
        child.stdout.on('data', (data: Buffer) => {
          if (data.toString().includes('hanging (injected)')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(child.exitCode).toBeNull();
      // other hosts keep working while it hangs
      expect(ok('appv-02', 'drain')).toBe('sessions signed out, new sessions blocked');
      expect(labOps(dir).map((op) => [op.host, op.op, op.result])).toEqual([
        ['appv-01', 'drain', 'fault'],
        ['appv-02', 'drain', 'ok'],
      ]);
      expect(host('appv-01').drained).toBe(false);
    } finally {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }
  });

  it('rejects faults for unknown hosts or malformed operation names', () => {
    expect(() => labFault(dir, 'appv-09', 'stop', 'always')).toThrow(/no host "appv-09"/);
    expect(() => labFault(dir, 'appv-01', '../x', 'always')).toThrow(/not an operation name/);
    expect(labStatus(dir).faults).toEqual([]);
  });
});
