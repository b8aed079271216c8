/**
 * The commands people decide with: approve and reject at a gate; retry, skip and rollback at a failure; and the keys
 * and tokens that prove who decided. With a key (`--key FILE` or CUTOVER_KEY) a decision is signed; without one it
 * goes by the name `--as` gives, which only a lab or demo worker's trust policy accepts.
 */
import type { Client } from '@temporalio/client';
import { type Command, InvalidArgumentError } from 'commander';
import { UserError } from '../core/errors';
import { durationMs } from '../core/plan';
import type { ApprovalInput, OperatorInput, SignedInput } from '../core/inputs';
import type { RunStatus } from '../core/status';
import type { Decision } from '../core/trust';
import { gateName } from './options';
import { formatStatus } from './format';
import { onDemand } from './onDemand';

/** What a decision sends: a token, or the name (and for a skip, the hosts). */
type DecisionPayload<D extends Decision> = SignedInput | (D extends 'approve' | 'reject' ? ApprovalInput : OperatorInput);

interface DecisionOptions {
  as?: string;
  key?: string;
  gate?: string;
  host?: string[];
  comment?: string;
  valid: string;
}

function validFor(value: string): string {
  if (!/^\d+(ms|s|m|h)$/.test(value)) throw new InvalidArgumentError('expected a duration such as 10m or 1h');
  return value;
}

function withDecisionOptions(command: Command, hostHelp: string): Command {
  return command
    .option('--as <name>', 'who decides, by name: accepted only where the worker\'s trust policy accepts names (lab, demo)')
    .option('--key <file>', 'sign the decision with this private key (default: CUTOVER_KEY)')
    .option('--host <id...>', hostHelp)
    .option('--comment <text>', 'recorded with the decision')
    .option('--valid <duration>', 'how long a signed decision stays good', validFor, '15m');
}

/** The payload of a decision: a signed token when there is a key, else the name. */
async function payload<D extends Decision>(client: Client, run: string, decision: D, opts: DecisionOptions): Promise<DecisionPayload<D>> {
  const keyFile = opts.key ?? process.env.CUTOVER_KEY;
  if (!keyFile) {
    if (!opts.as) throw new UserError(`say who decides: --key FILE to sign (or CUTOVER_KEY), or --as NAME where the worker accepts names`);
    const operator = decision === 'retry' || decision === 'skip' || decision === 'rollback';
    const hosts = opts.host?.length ? { hosts: opts.host } : {};
    const comment = opts.comment ? { comment: opts.comment } : {};
    return (operator ? { operator: opts.as, ...hosts, ...comment } : { approver: opts.as, ...(opts.gate ? { gate: opts.gate } : {}), ...comment }) as DecisionPayload<D>;
  }
  const workflowId = onDemand.runs().runId(run);
  const status = await onDemand.runs().getStatus(client, workflowId);
  const { makeToken, readKey } = onDemand.signing();
  const request = { decision, keyText: readKey(keyFile), validForMs: durationMs(opts.valid), ...pick(opts) };
  return { token: await makeToken(client, workflowId, status, request) };
}

/** One connection for the whole command: the token's questions to the run and the decision itself. */
async function withClient<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = await onDemand.connection().connectClient();
  try {
    return await work(client);
  } finally {
    await client.connection.close();
  }
}

function pick(opts: DecisionOptions): { gate?: string; hosts?: string[]; comment?: string } {
  return { ...(opts.gate ? { gate: opts.gate } : {}), ...(opts.host?.length ? { hosts: opts.host } : {}), ...(opts.comment ? { comment: opts.comment } : {}) };
}

const OPERATOR_HELP = {
  retry: 'run the failed step again on the hosts that failed',
  skip: 'go on without failed hosts (only where the plan allows; never the DB owner); with several failed, the rest still wait for a decision',
  rollback: 'roll the fleet back: stop services, restore the database, return hosts to the source version',
} as const;

function sendTo(run: string, decision: Decision, opts: DecisionOptions): Promise<RunStatus> {
  const { decide, operate } = onDemand.runs();
  return withClient(async (client) => {
    if (decision === 'approve' || decision === 'reject') return decide(client, run, decision, await payload(client, run, decision, opts));
    return operate(client, run, decision, await payload(client, run, decision, opts));
  });
}

async function send(run: string, decision: Decision, opts: DecisionOptions): Promise<void> {
  const status = await sendTo(run, decision, opts);
  const who = status.decisions.at(-1);
  const name = `${who?.approver ?? opts.as}${who?.key ? ` (key ${who.key})` : ''}`;
  console.log(decision === 'approve' ? `approved by ${name}` : decision === 'reject' ? `rejected by ${name}` : `${decision} accepted from ${name}`);
  console.log(formatStatus(onDemand.runs().runId(run), status));
}

export function registerDecisionCommands(program: Command): void {
  for (const kind of ['approve', 'reject'] as const) {
    withDecisionOptions(program.command(`${kind} <run>`).description(`${kind} the pending gate of a run; refused with the reason if you may not`), 'ignored')
      .option('--gate <gate>', 'the gate you mean to decide (refused if another is pending)', gateName)
      .action((run: string, opts: DecisionOptions) => send(run, kind, opts));
  }
  for (const action of ['retry', 'skip', 'rollback'] as const) {
    const hostHelp = action === 'skip' ? 'the failed host(s) to skip (required; several: --host a b, or --host a --host b)' : 'ignored';
    withDecisionOptions(program.command(`${action} <run>`).description(`guided failure: ${OPERATOR_HELP[action]}`), hostHelp).action((run: string, opts: DecisionOptions) =>
      send(run, action, opts),
    );
  }
}

export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('your signing keys: a decision signed with one proves who took it');
  keys
    .command('new')
    .description('make a key pair: the private key (mode 0600) and the public line to add to the worker\'s trust file')
    .requiredOption('--as <name>', 'your approver name, as the trust file lists it')
    .option('--file <path>', 'where to write the private key (default: $CUTOVER_KEY_DIR or ~/.cutover/keys, NAME.key)')
    .action((opts: { as: string; file?: string }) => {
      const key = onDemand.signing().writeNewKey(opts.as, opts.file);
      console.log(`private key: ${key.file} (keep it; sign with --key ${key.file} or CUTOVER_KEY)`);
      console.log(`fingerprint: ${key.fingerprint}`);
      console.log(`add to the trust file, under approvers (name: ${opts.as}), keys:\n${key.publicKeyLine}`);
    });
  program
    .command('token <decision> <run>')
    .description('print a signed decision to paste into the Web UI: Send a Signal with the decision\'s name (approve, reject, retry, skip, rollback) and this input')
    .option('--key <file>', 'the private key (default: CUTOVER_KEY)')
    .option('--gate <gate>', 'the gate you mean to decide', gateName)
    .option('--host <id...>', 'for skip: the failed host(s)')
    .option('--comment <text>', 'recorded with the decision')
    .option('--valid <duration>', 'how long the token stays good', validFor, '15m')
    .action(async (decision: string, run: string, opts: DecisionOptions) => {
      if (!['approve', 'reject', 'retry', 'skip', 'rollback'].includes(decision)) throw new UserError(`no decision ${decision}: approve, reject, retry, skip or rollback`);
      if (!(opts.key ?? process.env.CUTOVER_KEY)) throw new UserError('a token is signed: give --key FILE (or CUTOVER_KEY)');
      console.log(JSON.stringify(await withClient((client) => payload(client, run, decision as Decision, opts))));
    });
}
