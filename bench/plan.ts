/**
 * The benchmark's fleet plan, generated from the lab plan (examples/appv-lab.yaml) for N hosts, and the exact
 * per-host commands it runs, in the workflow's order, so Ansible and the floor run the very same commands.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { type StepCommand, type UpgradePlan, HOST_STEPS, validatePlan } from '../core/plan';
import { backupName, planRun } from '../core/planner';
import { PHASES, type PhaseName } from '../core/procedure';
import { PROFILES, hostIds } from '../lab/lab';
import { PROJECT_ROOT } from '../projectRoot';

export type StepsKind = 'noop' | 'lab';

export const LAB_PROFILE = PROFILES.appv as NonNullable<typeof PROFILES.appv>;

export interface PlanOptions {
  hosts: number;
  parallel: number;
  steps: StepsKind;
  /** Hosts per batch activity; the plan's default when absent. */
  batchSize?: number;
}

const noop = <C extends StepCommand>(command: C, run = 'true'): C => ({ ...command, run, ...(command.undo ? { undo: 'true' } : {}) });
const noopIf = <C extends StepCommand>(command: C | undefined, run = 'true'): C | undefined => command && noop(command, run);
/** A no-op database answers its questions (core/databaseQueries.ts): nothing runs, nothing finished before. */
const noAnswer = <Q extends { run: string }>(query: Q | undefined): Q | undefined => query && { ...query, run: 'echo 0' };
const noopWrite = <C extends StepCommand & { finished?: { run: string } }>(command: C | undefined): C | undefined =>
  command && { ...noop(command), ...(command.finished ? { finished: noAnswer(command.finished) } : {}) };

/**
 * A validated plan for `hosts` lab hosts: host 0 is the DB owner. `noop` keeps every timeout, retry and record
 * flag of the lab plan but replaces each command by `true`; the version step prints the plan's source version,
 * because preflight checks it.
 */
export function benchPlan(options: PlanOptions): UpgradePlan {
  const template = parse(readFileSync(join(PROJECT_ROOT, 'examples', 'appv-lab.yaml'), 'utf8')) as Record<string, unknown>;
  const base = validatePlan(template);
  if (!base.ok) throw new Error(`examples/appv-lab.yaml is not a valid plan:\n${base.message}`);
  let plan: UpgradePlan = base.plan;
  if (options.steps === 'noop') {
    plan = {
      ...plan,
      roles: Object.fromEntries(
        Object.entries(plan.roles).map(([name, role]) => [
          name,
          {
            ...role,
            steps: Object.fromEntries(
              Object.entries(role.steps).map(([step, command]) => [step, command && noop(command, step === 'version' ? 'echo {{source}}' : 'true')]),
            ),
          },
        ]),
      ) as UpgradePlan['roles'],
      database: {
        ...plan.database,
        backup: noopWrite(plan.database.backup),
        restore: noopWrite(plan.database.restore),
        underWay: noAnswer(plan.database.underWay),
        verify: noop(plan.database.verify),
        // A checksum must look like one (core/checksum.ts): a constant digest, as every no-op database stays the same.
        checksum: noopIf(plan.database.checksum, 'echo 00000000'),
        // The backup reads back as the database's checksum, or the run stops before the schema gate.
        verifyBackup: noopIf(plan.database.verifyBackup, 'echo 00000000'),
      },
    };
  }
  const raw = {
    ...plan,
    fleet: `bench-${options.hosts}`,
    hosts: hostIds(LAB_PROFILE, options.hosts).map((id, i) => ({ id, roles: i === 0 ? ['management-server', 'db-owner'] : ['management-server'] })),
    execution: {
      ...plan.execution,
      maxParallel: options.parallel,
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    },
  };
  const validated = validatePlan(raw);
  if (!validated.ok) throw new Error(`the generated benchmark plan is invalid:\n${validated.message}`);
  return validated.plan;
}

/** One command run by itself (a database task), or one step over a group of hosts, `parallel` at a time. */
export interface Stage {
  phase: PhaseName;
  /** The host step (`drain`) or database task (`db backup`). */
  step: string;
  /** For the remaining hosts' upgrade: which wave (of up to batchSize hosts). */
  wave?: number;
  commands: { host: string; command: string }[];
}

/**
 * The run's commands in the workflow's order (core/planner.ts): per phase, its database tasks, then its host
 * batches. Consecutive batches of the same step are merged (one `xargs` per step over all hosts); the remaining
 * hosts keep their waves (upgrade then start per wave).
 */
export function stages(plan: UpgradePlan, backup = backupName(plan.fleet, plan.target, 'bench')): Stage[] {
  const run = planRun(plan, { backup });
  const out: Stage[] = [];
  for (const phase of PHASES) {
    for (const task of run.phases[phase].database) out.push({ phase, step: `db ${task.action}`, commands: [{ host: task.host, command: task.command }] });
    for (const batch of run.phases[phase].batches) {
      const last = out[out.length - 1];
      const commands = batch.tasks.map((task) => ({ host: task.host, command: task.command }));
      if (last && last.phase === phase && last.step === batch.step && last.wave === batch.wave) last.commands.push(...commands);
      else out.push({ phase, step: batch.step, ...(batch.wave !== undefined ? { wave: batch.wave } : {}), commands });
    }
  }
  return out;
}

/** Host-steps of a run: every host runs each of the plan's host steps once. */
export function hostStepCount(plan: UpgradePlan): number {
  return plan.hosts.length * HOST_STEPS.length;
}

/** Per host, the command of each host step; the database commands separately (for the Ansible inventory). */
export function commandsByHost(list: Stage[]): { hosts: Record<string, Record<string, string>>; database: Record<string, string> } {
  const hosts: Record<string, Record<string, string>> = {};
  const database: Record<string, string> = {};
  for (const stage of list) {
    for (const { host, command } of stage.commands) {
      if (stage.step.startsWith('db ')) database[stage.step.slice(3)] = command;
      else (hosts[host] ??= {})[stage.step] = command;
    }
  }
  return { hosts, database };
}
