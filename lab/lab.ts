/**
 * The lab: a simulated fleet on disk. `labhost` (lab/bin/labhost) performs and polices every host operation;
 * this module creates, inspects and tears down a lab, and injects faults.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UserError } from '../core/errors';
import { PROJECT_ROOT } from '../projectRoot';

export const LAB_BIN = join(PROJECT_ROOT, 'lab', 'bin');
export const LABHOST = join(LAB_BIN, 'labhost');

export interface LabHostLayout {
  id: string;
  services: string[];
  /** Session hosts take new sessions only when session management allows them (Dynamics GP web client). */
  sessionHost?: boolean;
  /** What the host is, where the product tells kinds apart (the plan's role kinds): labhost polices by it. */
  kind?: string;
}

/** Hosts of other kinds beside a profile's usual ones. */
export interface LabExtras {
  /** App-V: one Management Web Service host, appv-ws-01. */
  webService?: boolean;
  /** App-V: this many computers with only the Management Console, appv-console-01 ... */
  consoles?: number;
}

export interface LabProfile {
  name: string;
  source: string;
  target: string;
  upgradePaths: Record<string, string[]>;
  sessionsPerHost: number;
  /** The hosts of a lab of `count` hosts (plus `extras`, where the profile has such hosts). */
  layout(count: number, extras?: LabExtras): LabHostLayout[];
  /** The configuration database's name, where the product names it. */
  database?: string;
  /** Whether the product has Tenant Services, which must be upgraded before the web components. */
  tenantServices?: boolean;
  /** Versions that share one database schema, so a host at either runs against it (App-V 4.1 and 4.1 SP1). */
  sharedSchemas?: string[][];
}

const numbered = (prefix: string, count: number, width = Math.max(2, String(count).length)) =>
  Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(width, '0')}`);

export const PROFILES: Record<string, LabProfile> = {
  /** App-V 4.5 management servers sharing one configuration database. */
  appv: {
    name: 'appv',
    source: '4.1-SP1',
    target: '4.5',
    upgradePaths: { '4.5': ['4.1', '4.1-SP1'] },
    sharedSchemas: [['4.1', '4.1-SP1']],
    sessionsPerHost: 2,
    layout: (count, extras = {}) => [
      ...numbered('appv', count).map((id) => ({ id, services: ['AppVServer'], kind: 'management-server' })),
      ...(extras.webService ? [{ id: 'appv-ws-01', services: ['AppVManagementWebService'], kind: 'management-web-service' }] : []),
      ...numbered('appv-console', extras.consoles ?? 0).map((id) => ({ id, services: [], kind: 'console' })),
    ],
  },
  /** Dynamics GP web components, scale-out: one web site + Session Central Service host, the rest session hosts. */
  'gp-web': {
    name: 'gp-web',
    source: '16.0',
    target: '18.0',
    upgradePaths: { '18.0': ['16.0'] },
    sessionsPerHost: 3,
    database: 'GPWEBCONFIG',
    tenantServices: true,
    layout: (count) => [
      { id: 'gp-web-01', services: ['SessionCentralService', 'WebSite'], kind: 'web-site' },
      ...numbered('gp-session', count - 1).map((id) => ({ id, services: ['SessionService'], sessionHost: true, kind: 'session-host' })),
    ],
  },
};

export function labDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.CUTOVER_LAB_DIR ?? join(PROJECT_ROOT, '.cutover', 'lab'));
}

export interface LabUpOptions extends LabExtras {
  profile?: string;
  hosts?: number;
  /** Starting version of every host (default: the profile's source). */
  version?: string;
  /** Per-host starting versions, overriding `version`. */
  versions?: Record<string, string>;
}

export function hostIds(profile: LabProfile, count: number, extras?: LabExtras): string[] {
  return profile.layout(count, extras).map((host) => host.id);
}

/** Creates a fresh lab, replacing any previous one in the same directory. */
export function labUp(dir: string, options: LabUpOptions = {}): { dir: string; hosts: string[]; profile: LabProfile } {
  const profile = PROFILES[options.profile ?? 'appv'];
  if (!profile) throw new UserError(`unknown lab profile "${options.profile}"; profiles: ${Object.keys(PROFILES).join(', ')}`);
  const count = options.hosts ?? 4;
  const least = profile.name === 'gp-web' ? 2 : 1;
  if (!Number.isInteger(count) || count < least) throw new UserError(`--hosts must be a whole number of at least ${least} for the ${profile.name} profile, got ${count}`);
  const layout = profile.layout(count, options);
  const hosts = layout.map((host) => host.id);
  const unknown = Object.keys(options.versions ?? {}).filter((id) => !hosts.includes(id));
  if (unknown.length > 0) throw new UserError(`no host ${unknown.join(', ')} in this ${profile.name} lab; its hosts: ${hosts.join(', ')}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'db'), { recursive: true });
  mkdirSync(join(dir, 'faults'));
  mkdirSync(join(dir, 'backups'));
  for (const { id, services, sessionHost, kind } of layout) {
    const host = join(dir, 'hosts', id);
    mkdirSync(join(host, 'services'), { recursive: true });
    writeFileSync(join(host, 'version'), `${options.versions?.[id] ?? options.version ?? profile.source}\n`);
    // Users have sessions on the servers; a console or the web service has none to sign out.
    writeFileSync(join(host, 'sessions'), `${kind === 'console' || kind === 'management-web-service' ? 0 : profile.sessionsPerHost}\n`);
    if (kind) writeFileSync(join(host, 'kind'), `${kind}\n`);
    // Each host of a product that names its configuration database points at one by name (Dynamics GP).
    if (profile.database) writeFileSync(join(host, 'database'), `${profile.database}\n`);
    writeFileSync(join(host, 'drained'), '0\n');
    writeFileSync(join(host, 'online'), '1\n');
    for (const service of services) writeFileSync(join(host, 'services', service), 'running\n');
    if (sessionHost) writeFileSync(join(host, 'allow'), '1\n');
  }
  if (profile.database) writeFileSync(join(dir, 'db', 'name'), `${profile.database}\n`);
  if (profile.tenantServices) writeFileSync(join(dir, 'tenant'), `${profile.source}\n`);
  writeFileSync(join(dir, 'db', 'schema'), `${profile.source}\n`);
  writeFileSync(
    join(dir, 'db', 'content'),
    `configuration database of the ${profile.name} lab\n${hosts.map((id) => `server ${id}`).join('\n')}\n`,
  );
  writeFileSync(
    join(dir, 'paths'),
    Object.entries(profile.upgradePaths)
      .map(([target, sources]) => `${target} ${sources.join(' ')}`)
      .join('\n') + '\n',
  );
  writeFileSync(join(dir, 'shared-schemas'), (profile.sharedSchemas ?? []).map((versions) => `${versions.join(' ')}\n`).join(''));
  writeFileSync(join(dir, 'ops.log'), '');
  writeFileSync(join(dir, 'seq'), '0\n');
  writeFileSync(join(dir, 'lab.json'), JSON.stringify({ profile: profile.name, hosts, createdAt: new Date().toISOString() }, null, 2));
  return { dir, hosts, profile };
}

export function labDown(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function requireLab(dir: string): { profile: string; hosts: string[] } {
  if (!existsSync(join(dir, 'lab.json'))) throw new UserError(`no lab at ${dir}; start one with: cutover lab up`);
  return JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as { profile: string; hosts: string[] };
}

const read = (path: string) => readFileSync(path, 'utf8').trim();

export interface LabHostStatus {
  id: string;
  version: string;
  previousVersion?: string;
  services: Record<string, 'running' | 'stopped'>;
  sessions: number;
  drained: boolean;
  online: boolean;
  /** Session hosts: registered in session management and allowing new sessions. */
  allowsNewSessions?: boolean;
  /** The configuration database the host points at, where the product names it (Dynamics GP). */
  database?: string;
}

export interface LabStatus {
  dir: string;
  profile: string;
  hosts: LabHostStatus[];
  database: { schema: string; checksum: string; name?: string };
  /** Configuration databases created beside `database` (Dynamics GP's new one), by name: their schema. */
  newDatabases?: Record<string, { schema: string }>;
  tenantServices?: string;
  backups: string[];
  faults: { host: string; op: string; mode: string }[];
}

export function labStatus(dir: string): LabStatus {
  const meta = requireLab(dir);
  const hosts = meta.hosts.map((id): LabHostStatus => {
    const host = join(dir, 'hosts', id);
    const services = Object.fromEntries(
      readdirSync(join(host, 'services')).map((name) => [name, read(join(host, 'services', name)) as 'running' | 'stopped']),
    );
    return {
      id,
      version: read(join(host, 'version')),
      ...(existsSync(join(host, 'previous')) ? { previousVersion: read(join(host, 'previous')) } : {}),
      services,
      sessions: Number(read(join(host, 'sessions'))),
      drained: read(join(host, 'drained')) === '1',
      online: read(join(host, 'online')) === '1',
      ...(existsSync(join(host, 'allow')) ? { allowsNewSessions: read(join(host, 'allow')) === '1' } : {}),
      ...(existsSync(join(host, 'database')) ? { database: read(join(host, 'database')) } : {}),
    };
  });
  // Same bytes labhost hashes: schema file then content file.
  const checksum = createHash('sha256')
    .update(readFileSync(join(dir, 'db', 'schema')))
    .update(readFileSync(join(dir, 'db', 'content')))
    .digest('hex');
  return {
    dir,
    profile: meta.profile,
    hosts,
    database: {
      schema: read(join(dir, 'db', 'schema')),
      checksum,
      ...(existsSync(join(dir, 'db', 'name')) ? { name: read(join(dir, 'db', 'name')) } : {}),
    },
    ...newDatabases(dir),
    ...(existsSync(join(dir, 'tenant')) ? { tenantServices: read(join(dir, 'tenant')) } : {}),
    backups: readdirSync(join(dir, 'backups')),
    faults: readdirSync(join(dir, 'faults')).map((file) => {
      const [host = '', op = ''] = file.split('__');
      return { host, op, mode: read(join(dir, 'faults', file)) };
    }),
  };
}

function newDatabases(dir: string): Pick<LabStatus, 'newDatabases'> {
  const root = join(dir, 'databases');
  if (!existsSync(root)) return {};
  return { newDatabases: Object.fromEntries(readdirSync(root).map((name) => [name, { schema: read(join(root, name, 'schema')) }])) };
}

export interface LabOp {
  seq: number;
  time: string;
  host: string;
  op: string;
  result: 'ok' | 'refused' | 'failed' | 'fault';
  message: string;
}

export function labOps(dir: string): LabOp[] {
  requireLab(dir);
  return read(join(dir, 'ops.log'))
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [seq, time, host, op, result, message] = line.split('\t');
      return { seq: Number(seq), time: time ?? '', host: host ?? '', op: op ?? '', result: result as LabOp['result'], message: message ?? '' };
    });
}

/** `truncate`: once, the operation succeeds but what it writes is cut short (a backup file on a failing disk). */
export type FaultMode = { times: number } | { delaySeconds: number } | 'always' | 'hang' | 'truncate' | 'clear';

export function labFault(dir: string, host: string, op: string, mode: FaultMode): void {
  const meta = requireLab(dir);
  if (host !== 'db' && host !== 'tenant' && !meta.hosts.includes(host)) {
    throw new UserError(`no host "${host}" in the lab at ${dir}; hosts: ${meta.hosts.join(', ')} (or "db", "tenant")`);
  }
  if (!/^[a-z-]+$/.test(op)) throw new UserError(`"${op}" is not an operation name (e.g. install, stop, start, backup)`);
  const file = join(dir, 'faults', `${host}__${op}`);
  if (mode === 'clear') rmSync(file, { force: true });
  else writeFileSync(file, `${typeof mode === 'string' ? mode : 'times' in mode ? mode.times : `delay ${mode.delaySeconds}`}\n`);
}
