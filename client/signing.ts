/**
 * The person's side of signed decisions: a key pair on disk, and a token that decides one opening of one gate (or
 * one failure) of one run and one plan. The run's status names the opening; the plan digest is checked against the
 * run's own input, so a key never signs for a plan its holder has not been shown.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Client } from '@temporalio/client';
import { UserError } from '../core/errors';
import { readUserFile } from './files';
import type { RunStatus } from '../core/status';
import type { UpgradePlan } from '../core/plan';
import { type Decision, GUIDED_FAILURE, newKeyPair, newNonce, parsePrivateKey, planDigest, planOfInput, signPlan, signStatement } from '../core/trust';

/** Where `cutover keys new` writes keys, and where a decision looks for the key of `--as NAME`. */
export function keyDir(): string {
  return process.env.CUTOVER_KEY_DIR ?? join(homedir(), '.cutover', 'keys');
}

export function defaultKeyFile(name: string): string {
  return join(keyDir(), `${name}.key`);
}

/** Writes a new key pair: the private key readable by its owner only; returns the line for the trust file. */
export function writeNewKey(name: string, file = defaultKeyFile(name)): { file: string; publicKeyLine: string; fingerprint: string } {
  if (existsSync(file)) throw new UserError(`${file} exists: a key is never overwritten (move it away first, and revoke it in the trust file if it leaked)`);
  let pair;
  try {
    pair = newKeyPair(new Uint8Array(randomBytes(32)), name);
  } catch (error) {
    throw new UserError(`cannot make a key for ${JSON.stringify(name)}: ${(error as Error).message}`);
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${pair.privateKey}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  writeFileSync(`${file}.pub`, `${pair.publicKeyLine}\n`, { mode: 0o644 });
  return { file, publicKeyLine: pair.publicKeyLine, fingerprint: pair.fingerprint };
}

export function readKey(file: string): string {
  const text = readUserFile(file, 'the key', ' (make one with `cutover keys new --as NAME`)');
  const parsed = parsePrivateKey(text);
  if (!parsed.ok) throw new UserError(`${file}: ${parsed.reason}`);
  return text;
}

/** The plan digest of the run's own input (the plan inside a signed envelope), as the workflow computes it. */
async function inputDigest(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new UserError(`cannot read the input of ${workflowId} from its history`);
  return planDigest(planOfInput(client.options.loadedDataConverter.payloadConverter.fromPayload(payload)).plan);
}

export interface TokenRequest {
  decision: Decision;
  keyText: string;
  gate?: string;
  hosts?: string[];
  comment?: string;
  /** How long the token is good for: a decision is meant for now, not for a later opening. */
  validForMs: number;
}

/** Where the run waits for this decision: the pending gate or the failure, and which opening of it. */
function decisionPoint(workflowId: string, status: RunStatus, request: TokenRequest): { gate: string; opening: number } {
  const operator = request.decision === 'retry' || request.decision === 'skip' || request.decision === 'rollback';
  const waiting = operator ? status.awaitingOperator : status.pendingGate;
  if (!waiting) throw new UserError(operator ? `${workflowId} is not waiting for an operator` : `no gate of ${workflowId} is pending`);
  const gate = operator ? GUIDED_FAILURE : (status.pendingGate?.gate ?? '');
  if (request.gate && request.gate !== gate) throw new UserError(`gate ${request.gate} is not pending (the pending gate is ${gate})`);
  if (waiting.opening === undefined) throw new UserError(`${workflowId} was started before signed decisions: decide by name (--as NAME, without a key)`);
  return { gate, opening: waiting.opening };
}

/** A signed token for the decision the run waits for now. */
export async function makeToken(client: Client, workflowId: string, status: RunStatus, request: TokenRequest): Promise<string> {
  const point = decisionPoint(workflowId, status, request);
  if (!status.firstRunId || !status.planDigest) throw new UserError(`${workflowId} was started before signed decisions: decide by name (--as NAME, without a key)`);
  const digest = await inputDigest(client, workflowId);
  if (digest !== status.planDigest) throw new UserError(`${workflowId} reports plan digest ${status.planDigest}, but its input hashes to ${digest}: not signing`);
  try {
    return signStatement(
      {
        workflowId,
        firstRunId: status.firstRunId,
        ...point,
        decision: request.decision,
        ...(request.hosts?.length ? { hosts: request.hosts } : {}),
        ...(request.comment ? { comment: request.comment } : {}),
        planDigest: digest,
        expiresAt: new Date(Date.now() + request.validForMs).toISOString(),
        nonce: newNonce(new Uint8Array(randomBytes(18))),
      },
      request.keyText,
    );
  } catch (error) {
    throw new UserError(`cannot sign: ${(error as Error).message}`);
  }
}


/**
 * The plan as a run's input, signed by its author: `{plan, signature}`. The digest is over the plan as JSON, which
 * is what the workflow receives.
 */
export function signedPlan(plan: UpgradePlan, keyText: string): { plan: unknown; signature: string } {
  const asSent: unknown = JSON.parse(JSON.stringify(plan));
  try {
    return { plan: asSent, signature: signPlan(plan.fleet, planDigest(asSent), keyText, new Date().toISOString()) };
  } catch (error) {
    throw new UserError(`cannot sign the plan: ${(error as Error).message}`);
  }
}
