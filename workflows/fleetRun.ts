/**
 * One run's state and the operations on it, as in samples-typescript's safe-message-handlers: the public status, the
 * undo log, the host-steps done and skipped, the records, and the decisions people send. Handlers (handlers.ts) and
 * the phases (phases.ts) call its methods; it decides nothing about the procedure, which the machine does.
 */
import { ApplicationFailure, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Decider, RunTrust } from '../core/authority';
import { transition } from 'xstate';
import { FAILED_TAILS_CHARS, OutputBudget, RECORDS_CHARS, recordedOutputs, tailShare } from '../core/budget';
import { detailsMarkdown } from '../core/details';
import { type UpgradeEvent, type UpgradeSnapshot, isApprovedWithin, upgradeMachine } from '../core/machine';
import { type FailedHost, type HostOutcome, failureSummary, judgeOutcomes } from '../core/outcomes';
import type { UpgradePlan } from '../core/plan';
import type { RunPlan, StepBatch } from '../core/planner';
import type { GateWithin } from '../core/procedure';
import { STATE_AFTER_STEP } from '../core/progress';
import { type Decision, type HostStatus, type OperatorAction, type RunResult, type RunStatus, type RunningBatch, RUNNING_BATCH_HOSTS } from '../core/status';
import { type CountedApproval, approvalCount } from '../core/trust';
import { lastLine } from '../core/text';
import { UndoLog } from '../core/undoLog';
import { FleetAttribute, PhaseAttribute } from './messages';
import { phaseChanged } from './metrics';
import type { Notifier } from './notify';
import type { RunVersions } from './versions';
import { heartbeatTimeoutMs } from '../core/heartbeat';

export type GateOutcome = { approved: true } | { approved: false; reason: string };
/** What the operator chose about a failure, as the event the machine takes. */
export type OperatorChoice = Extract<UpgradeEvent, { type: 'OPERATOR_RETRY' | 'OPERATOR_SKIP' | 'OPERATOR_ROLLBACK' }>;

/** A decision a handler makes while the workflow waits: `await condition(() => pending.made)`, then `taken()`. */
export class PendingDecision<T> {
  private value: T | undefined;
  reset(): void {
    this.value = undefined;
  }
  make(value: T): void {
    this.value = value;
  }
  get made(): boolean {
    return this.value !== undefined;
  }
  taken(): T | undefined {
    return this.value;
  }
}

/** What applying a batch's outcomes found: the hosts that failed, and the one-line summary when any did. */
export interface AppliedBatch {
  failures: FailedHost[];
  problem?: string;
}

export class FleetRun {
  readonly status: RunStatus;
  readonly undoLog = new UndoLog();
  /** Host-steps already done (`step/host`), so a retried phase or rollback runs only what is left. */
  readonly done = new Set<string>();
  readonly skipped = new Set<string>();
  /** Hosts the operator let the rollback go on without. */
  readonly rollbackSkipped = new Set<string>();
  readonly gateDecision = new PendingDecision<GateOutcome>();
  readonly operatorChoice = new PendingDecision<OperatorChoice>();
  /** The machine's snapshot: the driver moves it, and gates inside phases record their approvals in its context. */
  snapshot!: UpgradeSnapshot;
  /** Whether the rollback has restored the database already (a retried rollback does not restore twice). */
  restored = false;
  /** The error line says what failed; on a fleet of thousands the tail may shrink to its last few words. */
  readonly failedTailChars: number;
  // Outputs kept in the status share fixed budgets, so the status query and the run's result stay far below
  // Temporal's 2 MB payload limit however large the fleet (core/budget.ts).
  private readonly records: OutputBudget;
  private publishedPhase: string | undefined;
  private childRuns = 0;
  /** The pending gate's approvals, by key (or by name where the policy accepts names): what the quorum counts. */
  private gateApprovals: CountedApproval[] = [];
  private readonly openings = new Map<string, number>();
  /** The worker's trust policy and who this run is; undefined for runs started before signed decisions. */
  trust: RunTrust | undefined;
  /** Tells the plan's notify targets about gates, failures and the end; undefined without targets (workflows/notify.ts). */
  notifier: Notifier | undefined;

  /** The heartbeat timeout this run's activities are scheduled with (core/heartbeat.ts). */
  get heartbeatTimeoutMs(): number {
    return heartbeatTimeoutMs(this.versions);
  }

  constructor(
    readonly plan: UpgradePlan,
    /** Planned again once preflight has found each host's version (phases.ts). */
    public planned: RunPlan,
    /** Which of the workflow's changes this run takes (versions.ts): runs from before run as they did. */
    readonly versions: RunVersions,
  ) {
    this.status = {
      fleet: plan.fleet,
      source: plan.source,
      target: plan.target,
      phase: 'preflight',
      hosts: Object.fromEntries(planned.hostIds.map((id) => [id, { state: 'pending' } satisfies HostStatus])),
      hostCounts: {},
      decisions: [],
      records: [],
      undoLog: [],
    };
    this.records = new OutputBudget(RECORDS_CHARS, recordedOutputs(plan));
    this.failedTailChars = tailShare(FAILED_TAILS_CHARS, plan.hosts.length, 16);
  }

  publicStatus(): RunStatus {
    const hostCounts: RunStatus['hostCounts'] = {};
    for (const host of Object.values(this.status.hosts)) hostCounts[host.state] = (hostCounts[host.state] ?? 0) + 1;
    return { ...this.status, hostCounts, undoLog: this.undoLog.summary() };
  }

  /** Shows the status in the Web UI; the phase also as a search attribute, only when it changes (each is an event). */
  publish(): void {
    if (this.status.phase !== this.publishedPhase) {
      upsertSearchAttributes([
        { key: PhaseAttribute, value: this.status.phase },
        { key: FleetAttribute, value: this.plan.fleet },
      ]);
      phaseChanged(this.plan.fleet, this.publishedPhase, this.status.phase);
      this.publishedPhase = this.status.phase;
    }
    setCurrentDetails(detailsMarkdown(this.publicStatus(), workflowInfo().workflowId));
  }

  /** A workflow-time stamp for decisions. */
  private now(): string {
    return new Date().toISOString();
  }

  /** An accepted approval or rejection of the pending gate, by a decider handlers.ts authenticated and checked. */
  decideGate(kind: 'approve' | 'reject', decider: Decider): void {
    const gate = this.status.pendingGate;
    if (!gate) return;
    this.status.decisions.push(this.decisionRecord(gate.gate, kind, decider));
    if (kind === 'approve') {
      gate.approvedBy.push(decider.name);
      this.gateApprovals.push({ fingerprint: decider.key ?? `name:${decider.name}`, approver: decider.name });
    }
    if (kind === 'reject') {
      this.gateDecision.make({ approved: false, reason: `gate ${gate.gate} rejected by ${decider.name}${decider.comment ? `: ${decider.comment}` : ''}` });
    } else if (approvalCount(this.gateApprovals) >= gate.quorum) {
      this.gateDecision.make({ approved: true });
    }
    // Decided: further approvals or rejections arriving in the same workflow task are refused, not silently overridden.
    if (this.gateDecision.made) this.status.pendingGate = undefined;
  }

  /** An accepted operator decision about a failure, by a decider handlers.ts authenticated and checked. */
  chooseForFailure(action: OperatorAction, decider: Decider): void {
    const hosts = action === 'skip' ? (decider.hosts ?? []) : [];
    // One decision per host skipped, so the record says who let each host go without the step.
    for (const host of hosts.length > 0 ? hosts : [undefined]) this.status.decisions.push(this.decisionRecord('guided-failure', action, decider, host));
    // One decision per failure: a second one arriving in the same workflow task is refused by the validators.
    this.status.awaitingOperator = undefined;
    if (action === 'retry') this.operatorChoice.make({ type: 'OPERATOR_RETRY' });
    else if (action === 'skip') this.operatorChoice.make({ type: 'OPERATOR_SKIP', hosts });
    else this.operatorChoice.make({ type: 'OPERATOR_ROLLBACK', reason: `rollback chosen by ${decider.name}${decider.comment ? `: ${decider.comment}` : ''}` });
  }

  /** The decision as the status and the result keep it: who, with which key, and when; its nonce is spent. */
  private decisionRecord(gate: string, decision: Decision['decision'], decider: Decider, host?: string): Decision {
    if (decider.nonce) this.trust?.seenNonces.add(decider.nonce);
    return {
      gate,
      approver: decider.name,
      decision,
      ...(host ? { host } : {}),
      ...(decider.comment ? { comment: decider.comment } : {}),
      ...(decider.key ? { key: decider.key } : {}),
      at: this.now(),
    };
  }

  /** The next opening of a gate (or of "guided-failure"): a signed decision names the one it decides. */
  nextOpening(gate: string): number {
    const opening = (this.openings.get(gate) ?? 0) + 1;
    this.openings.set(gate, opening);
    return opening;
  }

  /** A gate opens: approvals of an earlier opening do not count. */
  resetGateApprovals(): void {
    this.gateApprovals = [];
  }

  /** A decision nobody sent: a gate expired, a failure unattended, the run cancelled. */
  recordAutomaticDecision(gate: string, approver: 'timer' | 'cancellation', decision: 'expired' | 'rollback'): void {
    this.status.decisions.push({ gate, approver, decision, at: this.now() });
  }

  countRefusedSignal(): void {
    this.status.refusedSignals = (this.status.refusedSignals ?? 0) + 1;
  }

  skip(hosts: string[], rollingBack: boolean): void {
    for (const id of hosts) {
      this.skipped.add(id);
      if (rollingBack) this.rollbackSkipped.add(id);
      (this.status.hosts[id] as HostStatus).state = 'skipped';
    }
  }

  approvedWithin(gate: GateWithin, wave?: number): boolean {
    return isApprovedWithin(this.snapshot.context, gate, wave);
  }

  rememberApproval(gate: GateWithin, wave?: number): void {
    [this.snapshot] = transition(upgradeMachine, this.snapshot, { type: 'APPROVED_WITHIN', gate, ...(wave !== undefined ? { wave } : {}) });
  }

  record(step: string, host: string, output: string): void {
    const kept = this.records.keep(output.trim());
    if (kept !== undefined) this.status.records.push({ step, host, output: kept });
    else this.status.recordsNotKept = this.records.notKept;
  }

  recordBackup(name: string, checksum: string): void {
    this.status.backup = { name, checksum };
    this.undoLog.backup(this.status.phase, name, checksum);
  }

  /** The hosts of a batch still to run, with their undo recorded: undefined when none is left. */
  prepareBatch(whole: StepBatch, skipping: Pick<Set<string>, 'has'>): StepBatch | undefined {
    const batch = { ...whole, tasks: whole.tasks.filter((task) => !this.done.has(`${whole.step}/${task.host}`) && !skipping.has(task.host)) };
    if (batch.tasks.length === 0) return undefined;
    this.undoLog.beforeBatch(this.status.phase, batch);
    return batch;
  }

  /**
   * Runs `body` (the batch's activity) with the batch listed in the status meanwhile. Only the query's answer
   * changes, no command, so runs recorded before this replay as they were.
   */
  async underWay<T>(batch: StepBatch, body: () => Promise<T>): Promise<T> {
    const running: RunningBatch = {
      step: batch.step,
      hosts: batch.tasks.slice(0, RUNNING_BATCH_HOSTS).map((task) => task.host),
      hostCount: batch.tasks.length,
      ...(batch.wave !== undefined ? { wave: batch.wave } : {}),
    };
    this.status.batches = [...(this.status.batches ?? []), running];
    try {
      return await body();
    } finally {
      const left = (this.status.batches ?? []).filter((other) => other !== running);
      if (left.length > 0) this.status.batches = left;
      else delete this.status.batches;
    }
  }

  /** Applies a batch's outcomes to its hosts: each moves on, or fails with its error. */
  applyBatch(batch: StepBatch, outcomes: HostOutcome[]): AppliedBatch {
    const { succeeded, failed } = judgeOutcomes(this.plan, batch, outcomes, this.failedTailChars, { perHost: this.versions.perHostVersions });
    for (const outcome of succeeded) {
      if (batch.record) this.record(batch.step, outcome.host, outcome.outputTail);
      if (batch.step === 'version' && this.versions.perHostVersions) (this.status.versions ??= {})[outcome.host] = lastLine(outcome.outputTail);
      this.done.add(`${batch.step}/${outcome.host}`);
      this.status.hosts[outcome.host] = { state: STATE_AFTER_STEP[batch.step], step: batch.step };
    }
    for (const failure of failed) this.status.hosts[failure.host] = { state: 'failed', step: batch.step, error: failure.error, outputTail: failure.outputTail };
    return failed.length === 0 ? { failures: failed } : { failures: failed, problem: failureSummary(batch.step, failed) };
  }

  /** The id of the next child workflow of this run, for a phase (or rollback step) labelled `label`. */
  nextChildId(parentId: string, label: string): string {
    return `${parentId}/${label}-${++this.childRuns}`;
  }

  /** The run's result once the machine has stopped; a failed run fails the workflow with its status. */
  result(): RunResult {
    const final = this.snapshot.value;
    const failure = this.snapshot.context.failure;
    if (final === 'failed') throw ApplicationFailure.nonRetryable(failure ?? 'upgrade failed', 'UpgradeFailed', this.publicStatus());
    return {
      outcome: final === 'completed' ? 'completed' : final === 'rolledBack' ? 'rolled-back' : 'rejected',
      fleet: this.plan.fleet,
      target: this.plan.target,
      hosts: this.planned.hostIds.length,
      ...(this.status.backup ? { backup: this.status.backup } : {}),
      decisions: this.status.decisions,
      records: this.status.records,
      ...(this.status.recordsNotKept ? { recordsNotKept: this.status.recordsNotKept } : {}),
      ...(failure && final !== 'completed' ? { reason: failure } : {}),
      ...(final === 'completed' && this.plan.followUp.length ? { followUp: this.plan.followUp } : {}),
    };
  }
}
