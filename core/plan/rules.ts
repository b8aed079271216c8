/**
 * The plan's cross-field rules: what no field's schema can check on its own. UpgradePlan's superRefine runs
 * PLAN_RULES once the plan's shape is right. Callers see the issues in the order they are reported (issues[0],
 * and z.prettifyError among issues at the same depth), so the order of the lists below is part of the output: a
 * host's problems come together, host by host, while the role rules each walk every role in turn, since one rule's
 * issues for all roles come before the next rule's. Merging those walks would reorder the issues.
 */
import type { z } from 'zod';
import { parseSecretRef } from '../secrets';
import { templateSpans } from '../text';
import { DB_OWNER_ROLE, HOST_STEPS, type HostStepName, NEVER_DB_OWNER, NO_SERVICE_STEPS, REQUIRED_STEPS, databaseHost, hostTransport } from './hosts';
import { ownValue } from './names';
import { TEMPLATE_KEYS, probeTexts } from './render';
import type { Host, ParsedPlan, Probe, StepCommand } from './schema';

type Path = (string | number)[];
type Report = (path: Path, message: string) => void;

/** What every rule is given: the parsed plan, where each host id first appears, and where to report a problem. */
export interface RuleContext {
  plan: ParsedPlan;
  firstIndex: ReadonlyMap<string, number>;
  report: Report;
}
export type PlanRule = (ctx: RuleContext) => void;
/** A rule about one host. */
type HostRule = (host: Host, index: number, ctx: RuleContext) => void;
/** A rule about the undo of one step of one role. */
type UndoRule = (role: string, step: HostStepName, command: StepCommand, report: Report, plan: ParsedPlan) => void;

/** UpgradePlan's superRefine: every rule in order, each issue a custom one at its path from the plan's root. */
export function checkPlanRules(plan: ParsedPlan, ctx: z.RefinementCtx<ParsedPlan>): void {
  applyRules(PLAN_RULES, plan, (path, message) => ctx.addIssue({ code: 'custom', path, message }));
}

/** The issues of the START_RULES, for a plan that passed every other. */
export function startRuleIssues(plan: ParsedPlan): z.core.$ZodIssue[] {
  const issues: z.core.$ZodIssue[] = [];
  applyRules(START_RULES, plan, (path, message) => issues.push({ code: 'custom', path, message, input: undefined }));
  return issues;
}

function applyRules(rules: readonly PlanRule[], plan: ParsedPlan, report: Report): void {
  const firstIndex = new Map<string, number>();
  plan.hosts.forEach((host, index) => {
    if (!firstIndex.has(host.id)) firstIndex.set(host.id, index);
  });
  for (const rule of rules) rule({ plan, firstIndex, report });
}

// Hosts

function uniqueHostIds(host: Host, index: number, { firstIndex, report }: RuleContext): void {
  const first = firstIndex.get(host.id);
  if (first !== undefined && first !== index) report(['hosts', index, 'id'], `duplicate host id "${host.id}" (also hosts[${first}])`);
}

function knownRoles(host: Host, index: number, { plan, report }: RuleContext): void {
  host.roles.forEach((role, r) => {
    if (role !== DB_OWNER_ROLE && !Object.hasOwn(plan.roles, role)) {
      const declared = [...new Set([DB_OWNER_ROLE, ...Object.keys(plan.roles)])].join(', ');
      report(['hosts', index, 'roles', r], `unknown role "${role}"; declared roles are ${declared}`);
    }
  });
}

function addressNeedsSshTransport(host: Host, index: number, { plan, report }: RuleContext): void {
  if (host.address !== undefined && (host.transport !== undefined || plan.transport.kind !== 'ssh')) {
    report(
      ['hosts', index, 'address'],
      host.transport ? 'this host has its own transport: put the address in it' : "an address is for the plan's ssh transport, and the plan's transport is local",
    );
  }
}

function oneApplicationRolePerHost(host: Host, index: number, { report }: RuleContext): void {
  const applicationRoles = host.roles.filter((role) => role !== DB_OWNER_ROLE);
  if (applicationRoles.length !== 1) {
    report(['hosts', index, 'roles'], `a host has exactly one application role besides "${DB_OWNER_ROLE}", found ${applicationRoles.length}`);
  }
}

const HOST_RULES: readonly HostRule[] = [uniqueHostIds, knownRoles, addressNeedsSshTransport, oneApplicationRolePerHost];

/** Runs HOST_RULES host by host, so each host's problems are reported together. */
function eachHost(ctx: RuleContext): void {
  ctx.plan.hosts.forEach((host, index) => {
    for (const rule of HOST_RULES) rule(host, index, ctx);
  });
}

function exactlyOneDbOwner({ plan, report }: RuleContext): void {
  const owners = plan.hosts.flatMap((host, index) => (host.roles.includes(DB_OWNER_ROLE) ? [index] : []));
  if (owners.length === 1) return;
  report(
    ['hosts'],
    owners.length === 0
      ? `exactly one host must have the role "${DB_OWNER_ROLE}" (it upgrades the database schema); none has`
      : `exactly one host must have the role "${DB_OWNER_ROLE}"; hosts ${owners.map((i) => `[${i}]`).join(', ')} all have it`,
  );
}

function prerequisiteHostsExist({ plan, firstIndex, report }: RuleContext): void {
  plan.prerequisites.forEach((prerequisite, index) => {
    if ('host' in prerequisite && prerequisite.host !== undefined && !firstIndex.has(prerequisite.host)) {
      report(['prerequisites', index, 'host'], `no host has the id "${prerequisite.host}"`);
    }
  });
}

function rehearsalGateNeedsRehearsal({ plan, report }: RuleContext): void {
  if (plan.gates.beforeRehearsal && !plan.database.rehearse) report(['gates', 'beforeRehearsal'], 'there is no rehearsal to gate: add database.rehearse');
}

/** The database's commands follow its strategy: a backup to restore in place, or the old database to point back at. */
function databaseFollowsStrategy({ plan, report }: RuleContext): void {
  const { database } = plan;
  if (database.verifyBackup && !(database.backup && database.checksum)) {
    report(['database', 'verifyBackup'], 'a backup is verified against the checksum taken before it: add database.backup and database.checksum');
  }
  if (database.strategy === 'in-place') {
    for (const key of ['backup', 'restore', 'checksum'] as const) {
      if (!database[key]) report(['database', key], `an in-place upgrade restores this run's backup on rollback: database.${key} is required`);
    }
    if (database.previous !== undefined) report(['database', 'previous'], 'previous names the old database of a new-database upgrade; this one is in-place');
    return;
  }
  if (database.previous === undefined) report(['database', 'previous'], 'a new-database upgrade needs the old database\'s name: a rollback points every host back at it');
  else if (database.previous === database.name) report(['database', 'previous'], `the new database must have another name than the old one (${database.name})`);
  if (database.restore) report(['database', 'restore'], 'a new-database upgrade leaves the old database intact: a rollback points the hosts back at it and restores nothing');
  if (database.rehearse && !database.backup) report(['database', 'rehearse'], 'a rehearsal runs on a copy of a backup: add database.backup');
}

function databaseHostExists({ plan, firstIndex, report }: RuleContext): void {
  if (plan.database.host !== undefined && !firstIndex.has(plan.database.host)) report(['database', 'host'], `no host has the id "${plan.database.host}"`);
}

/**
 * A backup or restore over ssh leaves no journal on the worker: after a lost worker, only the database can tell its
 * retry that the first one still runs.
 */
function databaseOverSshAsksUnderWay({ plan, report }: RuleContext): void {
  const { database } = plan;
  if (database.underWay || !(database.backup || database.restore)) return;
  const dbHost = databaseHost(plan);
  if (hostTransport(plan, dbHost).kind !== 'ssh') return;
  report(
    ['database', 'underWay'],
    `the database commands run on ${dbHost.id} over ssh, where the worker keeps no journal of them: add database.underWay, a command that prints how many backups or restores of the database run now (0 when none), so that a backup or restore whose worker was lost is waited for instead of joined by a second`,
  );
}

function upgradePathLeadsToTarget({ plan, report }: RuleContext): void {
  const allowedSources = ownValue(plan.upgradePaths, plan.target);
  if (allowedSources === undefined) {
    report(['target'], `no upgrade path leads to ${plan.target}; upgradePaths covers ${Object.keys(plan.upgradePaths).join(', ') || 'nothing'}`);
  } else if (!allowedSources.includes(plan.source)) {
    report(['source'], `${plan.target} cannot be installed over ${plan.source}: upgrade it to ${allowedSources.join(' or ')} first`);
  }
}

// Roles

// Rollback replays these undos: without them a rolled-back run would report success with hosts left behind.
const UNDONE_STEPS: readonly HostStepName[] = ['drain', 'stop', 'upgrade', 'online'];

function undoForEveryServiceStep(role: string, step: HostStepName, command: StepCommand, report: Report): void {
  if (!command.undo) report(['roles', role, 'steps', step, 'undo'], `a ${step} step needs an undo: rollback replays it`);
}

function undoNamesNoVersion(role: string, step: HostStepName, command: StepCommand, report: Report): void {
  if (command.undo && /\{\{\s*version\s*\}\}/.test(command.undo)) {
    report(['roles', role, 'steps', step, 'undo'], 'an undo names versions with {{source}} or {{target}}, not {{version}}');
  }
}

/** `{{database}}` is the new database until a rollback: an undo names the old one as {{previousDatabase}}. */
function undoNamesPreviousDatabase(role: string, step: HostStepName, command: StepCommand, report: Report, plan: ParsedPlan): void {
  if (plan.database.strategy === 'new-database' && command.undo && /\{\{\s*database\s*\}\}/.test(command.undo)) {
    report(['roles', role, 'steps', step, 'undo'], 'an undo points the host back at the old database: {{previousDatabase}}, not {{database}}');
  }
}

const UNDO_RULES: readonly UndoRule[] = [undoForEveryServiceStep, undoNamesNoVersion, undoNamesPreviousDatabase];

/** Runs UNDO_RULES on every step of every role that rollback undoes, role by role, step by step. */
function eachUndoneStep({ plan, report }: RuleContext): void {
  for (const [name, role] of Object.entries(plan.roles)) {
    for (const step of UNDONE_STEPS) {
      const command = role.steps[step];
      if (command) for (const rule of UNDO_RULES) rule(name, step, command, report, plan);
    }
  }
}

/** Steps that come in pairs on one host: what a role stops it starts again, whom it drains it lets back in. */
const PAIRED_STEPS: readonly [HostStepName, HostStepName][] = [
  ['stop', 'start'],
  ['drain', 'online'],
];

/**
 * A role declares only the steps its hosts have (a console-only host has no service to drain or stop), but every
 * role has the steps the procedure needs of each host, and the pairs are whole. The db-owner role only overrides.
 */
function rolesHaveTheirSteps({ plan, report }: RuleContext): void {
  for (const [name, role] of Object.entries(plan.roles)) {
    if (name === DB_OWNER_ROLE) continue;
    for (const step of REQUIRED_STEPS) {
      if (role.steps[step] === undefined) report(['roles', name, 'steps', step], `the role "${name}" has no "${step}" step`);
    }
    const noService = (role.kind && NO_SERVICE_STEPS[role.kind]) || [];
    for (const step of noService) {
      if (role.steps[step]) report(['roles', name, 'steps', step], `a ${role.kind} host has no service: its role has no "${step}" step`);
    }
    // A kind without services is told that, not to complete a pair it should not have.
    if (noService.length > 0) continue;
    for (const [a, b] of PAIRED_STEPS) {
      for (const [has, lacks] of [[a, b], [b, a]] as const) {
        if (role.steps[has] && !role.steps[lacks]) report(['roles', name, 'steps', lacks], `the role "${name}" has a "${has}" step, so it needs a "${lacks}" step`);
      }
    }
  }
}

/** The host that upgrades or creates the shared database is one whose kind can (the seeds name which). */
function dbOwnerKind({ plan, report }: RuleContext): void {
  const hasWebSite = Object.values(plan.roles).some((role) => role.kind === 'web-site');
  plan.hosts.forEach((host, index) => {
    if (!host.roles.includes(DB_OWNER_ROLE)) return;
    const role = host.roles.find((r) => r !== DB_OWNER_ROLE);
    const kind = role === undefined ? undefined : ownValue(plan.roles, role)?.kind;
    const never = kind && NEVER_DB_OWNER[kind];
    if (never) report(['hosts', index, 'roles'], `"${DB_OWNER_ROLE}" on ${host.id}, a ${kind} host: ${never}`);
    else if (hasWebSite && kind !== 'web-site') report(['hosts', index, 'roles'], `"${DB_OWNER_ROLE}" belongs on the host with the web site and Session Central Service (role kind web-site), not on ${host.id}`);
  });
}

// Templates

/** Each `{{...}}` as /\{\{([^}]*)\}\}/g finds them, scanned in linear time (core/text.ts says why not that regex). */
const TEMPLATE_HEAD = /\{\{/y;

function checkTemplates(text: string, path: Path, report: Report): void {
  for (const { body } of templateSpans(text, TEMPLATE_HEAD)) {
    const key = body.trim();
    if (key.startsWith('secret:')) {
      const parsed = parseSecretRef(key.slice('secret:'.length));
      if (!parsed.ok) report(path, `{{${key}}}: ${parsed.reason}`);
    } else if (!(TEMPLATE_KEYS as readonly string[]).includes(key)) {
      report(path, `unknown template {{${key}}}; use ${TEMPLATE_KEYS.map((k) => `{{${k}}}`).join(' ')} or {{secret:env:NAME}}`);
    }
  }
}

function checkCommandTemplates(command: { run?: string; undo?: string; probe?: Probe }, path: Path, report: Report): void {
  if (command.run) checkTemplates(command.run, [...path, 'run'], report);
  if (command.undo) checkTemplates(command.undo, [...path, 'undo'], report);
  if (command.probe) {
    for (const [field, text] of probeTexts(command.probe)) checkTemplates(text, [...path, 'probe', ...field], report);
  }
}

/** The database's commands and the prerequisites' checks; the roles' steps come after verifyUsesVersionNotTarget. */
function knownTemplatesOutsideRoles({ plan, report }: RuleContext): void {
  for (const key of ['backup', 'verifyBackup', 'restore', 'verify', 'checksum', 'rehearse', 'underWay'] as const) {
    const command = plan.database[key];
    if (command) checkCommandTemplates(command, ['database', key], report);
    if (command && 'finished' in command && command.finished) checkCommandTemplates(command.finished, ['database', key, 'finished'], report);
  }
  plan.prerequisites.forEach((prerequisite, index) => {
    if ('check' in prerequisite) checkCommandTemplates(prerequisite.check, ['prerequisites', index, 'check'], report);
  });
}

function verifyUsesVersionNotTarget({ plan, report }: RuleContext): void {
  for (const [name, role] of Object.entries(plan.roles)) {
    const verify = role.steps.verify;
    const verifyText = verify?.run ?? (verify?.probe ? JSON.stringify(verify.probe) : '');
    if (verify && /\{\{\s*target\s*\}\}/.test(verifyText)) {
      report(
        ['roles', name, 'steps', 'verify', verify.run ? 'run' : 'probe'],
        'verify with {{version}}, not {{target}}: after a rollback the same check must expect the source version',
      );
    }
  }
}

function knownTemplatesInRoles({ plan, report }: RuleContext): void {
  for (const [name, role] of Object.entries(plan.roles)) {
    for (const step of HOST_STEPS) {
      const command = role.steps[step];
      if (command) checkCommandTemplates(command, ['roles', name, 'steps', step], report);
    }
  }
}

/** In the order their issues are reported. */
export const PLAN_RULES: readonly PlanRule[] = [
  eachHost,
  exactlyOneDbOwner,
  prerequisiteHostsExist,
  rehearsalGateNeedsRehearsal,
  databaseFollowsStrategy,
  databaseHostExists,
  upgradePathLeadsToTarget,
  eachUndoneStep,
  rolesHaveTheirSteps,
  dbOwnerKind,
  knownTemplatesOutsideRoles,
  verifyUsesVersionNotTarget,
  knownTemplatesInRoles,
];

/**
 * Rules a plan meets to start a run that came after runs began to keep their normalized plan in their history
 * (patch plan-normalized). A run from before validates its plan again in the workflow at every replay, without these,
 * so it replays as it started.
 */
export const START_RULES: readonly PlanRule[] = [databaseOverSshAsksUnderWay];
