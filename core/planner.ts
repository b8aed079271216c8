/**
 * What a run will do, computed from a validated plan without any I/O: the ordered phases, and within each
 * the batches of hosts per step. The workflow executes exactly this; `cutover plan` prints it.
 */
import {
  type Command,
  type DatabaseQuery,
  type Gate,
  type GateName,
  GATE_NAMES,
  type Host,
  type HostStepName,
  type Probe,
  type RetryPolicy,
  type StepCommand,
  type TemplateValues,
  type Transport,
  type UpgradePlan,
  DB_OWNER_ROLE,
  applicationRole,
  databaseHost,
  dbOwner,
  durationMs,
  hostCommand,
  hostTransport,
  ownValue,
  renderCommand,
  renderStep,
} from './plan';

import type { PhaseName } from './procedure';

export type { PhaseName };

export interface HostTask {
  host: string;
  command: string;
  undo?: string;
  transport: Transport;
  /** A verify step's health probe, run by the worker; `command` then only describes it. */
  probe?: Probe;
}

/** Steps that only a rollback runs. */
export type RollbackStepName = 'rollback-drain' | 'rollback-stop' | 'downgrade' | 'rollback-start' | 'rollback-verify' | 'rollback-online';
export type StepName = HostStepName | RollbackStepName;

/** One activity's worth of work: one step on a group of hosts that share the same command definition. */
export interface StepBatch {
  step: StepName;
  /** The role whose definition the hosts run ("db-owner" for the owner's own override). */
  role: string;
  tasks: HostTask[];
  /** For the remaining hosts: which wave (of up to batchSize hosts) this batch belongs to. */
  wave?: number;
  /** Keep each host's output in the run's record. */
  record?: boolean;
  /** The site of every host in the batch: its activity runs on that site's task queue. */
  site?: string;
  maxParallel: number;
  timeoutMs: number;
  retry: RetryPolicy;
}

/**
 * A batch activity's attempts as Temporal counts them. The plan's `maxAttempts` is per host command, and the activity
 * counts those itself (activities/hostSteps.ts), so an attempt lost to the infrastructure (a worker killed, a heartbeat
 * or start-to-close timeout) does not use one up: Temporal may try the batch this many times more than the plan's
 * attempts. Bounded, so a batch that keeps killing its workers reaches the operator.
 */
export const LOST_BATCH_ATTEMPTS = 5;

export function batchActivityAttempts(retry: RetryPolicy): number {
  return retry.maxAttempts + LOST_BATCH_ATTEMPTS;
}

/** One command on one host outside the host steps: the database's commands, and prerequisite checks. */
export interface SingleHostTask {
  action: 'backup' | 'verifyBackup' | 'restore' | 'verify' | 'checksum' | 'rehearse' | 'check';
  host: string;
  command: string;
  transport: Transport;
  site?: string;
  timeoutMs: number;
  retry: RetryPolicy;
  /** A backup or restore: what it asks first, and waits on while it prints more than 0 (database.underWay). */
  underWay?: DatabaseQueryTask;
  /** A backup or restore: what its retry asks, once nothing runs, before it runs again (database.backup.finished). */
  finished?: DatabaseQueryTask;
}

/** A question put to the database (core/databaseQueries.ts), rendered. */
export interface DatabaseQueryTask {
  command: string;
  timeoutMs: number;
}

export interface RunPlan {
  fleet: string;
  source: string;
  target: string;
  backup: string;
  owner: string;
  hostIds: string[];
  gates: GateName[];
  /**
   * The rehearsal, at the end of preflight, before anything changes: a backup of its own, then the schema upgrade
   * tried on its copy. Empty without database.rehearse, and for runs from before, which rehearsed in the backup phase.
   */
  rehearsal: SingleHostTask[];
  /** Checked in preflight, in the plan's order. */
  prerequisites: ({ name: string; check: SingleHostTask } | { name: string; confirm: Gate })[];
  phases: Record<PhaseName, { batches: StepBatch[]; database: SingleHostTask[] }>;
}

function formatBackupName(fleet: string, target: string, runPart: string): string {
  return `${fleet}-before-${target}-${runPart}`;
}

/** The backup's name: the run's part is its first run id's first 12 letters and digits, so a reset finds it again. */
export function backupName(fleet: string, target: string, runId: string): string {
  return formatBackupName(fleet, target, runId.replace(/[^A-Za-z0-9]/g, '').slice(0, 12));
}

/** The backup's name before there is a run, for `cutover plan`. */
export function backupNamePreview(fleet: string, target: string): string {
  return formatBackupName(fleet, target, '<run>');
}

export function templateValues(plan: UpgradePlan, backup: string, version: string): TemplateValues {
  const { name, previous } = plan.database;
  return { fleet: plan.fleet, source: plan.source, target: plan.target, version, backup, database: name, previousDatabase: previous ?? name };
}

/** The version each host started at, as preflight found it; a host not in it is at the plan's source. */
export type HostSources = Readonly<Record<string, string>>;

/**
 * Whether these sources change what planRun renders: a host started at another version than the plan's source.
 * When none did, planning again with them gives the plan made without them (hostValues), so the run keeps that one.
 */
export function sourcesChangePlan(plan: UpgradePlan, sources: HostSources | undefined): boolean {
  return sources !== undefined && Object.values(sources).some((version) => version !== plan.source);
}

/**
 * One host's values: its id, and `{{source}}` the version it started at, so its upgrade's undo returns it there.
 * While rolling back (`rollingBack`), `{{version}}` is that version too.
 */
export function hostValues(values: TemplateValues, host: Host, sources: HostSources | undefined, rollingBack = false): TemplateValues {
  const source = (sources && Object.hasOwn(sources, host.id) ? sources[host.id] : undefined) ?? values.source;
  return { ...values, host: host.id, source, ...(rollingBack ? { version: source } : {}) };
}

function chunk<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** The task queue that runs a site's host steps: the run's own queue, suffixed with the site. */
export function siteTaskQueue(baseQueue: string, site: string): string {
  return `${baseQueue}@${site}`;
}

function commandSource(plan: UpgradePlan, host: Host, step: HostStepName): string {
  return host.roles.includes(DB_OWNER_ROLE) && ownValue(plan.roles, DB_OWNER_ROLE)?.steps[step] ? DB_OWNER_ROLE : applicationRole(host);
}

/**
 * Groups hosts into batches for one step. Hosts keep the plan's order; a batch never mixes command definitions
 * (the db-owner override vs the application role), so one retry policy and timeout fit the whole batch, nor sites,
 * so it runs on one site's task queue. Hosts whose role has no such step are left out. `policyStep` names the step whose timeout, retry and batch size apply (a
 * rollback's downgrade uses the upgrade's).
 */
export function makeBatches(
  plan: UpgradePlan,
  step: StepName,
  policyStep: HostStepName,
  hosts: Host[],
  render: (host: Host, definition: StepCommand) => { command: string; undo?: string; probe?: Probe },
): StepBatch[] {
  const groups = new Map<string, { role: string; site?: string; hosts: Host[] }>();
  for (const host of hosts) {
    // A role declares only the steps its hosts have: a console-only host is never drained or stopped.
    if (!hostCommand(plan, host, policyStep)) continue;
    const role = commandSource(plan, host, policyStep);
    const key = `${host.site ?? ''}/${role}`;
    const group = groups.get(key) ?? { role, ...(host.site ? { site: host.site } : {}), hosts: [] };
    group.hosts.push(host);
    groups.set(key, group);
  }
  return [...groups.values()].flatMap(({ role, site, hosts: group }) => {
    const definition = hostCommand(plan, group[0] as Host, policyStep) as StepCommand;
    return chunk(group, definition.batchSize ?? plan.execution.batchSize).map((members) => ({
      step,
      role,
      ...(site ? { site } : {}),
      maxParallel: plan.execution.maxParallel,
      timeoutMs: durationMs(definition.timeout),
      retry: definition.retry,
      ...(definition.record ? { record: true } : {}),
      tasks: members.map((host) => ({ host: host.id, ...render(host, definition), transport: hostTransport(plan, host) })),
    }));
  });
}

/** The rehearsal's own backup, beside the run's. */
export function rehearsalBackupName(backup: string): string {
  return `${backup}-rehearsal`;
}

/**
 * `sources`: each host's starting version, once preflight found it (the run plans again with it). `rehearseInBackup`:
 * the rehearsal as runs from before did it, after the production backup, inside the outage. `backupVerified`: false
 * for runs from before database.verifyBackup, which never read their backup back.
 */
export function planRun(plan: UpgradePlan, options: { backup: string; sources?: HostSources; rehearseInBackup?: boolean; backupVerified?: boolean }): RunPlan {
  const owner = dbOwner(plan);
  const rest = plan.hosts.filter((host) => host !== owner);
  const values = templateValues(plan, options.backup, plan.target);
  const batchesFor = (step: HostStepName, hosts: Host[]): StepBatch[] =>
    makeBatches(plan, step, step, hosts, (host, definition) => ({
      ...renderStep(definition, hostValues(values, host, options.sources)),
      ...(definition.undo ? { undo: renderCommand(definition.undo, hostValues(values, host, options.sources)) } : {}),
    }));

  const dbHost = databaseHost(plan);
  const task = (action: SingleHostTask['action'], definition: Command, host: Host, backup = options.backup): SingleHostTask =>
    singleHostTask(plan, action, definition, host, { ...values, backup });
  const databaseTask = (action: 'backup' | 'verifyBackup' | 'verify' | 'checksum' | 'rehearse', backup?: string): SingleHostTask[] => {
    const definition = plan.database[action];
    return definition ? [task(action, definition, dbHost, backup)] : [];
  };
  const rehearsalBackup = rehearsalBackupName(options.backup);
  const rehearsal = plan.database.rehearse && !options.rehearseInBackup ? [...databaseTask('backup', rehearsalBackup), ...databaseTask('rehearse', rehearsalBackup)] : [];

  const none = { batches: [], database: [] };
  return {
    fleet: plan.fleet,
    source: plan.source,
    target: plan.target,
    backup: options.backup,
    owner: owner.id,
    hostIds: plan.hosts.map((host) => host.id),
    gates: GATE_NAMES.filter((gate) => plan.gates[gate] !== undefined),
    rehearsal,
    prerequisites: plan.prerequisites.map((prerequisite) =>
      'check' in prerequisite
        ? { name: prerequisite.name, check: task('check', prerequisite.check, plan.hosts.find((h) => h.id === (prerequisite.host ?? owner.id)) as Host) }
        : { name: prerequisite.name, confirm: prerequisite.confirm },
    ),
    phases: {
      preflight: { ...none, batches: batchesFor('version', plan.hosts) },
      drain: { ...none, batches: batchesFor('drain', plan.hosts) },
      stop: { ...none, batches: batchesFor('stop', plan.hosts) },
      backup: {
        batches: [],
        database: [
          ...databaseTask('checksum'),
          ...databaseTask('backup'),
          ...(options.backupVerified === false ? [] : databaseTask('verifyBackup')),
          ...(options.rehearseInBackup ? databaseTask('rehearse') : []),
        ],
      },
      upgradeOwner: { ...none, batches: [...batchesFor('upgrade', [owner]), ...batchesFor('start', [owner])] },
      upgradeRest: {
        ...none,
        batches: chunk(rest, plan.execution.batchSize).flatMap((hosts, wave) =>
          [...batchesFor('upgrade', hosts), ...batchesFor('start', hosts)].map((batch) => ({ ...batch, wave })),
        ),
      },
      verify: { batches: batchesFor('verify', plan.hosts), database: databaseTask('verify') },
      online: { ...none, batches: batchesFor('online', plan.hosts) },
    },
  };
}

/** The database tasks a rollback runs: restore from this run's backup, then checksum to compare with it (in-place only). */
export function rollbackDatabaseTasks(plan: UpgradePlan, backup: string): { restore: SingleHostTask; checksum: SingleHostTask } {
  const definition = (action: 'restore' | 'checksum'): Command => {
    const command = plan.database[action];
    if (!command) throw new Error(`an in-place plan without database.${action}`);
    return command;
  };
  const dbHost = databaseHost(plan);
  const values = templateValues(plan, backup, plan.source);
  const task = (action: 'restore' | 'checksum'): SingleHostTask => singleHostTask(plan, action, definition(action), dbHost, values);
  return { restore: task('restore'), checksum: task('checksum') };
}

/** The database tasks that write it: no two may run at once, so each asks database.underWay first. */
const WRITES_DATABASE: ReadonlySet<SingleHostTask['action']> = new Set(['backup', 'restore']);

function singleHostTask(plan: UpgradePlan, action: SingleHostTask['action'], definition: Command & { finished?: DatabaseQuery }, host: Host, values: TemplateValues): SingleHostTask {
  const rendered = { ...values, host: host.id };
  const query = (asked: DatabaseQuery): DatabaseQueryTask => ({ command: renderCommand(asked.run, rendered), timeoutMs: durationMs(asked.timeout) });
  const underWay = WRITES_DATABASE.has(action) ? plan.database.underWay : undefined;
  return {
    action,
    host: host.id,
    command: renderCommand(definition.run, rendered),
    transport: hostTransport(plan, host),
    ...(host.site ? { site: host.site } : {}),
    timeoutMs: durationMs(definition.timeout),
    retry: definition.retry,
    ...(underWay ? { underWay: query(underWay) } : {}),
    ...(definition.finished ? { finished: query(definition.finished) } : {}),
  };
}

export function hostRange(tasks: HostTask[]): string {
  if (tasks.length <= 3) return tasks.map((t) => t.host).join(', ');
  return `${tasks[0]?.host} … ${tasks[tasks.length - 1]?.host} (${tasks.length} hosts)`;
}

/** One line per batch, used for activity summaries in the UI. */
export function describeBatch(batch: StepBatch): string {
  return `${batch.step} on ${hostRange(batch.tasks)}`;
}
