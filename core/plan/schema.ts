/**
 * The upgrade plan's schema: every part of a plan as a zod schema (from planSchemas(), built on first use) with its
 * inferred type under the same name, and the pure validator. The cross-field rules are in rules.ts, the templates in
 * render.ts. Reading the file lives in client/readPlan.ts; a run validates its raw input again with validatePlan, in
 * the normalizePlan local activity (runs started before plans were normalized: in workflow code).
 */
import { z } from 'zod';
import { checksumPatternProblem } from '../checksum';
import { parseHostKeyPin } from '../hostKeys';
import { parseSecretRef } from '../secrets';
import { HOST_KINDS, HOST_STEPS, type HostStepName } from './hosts';
import { isReservedName, reservedNameMessage } from './names';
import { checkPlanRules, startRuleIssues } from './rules';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Node timers and Temporal intervals take at most 2^31-1 ms (about 24.8 days). */
const MAX_DURATION_MS = 2 ** 31 - 1;

export const Duration = z
  .string()
  .regex(DURATION, 'expected a duration such as "500ms", "30s", "5m", "2h" or "3d"')
  .refine((text) => {
    if (!DURATION.test(text)) return true; // the regex above already reports it
    const ms = durationMs(text);
    return ms > 0 && ms <= MAX_DURATION_MS;
  }, 'a duration must be more than 0 and at most 24d');
export type Duration = z.infer<typeof Duration>;

export function durationMs(duration: Duration): number {
  const match = DURATION.exec(duration);
  if (!match) throw new Error(`not a duration: ${duration}`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/*
 * Length caps. Each is far above any real value, so a plan that reaches one was generated wrong or is hostile; it is
 * refused at the field's path before any other check or rule reads the text (abort), which keeps validation linear.
 * - MAX_NAME, ids, versions, names, addresses, host key pins: a host's id is its address by default, and a DNS
 *   name runs to 253.
 * - MAX_COMMAND, commands, undos and the templated texts of probes: Windows' cmd.exe refuses a command line over
 *   8,191 characters, and common HTTP servers take about 8 KB for a URL or a header.
 * - MAX_TEXT, instructions, descriptions, follow-ups, paths: a few paragraphs for people; Linux's PATH_MAX is 4,096.
 */
/** A plan's gate names a group of the worker's trust file as `group:NAME`. */
export const GROUP_PREFIX = 'group:';

const MAX_NAME = 253;
const MAX_COMMAND = 8_192;
const MAX_TEXT = 4_096;

/** A string of at most `max` characters; a longer one is refused with its length and nothing else checks it. */
function capped(max: number) {
  return z.string().max(max, { abort: true, error: (issue) => `too long: ${String((issue.input as string).length)} characters, at most ${max}` });
}

/** Ids name hosts, roles and sites, which code keys records by: names every object already has are refused (names.ts). */
function notReserved(name: string, ctx: z.RefinementCtx): void {
  if (isReservedName(name)) ctx.addIssue({ code: 'custom', message: reservedNameMessage(name), continue: false });
}


/** A record key that is a reserved name (names.ts), refused at its own path and before the record is parsed. */
function refuseReservedKeys(input: unknown, ctx: z.RefinementCtx): void {
  if (typeof input !== 'object' || input === null) return;
  for (const key of Object.keys(input)) {
    if (isReservedName(key)) ctx.addIssue({ code: 'custom', path: [key], message: reservedNameMessage(key), continue: false });
  }
}

/**
 * A record whose keys the plan names. Its keys are checked on the raw input, because zod drops an own `__proto__`
 * key (JSON.parse and the YAML parser both make one) without a word. A record with a reserved key reports only that
 * until it is renamed, and the cross-field rules wait for it, as they do for any record whose key is invalid.
 */
function namedRecord<K extends z.core.$ZodRecordKey, V extends z.core.SomeType>(key: K, value: V) {
  return z.unknown().superRefine(refuseReservedKeys).pipe(z.record(key, value));
}

export const RetryPolicy = z
  .strictObject({
    maxAttempts: z.int().min(1).max(100).default(3),
    initialInterval: Duration.default('1s'),
    backoff: z.number().min(1).max(10).default(2),
    maxInterval: Duration.default('1m'),
  })
  .refine((retry) => !DURATION.test(retry.initialInterval) || !DURATION.test(retry.maxInterval) || durationMs(retry.maxInterval) >= durationMs(retry.initialInterval), {
    path: ['maxInterval'],
    message: 'maxInterval must be at least initialInterval',
  });
export type RetryPolicy = z.infer<typeof RetryPolicy>;

export const GATE_NAMES = ['beforeOffline', 'beforeRehearsal', 'beforeSchemaUpgrade', 'beforeEachBatch', 'beforeOnline'] as const;
export type GateName = (typeof GATE_NAMES)[number];

/** The length caps a run's plan is held to (above). Runs started before the caps get none: they replay as they ran. */
export interface PlanLimits {
  name: number;
  command: number;
  text: number;
}
const LIMITS: PlanLimits = { name: MAX_NAME, command: MAX_COMMAND, text: MAX_TEXT };
const NO_LIMITS: PlanLimits = { name: Infinity, command: Infinity, text: Infinity };

/** Ids, versions, commands, probes and roles, held to `limits`. */
function stepSchemas(limits: PlanLimits) {
  /** Ids end up inside shell commands through templates, so they are restricted to characters that need no quoting. */
  const SafeId = capped(limits.name)
    .superRefine(notReserved)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" and "-" only');
  const Version = capped(limits.name).regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'a version uses letters, digits, ".", "_", "+" and "-" only');


  const Command = z.strictObject({
    /** Shell command run on the host by its transport. Templates: {{host}} {{fleet}} {{source}} {{target}} {{version}} {{backup}} {{database}}. */
    run: capped(limits.command).min(1),
    timeout: Duration.default('5m'),
    retry: RetryPolicy.prefault({}),
    /** What reverses this step on the host, where something does. Recorded when the step completes. */
    undo: capped(limits.command).min(1).optional(),
    /** For verify steps: a required check can never be skipped by the operator. */
    required: z.boolean().default(true),
    /** Keep this step's output in the run's record (e.g. an installer's package validation report). */
    record: z.boolean().default(false),
    /**
     * Most hosts one activity runs this step on, instead of execution.batchSize: a long installer may run one host per
     * activity, so its timeout and heartbeat are per host (README, "How host steps run").
     */
    batchSize: z.int().min(1).max(2000).optional(),
  });

  /** A secret named by reference, never its value: `env:NAME` or `file:/absolute/path` on the worker. */
  const SecretRefText = capped(limits.text).superRefine((text, ctx) => {
    const parsed = parseSecretRef(text);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
  });

  const HostKeyPinText = capped(limits.name).superRefine((text, ctx) => {
    const parsed = parseHostKeyPin(text);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
  });

  const probeTiming = {
    /** How long to keep trying before the check counts as failed (at most the step's timeout). */
    deadline: Duration.default('1m'),
    /** Pause between tries. */
    interval: Duration.default('2s'),
  };
  const HttpStatus = z.int().min(100).max(599);

  /** A health probe run by the worker itself instead of a command on the host, retried until its deadline. */
  const Probe = z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('http'),
      /** Templates as in commands, {{secret:...}} included. */
      url: capped(limits.command).regex(/^https?:\/\/[^/\s]+/, 'an http probe needs an http:// or https:// URL'),
      method: z.enum(['GET', 'HEAD', 'POST']).default('GET'),
      headers: namedRecord(capped(limits.name).regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not a header name'), capped(limits.command)).default({}),
      /** The status (or one of the statuses) that counts as healthy. */
      status: z.union([HttpStatus, z.array(HttpStatus).min(1)]).default(200),
      /** Fields of the JSON body that must have these values; keys are dotted paths (`checks.db.state`, `items.0.id`). */
      json: namedRecord(capped(limits.text).min(1), z.union([capped(limits.command), z.number(), z.boolean(), z.null()])).optional(),
      /** A CA certificate file (PEM) on the worker, trusted in addition to the system's. */
      ca: capped(limits.text).regex(/^\//, 'ca is the absolute path of a PEM file on the worker').optional(),
      /** TLS certificates are verified unless this says otherwise, explicitly. */
      insecureSkipTlsVerify: z.boolean().default(false),
      ...probeTiming,
    }),
    z.strictObject({
      kind: z.literal('tcp'),
      address: capped(limits.command).min(1),
      port: z.int().min(1).max(65535),
      ...probeTiming,
    }),
  ]);

  /** A command that only asks the database something: what it prints last is the answer. */
  const DatabaseQuery = z.strictObject({ run: capped(limits.command).min(1), timeout: Duration.default('1m') });

  /**
   * A backup or restore. `finished` prints, as its last line, how many times this one has finished (SQL Server's
   * msdb history: 0 when never): a retry after a lost worker, once nothing runs any more (`underWay`), asks it, and
   * takes the earlier attempt's backup or restore instead of running it again.
   */
  const DatabaseWrite = Command.extend({ finished: DatabaseQuery.optional() });

  /** A verify step: a command on the host (`run`), or a health probe from the worker (`probe`). */
  const VerifyCommand = Command.extend({
    run: capped(limits.command).min(1).optional(),
    probe: Probe.optional(),
  }).superRefine((step, ctx) => {
    if ((step.run === undefined) === (step.probe === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'a verify step has either run (a command on the host) or probe (http or tcp), exactly one' });
    }
    if (step.probe && DURATION.test(step.probe.deadline) && DURATION.test(step.timeout) && durationMs(step.probe.deadline) > durationMs(step.timeout)) {
      ctx.addIssue({ code: 'custom', path: ['probe', 'deadline'], message: `the probe's deadline (${step.probe.deadline}) is longer than the step's timeout (${step.timeout})` });
    }
  });

  const RoleSteps = z.strictObject({
    ...Object.fromEntries(HOST_STEPS.map((step) => [step, Command.optional()])),
    verify: VerifyCommand.optional(),
  } as { [K in Exclude<HostStepName, 'verify'>]: z.ZodOptional<typeof Command> } & { verify: z.ZodOptional<typeof VerifyCommand> });

  const Role = z.strictObject({
    description: capped(limits.text).optional(),
    /**
     * What the role's hosts are, where the procedures tell kinds apart: which may create or upgrade the shared
     * database (rules.ts), and which steps each has (a console has no service to drain or stop).
     */
    kind: z.enum(HOST_KINDS).optional(),
    /** Whether the operator may skip a failed host of this role and go on without it (never the DB owner). */
    allowSkip: z.boolean().default(false),
    steps: RoleSteps,
  });

  return { SafeId, Version, Command, DatabaseQuery, DatabaseWrite, SecretRefText, HostKeyPinText, Probe, VerifyCommand, Role };
}

/** How hosts are reached, the hosts, and the gates, held to `limits`. */
function reachSchemas(limits: PlanLimits, { SafeId, SecretRefText, HostKeyPinText }: ReturnType<typeof stepSchemas>) {
  const LocalTransport = z.strictObject({ kind: z.literal('local') });
  /** How to log in over ssh, whichever host: a fleet's transport has these, and each host adds its address. */
  const sshLogin = {
    kind: z.literal('ssh'),
    port: z.int().min(1).max(65535).default(22),
    user: capped(limits.name).min(1),
    /** The private key, by reference (file:/path or env:NAME). Without it, the worker's SSH agent (SSH_AUTH_SOCK). */
    key: SecretRefText.optional(),
    /** The key's passphrase, by reference, when the key is encrypted. */
    passphrase: SecretRefText.optional(),
    /**
     * The host key pinned by its fingerprint, as `ssh-keygen -lf` prints it, best after its key type
     * (`ssh-rsa SHA256:...`): one pin or a list, any of which the host may present (core/hostKeys.ts).
     */
    hostKey: z.union([HostKeyPinText, z.array(HostKeyPinText).min(1)]).optional(),
    /** Without hostKey: the known_hosts file on the worker that must list the host (default ~/.ssh/known_hosts). */
    knownHosts: capped(limits.text).regex(/^[/~]/, 'knownHosts is an absolute path on the worker').optional(),
  };
  function checkSshLogin(ssh: { passphrase?: string; key?: string; hostKey?: unknown; knownHosts?: string }, ctx: z.RefinementCtx): void {
    if (ssh.passphrase && !ssh.key) ctx.addIssue({ code: 'custom', path: ['passphrase'], message: 'a passphrase needs a key (the agent holds its keys decrypted)' });
    if (ssh.hostKey && ssh.knownHosts) ctx.addIssue({ code: 'custom', path: ['knownHosts'], message: 'pin the host key one way: hostKey or knownHosts, not both' });
  }

  const Transport = z.discriminatedUnion('kind', [LocalTransport, z.strictObject({ ...sshLogin, address: capped(limits.name).min(1) }).superRefine(checkSshLogin)]);

  /**
   * The transport of every host that names none, as `transport:` at the plan's top: hosts then give only their
   * `address` (by default their id), which keeps a plan of thousands of hosts small (it is the run's input, and
   * Temporal refuses inputs over 2 MB).
   */
  const FleetTransport = z.discriminatedUnion('kind', [LocalTransport, z.strictObject(sshLogin).superRefine(checkSshLogin)]);

  const Host = z.strictObject({
    id: SafeId,
    roles: z.array(SafeId).min(1),
    /** This host's own transport; without it, the plan's `transport`. */
    transport: Transport.optional(),
    /** Where the plan's ssh transport reaches this host (a name or an IP); default: its id. */
    address: capped(limits.name).min(1).optional(),
    /** Hosts of a site run their steps on the site's own task queue, served by a worker inside that network. */
    site: SafeId.optional(),
  });

  const Gate = z
    .strictObject({
      instructions: capped(limits.text).default('Check the plan and the fleet, then approve.'),
      /**
       * Who may approve: names, or `group:NAME` for a group of the worker's trust file. Empty means whoever the trust
       * policy allows (anyone, where it accepts names).
       */
      approvers: z.array(capped(limits.name).trim().min(1)).default([]),
      /** How many distinct approvers are needed. */
      quorum: z.int().min(1).default(1),
      /** How long the gate waits; when it expires the gate counts as rejected. */
      timeout: Duration.optional(),
    })
    .superRefine((gate, ctx) => {
      const distinct = new Set(gate.approvers).size;
      // A group's members are the worker's to say: only a list of names alone can be checked here.
      const namesOnly = gate.approvers.every((approver) => !approver.startsWith(GROUP_PREFIX));
      if (namesOnly && distinct > 0 && gate.quorum > distinct) {
        ctx.addIssue({ code: 'custom', path: ['quorum'], message: `a quorum of ${gate.quorum} can never be reached by ${distinct} distinct approver(s)` });
      }
    });


  return { Transport, FleetTransport, Host, Gate };
}

/** What a run tells people who are not at the terminal, and when. */
export const NOTIFY_EVENTS = ['gate-opened', 'operator-needed', 'completed', 'rolled-back', 'failed', 'rejected'] as const;
export type NotifyEventName = (typeof NOTIFY_EVENTS)[number];
/** Far above any real need (a team chat, an incident tool, a ticket): each event is one activity per target. */
const MAX_NOTIFY_TARGETS = 20;

/** Webhooks the run posts its events to, with the ids and references of `stepSchemas`. */
function notifySchemas({ SafeId, SecretRefText }: ReturnType<typeof stepSchemas>) {
  const NotifyTarget = z.strictObject({
    name: SafeId,
    /** The webhook's URL by reference (env:NAME or file:/path on the worker): a Slack webhook URL is a credential. */
    url: SecretRefText,
    /** `json`: Cutover's own body; `slack`: text and blocks, as Slack's incoming webhooks (and Mattermost's) take. */
    format: z.enum(['json', 'slack']).default('json'),
    /** Which events this target hears about: all of them unless it names some. */
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).default([...NOTIFY_EVENTS]),
  });
  const Notify = z
    .array(NotifyTarget)
    .max(MAX_NOTIFY_TARGETS, `at most ${MAX_NOTIFY_TARGETS} notify targets`)
    .superRefine((targets, ctx) => {
      const seen = new Set<string>();
      targets.forEach((target, index) => {
        if (seen.has(target.name)) ctx.addIssue({ code: 'custom', path: [index, 'name'], message: `notify target "${target.name}" is named twice: each target has its own name, as the status reports it` });
        seen.add(target.name);
      });
    });
  return { NotifyTarget, Notify };
}

/** Every schema of the plan, held to `limits`: one set for today's runs, one for runs from before the caps. */
function buildPlanSchemas(limits: PlanLimits) {
  const steps = stepSchemas(limits);
  const reach = reachSchemas(limits, steps);
  const { SafeId, Version, Command, DatabaseQuery, DatabaseWrite, Role } = steps;
  const { FleetTransport, Host, Gate } = reach;
  const { Notify } = notifySchemas(steps);
  /** The plan's fields, each checked on its own; the cross-field rules (rules.ts) are given the result. */
  const PlanShape = z.strictObject({
    fleet: SafeId,
    product: capped(limits.text).optional(),
    source: Version,
    target: Version,
    /** The vendor's upgrade path: for each target, the versions it may be installed over. */
    upgradePaths: namedRecord(Version, z.array(Version).min(1)),
    database: z.strictObject({
      /**
       * How the upgrade treats the shared database, and so how a rollback undoes it (rules.ts, core/rollback.ts).
       * `in-place` (App-V): the DB owner's setup upgrades it; back it up first, restore it on rollback.
       * `new-database` (Dynamics GP web components): the DB owner's setup creates a new one (`name`) and leaves the
       * old one (`previous`) intact; a rollback points the hosts back at the old one and reinstalls the old version.
       */
      strategy: z.enum(['in-place', 'new-database']).default('in-place'),
      /** The database after the upgrade: the one upgraded in place, or the new one. */
      name: SafeId,
      /** new-database: the database the hosts use before the upgrade, and again after a rollback. */
      previous: SafeId.optional(),
      /** Host whose transport runs the database commands; defaults to the DB-owning host. */
      host: SafeId.optional(),
      /** in-place: required. */
      backup: DatabaseWrite.optional(),
      /**
       * Reads this run's backup back (SQL Server: RESTORE VERIFYONLY ... WITH CHECKSUM) and prints the checksum of its
       * content as its last output line, which must equal the checksum taken before the backup: run right after the
       * backup, before the schema gate, so a backup that cannot be restored stops the run before anything changes.
       */
      verifyBackup: Command.optional(),
      /** in-place: required; new-database has none, since the old database is never changed. */
      restore: DatabaseWrite.optional(),
      verify: Command,
      /** Prints the database's content checksum as its last output line. in-place: required. */
      checksum: Command.optional(),
      /** What a checksum looks like (a regular expression); default: a hex digest or a whole number (core/checksum.ts). */
      checksumPattern: capped(limits.name)
        .superRefine((pattern, ctx) => {
          const problem = checksumPatternProblem(pattern);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
      /** Optional rehearsal: the schema upgrade tried on a copy of this run's backup (on a test server) first. */
      rehearse: Command.optional(),
      /**
       * Prints, as its last output line, how many backups or restores of the database run now: 0 when none (SQL
       * Server lists them in sys.dm_exec_requests). Every backup and restore asks it first and waits while it is not
       * 0, so one whose worker was lost, or one from another machine, is waited for instead of joined by a second.
       * Required where the database host is reached over ssh, whose commands the worker keeps no journal of (rules.ts).
       */
      underWay: DatabaseQuery.optional(),
    }),
    /** Checked in preflight, before anything changes: each a check command or a person's confirmation. */
    prerequisites: z
      .array(
        z.union([
          z.strictObject({ name: SafeId, check: Command, host: SafeId.optional() }),
          z.strictObject({ name: SafeId, confirm: Gate }),
        ]),
      )
      .default([]),
    roles: namedRecord(SafeId, Role),
    transport: FleetTransport.default({ kind: 'local' }),
    hosts: z.array(Host).min(1),
    gates: z
      .strictObject({
        beforeOffline: Gate.prefault({}),
        beforeSchemaUpgrade: Gate.optional(),
        /** Before the rehearsal of the schema upgrade (database.rehearse), when the plan has one. */
        beforeRehearsal: Gate.optional(),
        /** Before each wave of the remaining hosts (a wave is up to execution.batchSize hosts). */
        beforeEachBatch: Gate.optional(),
        beforeOnline: Gate.optional(),
      })
      .prefault({}),
    /** Webhooks told when a gate opens, an operator is needed and how the run ended (core/notify.ts). */
    notify: Notify.optional(),
    /** Steps people do after the run (e.g. on client machines): shown as a checklist in the run's result. */
    followUp: z.array(capped(limits.text).min(1)).default([]),
    execution: z
      .strictObject({
        /** Hosts that run a step at the same time. */
        maxParallel: z.int().min(1).max(1000).default(10),
        /** Most hosts handed to one batch activity; long steps are better with small batches (see README). */
        batchSize: z.int().min(1).max(2000).default(200),
        /** How long a failed step waits for the operator before the run rolls back; forever when absent. */
        operatorTimeout: Duration.optional(),
        /**
         * How many hosts may fail a phase before it starts no new batch and hands over to the operator: a count, or a
         * percentage of the phase's hosts ("5%"). Hosts that failed below it wait for the operator at the phase's end.
         */
        failureThreshold: z
          .union([z.int().min(0), z.string().regex(/^(100|\d{1,2}(\.\d+)?)%$/, 'a percentage such as "5%" (0% to 100%)')])
          .default(0),
        /**
         * A phase over more hosts than this runs them in child workflows of up to this many hosts each (and at least
         * one whole batch), so no workflow history grows with the fleet (README, "Scale").
         */
        hostsPerWorkflow: z.int().min(1).max(10_000).default(1000),
      })
      .prefault({}),
  });


  /** The whole plan: its shape, then the cross-field rules of rules.ts, which run only once the shape is right. */
  const UpgradePlan = PlanShape.superRefine(checkPlanRules);
  return { ...steps, ...reach, ...notifySchemas(steps), PlanShape, UpgradePlan };
}

export type PlanSchemas = ReturnType<typeof buildPlanSchemas>;

const builtSchemas: { capped?: PlanSchemas; uncapped?: PlanSchemas } = {};

/**
 * The plan's schemas, built on first use rather than at import. Workflow code imports this module in every run (the
 * SDK's reusable V8 context gives each workflow run, each child among them, its own instance of every module it
 * loads), and a run started since plans were normalized never validates a plan there: a local activity does. Built at
 * import, both sets cost every run about 13 ms: 0.8 s of the 1.5 s of module loading across the 61 workflow runs of
 * a 10,000-host run (docs/benchmarks.md, *Issue 18 closed*).
 */
export function planSchemas(options: { uncapped?: boolean } = {}): PlanSchemas {
  if (options.uncapped) return (builtSchemas.uncapped ??= buildPlanSchemas(NO_LIMITS));
  return (builtSchemas.capped ??= buildPlanSchemas(LIMITS));
}

export type Command = z.infer<PlanSchemas['Command']>;
export type DatabaseQuery = z.infer<PlanSchemas['DatabaseQuery']>;
export type Probe = z.infer<PlanSchemas['Probe']>;
export type VerifyCommand = z.infer<PlanSchemas['VerifyCommand']>;
/** What a role defines for one host step: verify may be a probe, every other step is a command. */
export type StepCommand = Command | VerifyCommand;
export type Role = z.infer<PlanSchemas['Role']>;
export type Transport = z.infer<PlanSchemas['Transport']>;
export type FleetTransport = z.infer<PlanSchemas['FleetTransport']>;
export type Host = z.infer<PlanSchemas['Host']>;
export type Gate = z.infer<PlanSchemas['Gate']>;
export type NotifyTarget = z.infer<PlanSchemas['NotifyTarget']>;
/** A plan that has the right shape, before the cross-field rules. */
export type ParsedPlan = z.infer<PlanSchemas['PlanShape']>;
export type UpgradePlan = z.infer<PlanSchemas['UpgradePlan']>;

export type PlanResult = { ok: true; plan: UpgradePlan } | { ok: false; message: string; issues: z.core.$ZodIssue[] };

/**
 * Pure: raw JSON in, a plan or its problems with their paths out. Every shape problem is reported in one pass;
 * the cross-field rules (owners, duplicates, version path) run once the shape is right.
 */
export function validatePlan(input: unknown, options: { uncapped?: boolean; asBeforeNormalized?: boolean } = {}): PlanResult {
  const result = planSchemas(options).UpgradePlan.safeParse(input);
  if (!result.success) return refused(result.error);
  // A run from before its plan was normalized replays this validation: it meets the rules it started under.
  const issues = options.asBeforeNormalized ? [] : startRuleIssues(result.data);
  return issues.length === 0 ? { ok: true, plan: result.data } : refused(new z.ZodError(issues));
}

function refused(error: z.ZodError): PlanResult {
  return { ok: false, message: z.prettifyError(error), issues: error.issues };
}

/** The failures a phase of `hosts` hosts tolerates before it starts no new batch. */
export function failureLimit(threshold: UpgradePlan['execution']['failureThreshold'], hosts: number): number {
  if (typeof threshold === 'number') return threshold;
  return Math.floor((hosts * Number(threshold.slice(0, -1))) / 100);
}
