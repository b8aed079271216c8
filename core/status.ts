/** The public shape of a run, returned by the `status` query. Field names here are a contract with operators' scripts. */
export type { ApprovalInput, OperatorInput } from './inputs';

export const HOST_STATES = ['pending', 'checked', 'drained', 'offline', 'upgraded', 'started', 'verified', 'online', 'failed', 'skipped', 'downgraded', 'rolled-back'] as const;
export type HostState = (typeof HOST_STATES)[number];

export interface HostStatus {
  state: HostState;
  /** The last step that ran on this host. */
  step?: string;
  error?: string;
  outputTail?: string;
}

export interface Decision {
  /** A gate name, "prerequisite:<name>" for a confirmation, or "guided-failure" for an operator's decision. */
  gate: string;
  approver: string;
  decision: 'approve' | 'reject' | 'expired' | OperatorAction;
  host?: string;
  comment?: string;
  /** The fingerprint of the key that signed the decision; absent for a decision by name (lab and demo policies). */
  key?: string;
  /** Workflow time, ISO 8601. */
  at: string;
}

export interface PendingGate {
  /** A gate of the plan, or "prerequisite:<name>" for a confirmation the plan asks for in preflight. */
  gate: string;
  instructions: string;
  approvers: string[];
  quorum: number;
  approvedBy: string[];
  expiresAt?: string;
  /** Which opening of this gate in the run (each wave's beforeEachBatch is a new one): a signed decision names it. */
  opening?: number;
  /** Set when nobody the plan and the trust policy both allow can reach the quorum: the gate can only expire or be rejected. */
  unreachable?: string;
}

/** What undoes a completed step; rollback replays these in reverse. */
export interface UndoRecord {
  phase: string;
  step: string;
  hosts: string[];
  /** Per-host undo commands, or the database backup to restore. */
  undo: { host: string; command: string }[] | { restoreBackup: string; checksum: string };
}

export type OperatorAction = 'retry' | 'skip' | 'rollback';


/** A step used up its retries: the run waits for the operator instead of failing. */
export interface AwaitingOperator {
  phase: string;
  step?: string;
  rollingBack: boolean;
  reason: string;
  hosts: { host: string; error: string; outputTail: string }[];
  options: OperatorAction[];
  skippable: string[];
  expiresAt?: string;
  /** Which failure of the run this is: a signed retry, skip or rollback names it. */
  opening?: number;
}

export interface StepRecord {
  step: string;
  host: string;
  output: string;
}

export interface UndoSummary {
  phase: string;
  step: string;
  hosts: number;
  restoreBackup?: string;
}

export interface RunStatus {
  fleet: string;
  source: string;
  target: string;
  phase: string;
  pendingGate?: PendingGate;
  awaitingOperator?: AwaitingOperator;
  hosts: Record<string, HostStatus>;
  hostCounts: Partial<Record<HostState, number>>;
  /** Each host's version as preflight found it: where a rollback returns it (runs from before: all at `source`). */
  versions?: Record<string, string>;
  decisions: Decision[];
  backup?: { name: string; checksum: string };
  /** Output the plan asked to keep (steps with record: true, the rehearsal, prerequisite checks). */
  records: StepRecord[];
  /** Outputs to record that came once the record's budget was spent (core/budget.ts): not kept. */
  recordsNotKept?: number;
  /**
   * What rollback would undo, step by step. The commands themselves stay inside the workflow: with thousands of
   * hosts they would make the query answer larger than Temporal lets it be.
   */
  undoLog: UndoSummary[];
  failure?: string;
  /**
   * Child workflows under way (phases over many hosts or batches run in them): their finished batches are not yet
   * in `hosts`. Each answers the `progress` query; `cutover status` lays it over this status.
   */
  children?: RunningChild[];
  /** Batches of host steps under way in this workflow (`cutover watch` shows them); a few host ids each, and the count. */
  batches?: RunningBatch[];
  /** Signals refused (a payload that does not parse, or a decision not allowed): each is also in the worker's log. */
  refusedSignals?: number;
  /** What a signed decision names besides the gate: this run (its first run id) and the plan it runs. */
  firstRunId?: string;
  planDigest?: string;
  /** The worker's trust policy this run decides by, read once when the run started. */
  trust?: TrustSummary;
  /** Who signed the plan, when it came signed (`cutover start --key`, `cutover sign`). */
  planSignedBy?: { author: string; key: string };
  /** The latest notifications to the plan's `notify` targets (core/notify.ts), for plans that have some. */
  notifications?: NotificationRecord[];
}

/** One event posted to one of the plan's notify targets, and how its delivery went (a failure never stops the run). */
export interface NotificationRecord {
  event: string;
  target: string;
  /** Workflow time the event happened, ISO 8601. */
  at: string;
  state: 'sending' | 'sent' | 'failed';
  /** Why delivery failed, after its retries. */
  error?: string;
}

export interface TrustSummary {
  /** Where the worker read it: a trust file's path, or "lab" for the lab's built-in policy. */
  source: string;
  digest: string;
  /** Whether a decision needs a signed token, or a name is enough (lab and demo policies). */
  decisions: 'signed' | 'by-name';
}

export interface RunningBatch {
  step: string;
  /** The first hosts of the batch (at most RUNNING_BATCH_HOSTS): the status stays small at 10,000 hosts. */
  hosts: string[];
  hostCount: number;
  wave?: number;
}

export const RUNNING_BATCH_HOSTS = 12;

export interface RunningChild {
  workflowId: string;
  phase: string;
  hosts: number;
}


export interface RunResult {
  outcome: 'completed' | 'rejected' | 'rolled-back';
  fleet: string;
  target: string;
  hosts: number;
  backup?: { name: string; checksum: string };
  decisions: Decision[];
  /** Why the run did not complete, when it did not. */
  reason?: string;
  /** The plan's follow-up checklist for people, when the upgrade completed. */
  followUp?: string[];
  records: StepRecord[];
  recordsNotKept?: number;
}

/**
 * The status of a run whose plan is still being normalized (the first moments of a run): what the raw input says of
 * the fleet, if it says it as text, and nothing else. It reads untrusted input, so it only looks.
 */
export function startingStatus(input: unknown): RunStatus {
  const field = (name: string): string => {
    const value = typeof input === 'object' && input !== null && Object.hasOwn(input, name) ? (input as Record<string, unknown>)[name] : undefined;
    return typeof value === 'string' ? value.slice(0, 253) : '';
  };
  return { fleet: field('fleet'), source: field('source'), target: field('target'), phase: 'starting', hosts: {}, hostCounts: {}, decisions: [], records: [], undoLog: [] };
}
