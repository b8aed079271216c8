/** The `cutover` command. Thin: each subcommand parses flags and calls into core/, client/, lab/ or stack/. */
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { UserError } from '../core/errors';
import { labDir, labDown, labFault, labOps, labStatus, labUp, type FaultMode } from '../lab/lab';
import { formatStatus } from './format';
import { readPlan } from './readPlan';
import { registerDecisionCommands, registerKeyCommands } from './decisionCommands';
import { onDemand } from './onDemand';
import type { CodecServerFlags } from '../codec/serve';

const json = (value: unknown) => console.log(JSON.stringify(value, null, 2));

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** `HOST=VERSION`, a host's own starting version in a fresh lab. */
const HostVersion = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*=[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'expected HOST=VERSION, e.g. appv-02=4.1');

function hostVersion(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const parsed = HostVersion.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(z.prettifyError(parsed.error));
  const [host = '', version = ''] = parsed.data.split('=');
  return { ...previous, [host]: version };
}

export function buildProgram(): Command {
  const program = new Command('cutover')
    .description('Durable, approval-gated upgrades of server fleets that share one database.')
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(`cutover: ${text.replace(/^error: /, '')}`) });

  program
    .command('validate <file>')
    .description('check a plan (YAML or JSON) and print every problem with its path')
    .action((file: string) => {
      const plan = readPlan(file);
      console.log(`${file}: valid plan for fleet ${plan.fleet}, ${plan.hosts.length} hosts, ${plan.source} → ${plan.target}`);
    });

  program
    .command('plan <file>')
    .description('preview the ordered steps per host, without touching anything')
    .option('--json', 'print the computed run plan as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const plan = readPlan(file);
      const { planRun, backupNamePreview } = onDemand.planner();
      const run = planRun(plan, { backup: backupNamePreview(plan.fleet, plan.target) });
      if (opts.json) json(run);
      else console.log(onDemand.preview().formatPreview(run, plan));
    });

  program
    .command('start <file>')
    .description('start an upgrade run for the plan (one open run per fleet)')
    .option('--wait', 'wait for the run to finish')
    .option('--key <file>', "sign the plan as its author (default: CUTOVER_KEY); a worker whose trust file requires it runs signed plans only")
    .action(async (file: string, opts: { wait?: boolean; key?: string }) => {
      const plan = readPlan(file);
      const keyFile = opts.key ?? process.env.CUTOVER_KEY;
      const { signedPlan, readKey } = onDemand.signing();
      const signed = keyFile ? signedPlan(plan, readKey(keyFile)) : undefined;
      const { connectClient, taskQueue } = onDemand.connection();
      const client = await connectClient();
      const handle = await onDemand.runs().startRun(client, plan, taskQueue(), signed);
      console.log(`started ${handle.workflowId} (run ${handle.firstExecutionRunId}) on task queue ${taskQueue()}`);
      console.log(`follow it: cutover status ${handle.workflowId}; approve: cutover approve ${handle.workflowId} --as NAME`);
      if (opts.wait) {
        try {
          json(await handle.result());
        } catch (error) {
          if (error instanceof onDemand.temporalClient().WorkflowFailedError) throw new UserError(`${handle.workflowId} ended without completing: ${error.cause?.message ?? error.message}`);
          throw error;
        }
      }
      await client.connection.close();
    });

  program
    .command('sign <file>')
    .description('print the plan signed by you, as the input to paste into the Web UI\'s Start Workflow')
    .option('--key <file>', 'your private key (default: CUTOVER_KEY)')
    .action((file: string, opts: { key?: string }) => {
      const keyFile = opts.key ?? process.env.CUTOVER_KEY;
      if (!keyFile) throw new UserError('a plan is signed with a key: give --key FILE (or CUTOVER_KEY)');
      const { signedPlan, readKey } = onDemand.signing();
      console.log(JSON.stringify(signedPlan(readPlan(file), readKey(keyFile))));
    });

  program
    .command('status <run>')
    .description('where a run is and what it waits for (run = workflow id or fleet)')
    .option('--json', 'print the status query result as JSON')
    .action(async (run: string, opts: { json?: boolean }) => {
      const client = await onDemand.connection().connectClient();
      const { getStatus, runId } = onDemand.runs();
      const status = await getStatus(client, run);
      if (opts.json) json(status);
      else console.log(formatStatus(runId(run), status));
      await client.connection.close();
    });

  program
    .command('watch <run>')
    .description('follow a run live until it ends or waits for a person (exit 0 completed, 2 waiting, 1 ended otherwise)')
    .action(async (run: string) => {
      const client = await onDemand.connection().connectClient();
      const { watchExitCode, watchRun } = onDemand.watch();
      try {
        process.exitCode = watchExitCode(await watchRun(client, run));
      } finally {
        await client.connection.close();
      }
    });

  program
    .command('report <run>')
    .description("a report of a run from its history and its child workflows': HTML, Markdown for a ticket, the SVG timeline (no file: Markdown on stdout)")
    .option('--html <file>', 'write the self-contained HTML report (.html)')
    .option('--md <file>', 'write the Markdown report (.md)')
    .option('--svg <file>', 'write the timeline picture (.svg)')
    .action(async (run: string, opts: Record<string, unknown>) => {
      const { reportOptions, writeReport } = onDemand.report();
      const options = reportOptions(opts);
      const client = await onDemand.connection().connectClient();
      try {
        const written = await writeReport(client, run, options);
        if (written.length) console.error(`report of ${onDemand.runs().runId(run)} written to ${written.join(', ')}`);
      } finally {
        await client.connection.close();
      }
    });

  registerDecisionCommands(program);
  registerKeyCommands(program);

  const lab = program.command('lab').description('the simulated fleet (state in $CUTOVER_LAB_DIR, default .cutover/lab)');
  lab
    .command('up')
    .description('create a fresh lab fleet, replacing any previous one')
    .option('--profile <name>', 'product rules to enforce', 'appv')
    .option('--hosts <n>', 'number of hosts', positiveInt, 4)
    .option('--version <v>', 'starting version of every host (default: the profile source version)')
    .option('--at <host=version>', "a host's own starting version (repeatable), e.g. --at appv-02=4.1", hostVersion)
    .option('--web-service', 'App-V: add a Management Web Service host, appv-ws-01')
    .option('--consoles <n>', 'App-V: add n computers with only the Management Console, appv-console-01 ...', positiveInt)
    .action((opts: { profile: string; hosts: number; version?: string; at?: Record<string, string>; webService?: boolean; consoles?: number }) => {
      const up = labUp(labDir(), {
        profile: opts.profile,
        hosts: opts.hosts,
        ...(opts.version ? { version: opts.version } : {}),
        ...(opts.at ? { versions: opts.at } : {}),
        ...(opts.webService ? { webService: true } : {}),
        ...(opts.consoles ? { consoles: opts.consoles } : {}),
      });
      const own = Object.entries(opts.at ?? {}).map(([host, version]) => `${host} at ${version}`);
      console.log(
        `lab up at ${up.dir}: ${up.hosts.length} ${up.profile.name} hosts (${up.hosts[0]} … ${up.hosts[up.hosts.length - 1]}) at ${opts.version ?? up.profile.source}${own.length ? ` (${own.join(', ')})` : ''}`,
      );
    });
  lab
    .command('status')
    .description("each host's version, services, sessions and online flag; the database schema and checksum")
    .option('--json', 'machine-readable')
    .action((opts: { json?: boolean }) => {
      const status = labStatus(labDir());
      if (opts.json) return json(status);
      console.log(`lab ${status.dir} (${status.profile}): database schema ${status.database.schema}, checksum ${status.database.checksum.slice(0, 16)}…`);
      for (const h of status.hosts) {
        console.log(
          `  ${h.id.padEnd(12)} ${h.version.padEnd(8)} ${Object.entries(h.services).map(([n, s]) => `${n}=${s}`).join(' ')} sessions=${h.sessions} ${h.online ? 'online' : 'offline'}${h.database ? ` database=${h.database}` : ''}`,
        );
      }
    });
  lab
    .command('ops')
    .description('the operation log: sequence, time, host, operation, result')
    .option('--json', 'machine-readable')
    .action((opts: { json?: boolean }) => {
      const ops = labOps(labDir());
      if (opts.json) return json(ops);
      for (const op of ops) console.log(`${String(op.seq).padStart(5)} ${op.time} ${op.host.padEnd(10)} ${op.op.padEnd(28)} ${op.result.padEnd(8)} ${op.message}`);
    });
  lab
    .command('fault <host> <op>')
    .description('make an operation on a host (or "db") fail: N times, always, hang, or clear it')
    .option('--times <n>', 'fail the next n attempts, then succeed', positiveInt)
    .option('--always', 'fail every attempt')
    .option('--hang', 'hang instead of finishing')
    .option('--delay <seconds>', 'take this long, then succeed (a slow step)', positiveInt)
    .option('--clear', 'remove the fault')
    .action((host: string, op: string, opts: { times?: number; always?: boolean; hang?: boolean; delay?: number; clear?: boolean }) => {
      const chosen = [opts.times !== undefined, opts.always, opts.hang, opts.delay !== undefined, opts.clear].filter(Boolean).length;
      if (chosen > 1) throw new UserError('choose one of --times N, --always, --hang, --delay S and --clear');
      const mode: FaultMode = opts.always
        ? 'always'
        : opts.hang
          ? 'hang'
          : opts.clear
            ? 'clear'
            : opts.delay !== undefined
              ? { delaySeconds: opts.delay }
              : { times: opts.times ?? 1 };
      labFault(labDir(), host, op, mode);
      console.log(`fault on ${host} ${op}: ${typeof mode === 'string' ? mode : 'times' in mode ? `fail ${mode.times} time(s)` : `take ${mode.delaySeconds} s`}`);
    });
  lab
    .command('down')
    .description('remove the lab and its state')
    .action(() => {
      labDown(labDir());
      console.log(`lab at ${labDir()} removed`);
    });

  program
    .command('codec-server')
    .description('serve /encode and /decode with the CUTOVER_CODEC_KEYS keys for the Temporal Web UI (its Codec Server setting)')
    .option('--host <host>', 'where to listen', '127.0.0.1')
    .option('--port <port>', 'port to listen on', '8888')
    .option('--origin <url...>', "the Web UI's origin(s) allowed by CORS, e.g. https://cloud.temporal.io", ['http://localhost:8233'])
    .option('--token <ref>', 'the Bearer token(s) a request must carry, by reference: env:CUTOVER_CODEC_... or file:/path (one token a line: an allowlist) (default: CUTOVER_CODEC_SERVER_TOKEN)')
    .option('--jwks <url>', "or: the identity provider's key set, to verify the login a Web UI forwards (with --issuer and --allow)")
    .option('--issuer <iss>', 'the logins\' issuer (with --jwks)')
    .option('--audience <aud>', 'the logins\' audience (with --jwks)')
    .option('--claim <name>', 'the claim naming the person (with --jwks)', 'email')
    .option('--allow <identity...>', 'who may decode (with --jwks): values of --claim')
    .option('--local-ui', 'no token: answer only requests from the allowed origins, on loopback (a Web UI without login, as `cutover dev` runs)')
    .action(async (opts: CodecServerFlags) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- on demand, as below
      const { serveCodec, settingsFromFlags } = require('../codec/serve') as typeof import('../codec/serve');
      await serveCodec(settingsFromFlags(opts));
    });

  program
    .command('worker')
    .description('run a worker (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, CUTOVER_TASK_QUEUE, CUTOVER_SITES, CUTOVER_METRICS_ADDRESS, CUTOVER_LAB=1 for the lab)')
    .option('--site <site...>', "also run the host steps of this site's hosts (its own task queue); repeatable")
    .option('--sites-only', "only the sites' host steps: a worker inside a site's network, without workflows")
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default: CUTOVER_METRICS_ADDRESS)')
    .action(async (opts: { site?: string[]; sitesOnly?: boolean; metrics?: string }) => {
      // Loaded on demand so short commands do not pay for the worker's start-up.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { main, sitesFromEnv } = require('../worker/index') as typeof import('../worker/index');
      if (opts.sitesOnly && !opts.site?.length && sitesFromEnv().length === 0) {
        throw new UserError('--sites-only needs the sites to serve: --site NAME (repeatable) or CUTOVER_SITES=a,b');
      }
      await main({ sites: opts.site ?? [], sitesOnly: Boolean(opts.sitesOnly), ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}) });
    });

  program
    .command('dev')
    .description('bring up the Temporal dev server with the Web UI, a worker and the lab, without starting a run')
    .action(async () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- on demand, as above
      const { dev } = require('../stack/demo') as typeof import('../stack/demo');
      await dev();
    });

  program
    .command('demo')
    .description('bring up the stack and upgrade the lab App-V fleet (what `npm start` runs)')
    .option('--yes', 'approve gates automatically, stop the stack and exit when done')
    .action(async (opts: { yes?: boolean }) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- on demand, as above
      const { demo } = require('../stack/demo') as typeof import('../stack/demo');
      process.exitCode = await demo({ yes: Boolean(opts.yes) });
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (caught) {
    // A codec failure (a key this process lacks) can only come from a command that loaded the codec already.
    const error = caught instanceof UserError ? caught : (onDemand.codec().codecUserError(caught) ?? caught);
    if (error instanceof UserError) {
      console.error(`cutover: ${error.message}`);
      process.exitCode = 1;
    } else {
      console.error('cutover: internal error (please report it):');
      console.error(error);
      process.exitCode = 70;
    }
  }
}
