/**
 * upgradeFleet: runs a validated plan in the vendor's order. The xstate machine decides what comes next; this
 * workflow performs what the machine names (phases as batch activities, gates and guided failures as waits on
 * signals/updates, rollback as compensation), keeps the public status and records the undo of every step.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  executeChild,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { initialTransition, transition } from 'xstate';
import type { DatabaseOutcome, HostOutcome } from '../activities';
import { normalizeDecision, openGate, quorumReached, refuseDecision } from '../core/gates';
import { PUBLIC_PHASE, upgradeMachine, type MachineState, type UpgradeAction, type UpgradeEvent } from '../core/machine';
import { hostsToSkip, refuseOperatorAction, skippableHosts } from '../core/operator';
import { type Gate, type GateName, type UpgradePlan, durationMs, failureLimit, validatePlan } from '../core/plan';
import { type DatabaseTask, type PhaseName, type StepBatch, type StepName, PHASE_TITLES, backupName, planRun } from '../core/planner';
import { BATCHES_IN_PARENT, BATCHES_PER_CHILD, FAILED_TAILS_CHARS, OutputBudget, RECORDS_CHARS, keepEnd, recordedOutputs, tailShare } from '../core/budget';
import { STATE_AFTER_STEP } from '../core/progress';
import { planRollback } from '../core/rollback';
import {
  HOST_STATES,
  type ApprovalInput,
  type AwaitingOperator,
  type HostStatus,
  type OperatorAction,
  type OperatorInput,
  type RunResult,
  type RunStatus,
  type UndoRecord,
} from '../core/status';
import {
  FleetAttribute,
  PhaseAttribute,
  approveSignal,
  approveUpdate,
  rejectSignal,
  rejectUpdate,
  retrySignal,
  retryUpdate,
  rollbackSignal,
  rollbackUpdate,
  skipSignal,
  skipUpdate,
  statusQuery,
} from './messages';
import { databaseActivity, failureMessage, groupsOf, inWindow, outcomesOfLostBatch, runStepBatch, segments, windowFor } from './batches';
import { type CompactOutcomes, compactBatch, compactOutcomes, expandOutcomes } from './compact';
import { runHostSteps } from './runHostSteps';

type GateOutcome = { approved: true } | { approved: false; reason: string };

function withoutSites(plan: UpgradePlan): UpgradePlan {
  return { ...plan, hosts: plan.hosts.map(({ site: _site, ...host }) => host) };
}

/** Failures named in a reason; the status lists every failed host. */
const MAX_HOSTS_IN_REASON = 10;

const lastLine = (text: string) => text.trim().split('\n').pop()?.trim() ?? '';

export async function upgradeFleet(input: unknown): Promise<RunResult> {
  const validated = validatePlan(input);
  if (!validated.ok) {
    throw ApplicationFailure.nonRetryable(`The upgrade plan is invalid:\n${validated.message}`, 'InvalidPlan');
  }
  // Runs started before sites had task queues of their own ran every host on the run's queue: they still do.
  const plan = validated.plan.hosts.some((host) => host.site) && !patched('site-task-queues') ? withoutSites(validated.plan) : validated.plan;
  // The first run id survives resets and continue-as-new, so the restore always finds this run's backup.
  const run = planRun(plan, { backup: backupName(plan.fleet, plan.target, workflowInfo().firstExecutionRunId) });

  const status: RunStatus = {
    fleet: plan.fleet,
    source: plan.source,
    target: plan.target,
    phase: 'preflight',
    hosts: Object.fromEntries(run.hostIds.map((id) => [id, { state: 'pending' } satisfies HostStatus])),
    hostCounts: {},
    decisions: [],
    records: [],
    undoLog: [],
  };
  /** Every completed (or attempted) step's undo, in order: what rollback replays. */
  const undoLog: UndoRecord[] = [];
  /** Host-steps already done (`step/host`), so a retried phase or rollback runs only what is left. */
  const done = new Set<string>();
  const skipped = new Set<string>();
  /** Hosts the operator let the rollback go on without. */
  const rollbackSkipped = new Set<string>();
  /** How the pending gate was decided; set by the handler that decides it, so later decisions are refused. */
  let gateOutcome: GateOutcome | undefined;
  let operatorChoice: UpgradeEvent | undefined;
  /** The hosts of the last step that failed, for the operator. */
  let lastFailure: { step?: StepName; hosts: AwaitingOperator['hosts'] } = { hosts: [] };

  const publicStatus = (): RunStatus => {
    const hostCounts: RunStatus['hostCounts'] = {};
    for (const host of Object.values(status.hosts)) hostCounts[host.state] = (hostCounts[host.state] ?? 0) + 1;
    const undoSummary = undoLog.map((record) => ({
      phase: record.phase,
      step: record.step,
      hosts: record.hosts.length,
      ...(Array.isArray(record.undo) ? {} : { restoreBackup: record.undo.restoreBackup }),
    }));
    return { ...status, hostCounts, undoLog: undoSummary };
  };

  let publishedPhase: string | undefined;
  const publish = () => {
    // Each upsert is a history event: only when the phase changes, not on every batch.
    if (status.phase !== publishedPhase) {
      upsertSearchAttributes([
        { key: PhaseAttribute, value: status.phase },
        { key: FleetAttribute, value: plan.fleet },
      ]);
      publishedPhase = status.phase;
    }
    const counts = publicStatus().hostCounts;
    const lines = [
      `**Cutover** ${plan.fleet}: ${plan.source} → ${plan.target}`,
      `**Phase:** ${status.phase}`,
      `**Hosts:** ${HOST_STATES.filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join(', ')}`,
    ];
    const gate = status.pendingGate;
    if (gate) {
      lines.push(
        `**Waiting for approval at gate \`${gate.gate}\`** (${gate.approvedBy.length}/${gate.quorum}; approvers: ${gate.approvers.join(', ') || 'anyone'}${gate.expiresAt ? `; expires ${gate.expiresAt}` : ''})`,
        gate.instructions,
        'Send the signal `approve` with `{"approver": "your name"}` (or `reject`).',
      );
    }
    const waiting = status.awaitingOperator;
    if (waiting) {
      lines.push(
        `**Waiting for an operator:** ${waiting.reason}`,
        ...waiting.hosts.map((h) => `- \`${h.host}\`: ${h.error} — ${lastLine(h.outputTail)}`),
        `Send \`retry\`, ${waiting.skippable.length ? '`skip` (with `"host"`), ' : ''}or \`rollback\` with \`{"operator": "your name"}\`${waiting.expiresAt ? `; rolls back at ${waiting.expiresAt}` : ''}.`,
      );
    }
    if (status.failure) lines.push(`**Failure:** ${status.failure}`);
    setCurrentDetails(lines.join('\n\n'));
  };

  // --- Approval gates -------------------------------------------------------------------------------------------
  const decide = (kind: 'approve' | 'reject', raw: ApprovalInput) => {
    const decision = normalizeDecision(raw);
    const gate = status.pendingGate;
    if (!gate) return;
    status.decisions.push({
      gate: gate.gate,
      approver: decision.approver,
      decision: kind,
      ...(decision.comment ? { comment: decision.comment } : {}),
      at: new Date().toISOString(),
    });
    if (kind === 'approve') gate.approvedBy.push(decision.approver);
    if (kind === 'reject') {
      gateOutcome = { approved: false, reason: `gate ${gate.gate} rejected by ${decision.approver}${decision.comment ? `: ${decision.comment}` : ''}` };
    } else if (quorumReached(gate)) {
      gateOutcome = { approved: true };
    }
    // Decided: further approvals or rejections arriving in the same workflow task are refused, not silently overridden.
    if (gateOutcome) status.pendingGate = undefined;
  };
  const onGateSignal = (kind: 'approve' | 'reject') => (decision: ApprovalInput) => {
    const refusal = refuseDecision(status.pendingGate, decision, kind);
    if (refusal) log.warn(`${kind} signal refused: ${refusal}`);
    else decide(kind, decision);
  };
  const gateValidator = (kind: 'approve' | 'reject') => (decision: ApprovalInput) => {
    const refusal = refuseDecision(status.pendingGate, decision, kind);
    if (refusal) throw new Error(refusal);
  };
  setHandler(approveSignal, onGateSignal('approve'), { description: 'Approve the pending gate: {"approver": "name", "comment": "optional"}' });
  setHandler(rejectSignal, onGateSignal('reject'), { description: 'Reject the pending gate: {"approver": "name", "comment": "why"}' });
  setHandler(approveUpdate, (decision) => (decide('approve', decision), publicStatus()), {
    validator: gateValidator('approve'),
    description: 'Approve the pending gate and get the run status back; refused with the reason if not allowed.',
  });
  setHandler(rejectUpdate, (decision) => (decide('reject', decision), publicStatus()), {
    validator: gateValidator('reject'),
    description: 'Reject the pending gate; refused with the reason if not allowed.',
  });

  // --- Guided failure -------------------------------------------------------------------------------------------
  const choose = (action: OperatorAction, input: OperatorInput) => {
    const operator = input.operator.trim();
    const hosts = action === 'skip' ? hostsToSkip(input) : [];
    // One decision per host skipped, so the record says who let each host go without the step.
    for (const host of hosts.length > 0 ? hosts : [undefined]) {
      status.decisions.push({
        gate: 'guided-failure',
        approver: operator,
        decision: action,
        ...(host ? { host } : {}),
        ...(input.comment ? { comment: input.comment } : {}),
        at: new Date().toISOString(),
      });
    }
    // One decision per failure: a second one arriving in the same workflow task is refused by the validators.
    status.awaitingOperator = undefined;
    if (action === 'retry') operatorChoice = { type: 'OPERATOR_RETRY' };
    else if (action === 'skip') operatorChoice = { type: 'OPERATOR_SKIP', hosts };
    else operatorChoice = { type: 'OPERATOR_ROLLBACK', reason: `rollback chosen by ${operator}${input.comment ? `: ${input.comment}` : ''}` };
  };
  const operatorHandlers = [
    ['retry', retrySignal, retryUpdate, 'Run the failed step again on the hosts that failed: {"operator": "name"}'],
    ['skip', skipSignal, skipUpdate, 'Go on without failed hosts, where the plan allows: {"operator": "name", "host": "id"} or {"operator": "name", "hosts": ["id", ...]}'],
    ['rollback', rollbackSignal, rollbackUpdate, 'Roll the whole fleet back to the source version: {"operator": "name"}'],
  ] as const;
  for (const [action, signal, update, description] of operatorHandlers) {
    setHandler(
      signal,
      (input: OperatorInput) => {
        const refusal = refuseOperatorAction(status.awaitingOperator, action, input);
        if (refusal) log.warn(`${action} signal refused: ${refusal}`);
        else choose(action, input);
      },
      { description },
    );
    setHandler(update, (input: OperatorInput) => (choose(action, input), publicStatus()), {
      validator: (input: OperatorInput) => {
        const refusal = refuseOperatorAction(status.awaitingOperator, action, input);
        if (refusal) throw new Error(refusal);
      },
      description,
    });
  }
  setHandler(statusQuery, publicStatus, { description: 'Phase, every host, the pending gate or failure, and every decision.' });

  /** Waits at one of the plan's gates, or at a named confirmation (a prerequisite) with its own gate settings. */
  const waitAtGate = async (name: GateName | `prerequisite:${string}`, confirmation?: Gate): Promise<UpgradeEvent> => {
    const gate = confirmation ?? plan.gates[name as GateName];
    if (!gate) return { type: 'GATE_APPROVED' };
    const timeoutMs = gate.timeout ? durationMs(gate.timeout) : undefined;
    const phaseBefore = status.phase;
    status.phase = 'awaiting-approval';
    status.pendingGate = openGate(name, gate, timeoutMs ? new Date(Date.now() + timeoutMs).toISOString() : undefined);
    gateOutcome = undefined;
    publish();
    try {
      const decided = () => gateOutcome !== undefined;
      const inTime = timeoutMs === undefined ? (await condition(decided), true) : await condition(decided, timeoutMs);
      // Set by a handler while waiting: TypeScript cannot see that, hence the annotation.
      const outcome = gateOutcome as GateOutcome | undefined;
      if (!inTime || !outcome) {
        status.decisions.push({ gate: name, approver: 'timer', decision: 'expired', at: new Date().toISOString() });
        return { type: 'GATE_REJECTED', reason: `gate ${name} expired after ${gate.timeout} without approval` };
      }
      return outcome.approved ? { type: 'GATE_APPROVED' } : { type: 'GATE_REJECTED', reason: outcome.reason };
    } finally {
      status.pendingGate = undefined;
      status.phase = phaseBefore;
    }
  };

  const waitForOperator = async (rollingBack: boolean, reason: string, failedPhase: string): Promise<UpgradeEvent> => {
    const timeoutMs = !rollingBack && plan.execution.operatorTimeout ? durationMs(plan.execution.operatorTimeout) : undefined;
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    let undecided = lastFailure.hosts;
    try {
      for (;;) {
        const skippable = skippableHosts(plan, lastFailure.step, undecided.map((h) => h.host));
        status.awaitingOperator = {
          phase: failedPhase,
          ...(lastFailure.step ? { step: lastFailure.step } : {}),
          rollingBack,
          reason,
          hosts: undecided,
          options: skippable.length ? ['retry', 'skip', 'rollback'] : ['retry', 'rollback'],
          skippable,
          ...(deadline !== undefined ? { expiresAt: new Date(deadline).toISOString() } : {}),
        };
        operatorChoice = undefined;
        publish();
        const decided = () => operatorChoice !== undefined;
        const inTime = deadline === undefined ? (await condition(decided), true) : await condition(decided, Math.max(1, deadline - Date.now()));
        if (!inTime) {
          status.decisions.push({ gate: 'guided-failure', approver: 'timer', decision: 'rollback', at: new Date().toISOString() });
          return { type: 'OPERATOR_ROLLBACK', reason: `no operator decision within ${plan.execution.operatorTimeout}: ${reason}` };
        }
        const choice = operatorChoice as unknown as UpgradeEvent;
        if (choice.type !== 'OPERATOR_SKIP') return choice;
        for (const id of choice.hosts) {
          skipped.add(id);
          if (rollingBack) rollbackSkipped.add(id);
          (status.hosts[id] as HostStatus).state = 'skipped';
        }
        const rest = undecided.filter((h) => !choice.hosts.includes(h.host));
        // Skipping one of several failed hosts is no decision about the others: running the step again on them is
        // a retry, which the operator did not choose. Recorded runs went on after any skip, so only new ones wait.
        if (rest.length === 0 || !patched('skip-waits-for-every-failed-host')) return choice;
        undecided = rest;
      }
    } finally {
      status.awaitingOperator = undefined;
    }
  };

  // --- Host steps ---------------------------------------------------------------------------------------------
  // Outputs kept in the status share fixed budgets, so the status query and the run's result stay far below
  // Temporal's 2 MB payload limit however large the fleet (core/budget.ts).
  const records = new OutputBudget(RECORDS_CHARS, recordedOutputs(plan));
  // The error line says what failed; on a fleet of thousands the tail may shrink to its last few words.
  const failedTailChars = tailShare(FAILED_TAILS_CHARS, plan.hosts.length, 16);
  const record = (step: string, host: string, output: string) => {
    const kept = records.keep(output.trim());
    if (kept !== undefined) status.records.push({ step, host, output: kept });
    else status.recordsNotKept = records.notKept;
  };
  const allowedSources = plan.upgradePaths[plan.target] ?? [];

  /** Applies a batch's outcomes to the hosts; returns the hosts that failed and why. */
  const applyOutcomes = (batch: StepBatch, outcomes: HostOutcome[]): { problem?: string; failures: AwaitingOperator['hosts'] } => {
    const failures: AwaitingOperator['hosts'] = [];
    for (const outcome of outcomes) {
      const host = status.hosts[outcome.host] as HostStatus;
      host.step = batch.step;
      const printed = lastLine(outcome.outputTail);
      let error: string | undefined;
      if (!outcome.ok) error = `${batch.step} failed (exit ${outcome.exitCode}) after ${outcome.attempt || 'all'} attempt(s)`;
      else if (batch.step === 'version' && !allowedSources.includes(printed)) {
        error = `${outcome.host} is at ${printed || '(no version printed)'}: ${plan.target} can only be installed over ${allowedSources.join(' or ')}; upgrade it to ${allowedSources.join(' or ')} first`;
      } else if (batch.step === 'version' && printed !== plan.source) {
        // A rollback returns every host to the plan's source version, so a host at another one could not go back.
        error = `${outcome.host} is at ${printed}, but the plan's source is ${plan.source}: a rollback returns hosts to the source, so every host must be at it (upgrade it to ${plan.source} first, or run a plan for ${printed} hosts)`;
      }
      if (error) {
        const outputTail = keepEnd(outcome.outputTail, failedTailChars);
        host.state = 'failed';
        host.error = error;
        host.outputTail = outputTail;
        failures.push({ host: outcome.host, error, outputTail });
      } else {
        if (batch.record) record(batch.step, outcome.host, outcome.outputTail);
        done.add(`${batch.step}/${outcome.host}`);
        host.state = STATE_AFTER_STEP[batch.step];
        delete host.error;
        delete host.outputTail;
      }
    }
    if (failures.length === 0) return { failures };
    return {
      failures,
      problem: `${batch.step} failed on ${failures.length} host(s): ${failures
        .slice(0, MAX_HOSTS_IN_REASON)
        .map((f) => `${f.host}: ${f.error}${lastLine(f.outputTail) ? ` (${lastLine(f.outputTail)})` : ''}`)
        .join('; ')}${failures.length > MAX_HOSTS_IN_REASON ? `; and ${failures.length - MAX_HOSTS_IN_REASON} more (see the status)` : ''}`,
    };
  };

  /** Undos already in the log (`step/host`), so a retried batch does not record them twice. */
  const undoRecorded = new Set<string>();
  /** The hosts of a batch still to run, with their undo recorded: undefined when none is left. */
  const prepareBatch = (whole: StepBatch, skipping: Pick<Set<string>, 'has'>): StepBatch | undefined => {
    const batch = { ...whole, tasks: whole.tasks.filter((task) => !done.has(`${whole.step}/${task.host}`) && !skipping.has(task.host)) };
    if (batch.tasks.length === 0) return undefined;
    // Saga order: the undo is recorded before the step runs, because a step that was cut off (cancellation, a
    // lost worker, a failure half-way) may have changed the host too. Undos are safe to run on an unchanged host.
    const undoable = batch.tasks.filter((task) => task.undo && !undoRecorded.has(`${batch.step}/${task.host}`));
    if (undoable.length > 0) {
      for (const task of undoable) undoRecorded.add(`${batch.step}/${task.host}`);
      undoLog.push({
        phase: status.phase,
        step: batch.step,
        hosts: undoable.map((task) => task.host),
        undo: undoable.map((task) => ({ host: task.host, command: task.undo as string })),
      });
    }
    return batch;
  };

  let childRuns = 0;
  /**
   * Runs a phase's (or a rollback step's) batches in order. Consecutive batches of a step share the parallelism; a
   * phase over more than hostsPerWorkflow hosts runs them in child workflows, a group of batches each. Once more
   * hosts have failed than `limit`, no new batch starts; every failure is handed to the operator at the end.
   */
  const runBatches = async (
    all: StepBatch[],
    options: {
      label: string;
      skipping: Set<string>;
      /** The plan's failure threshold, of the hosts these batches run on. */
      threshold: UpgradePlan['execution']['failureThreshold'];
      beforeWave?: (wave: number) => Promise<UpgradeEvent | undefined>;
    },
  ): Promise<{ problem?: string; event?: UpgradeEvent }> => {
    const hosts = new Set(all.flatMap((batch) => batch.tasks.map((task) => task.host))).size;
    const limit = failureLimit(options.threshold, hosts);
    const failures: AwaitingOperator['hosts'] = [];
    const failed = new Set<string>();
    const problems: string[] = [];
    let failedStep: StepName | undefined;
    const over = () => failed.size > limit;
    // A host that failed a step of this phase takes no later step of it.
    const skipping = { has: (host: string) => options.skipping.has(host) || failed.has(host) };
    const apply = (batch: StepBatch, outcomes: HostOutcome[]) => {
      const result = applyOutcomes(batch, outcomes);
      if (result.problem) {
        problems.push(result.problem);
        failedStep = batch.step;
        for (const failure of result.failures) {
          if (!failed.has(failure.host)) failures.push(failure);
          failed.add(failure.host);
        }
      }
      publish();
    };
    let openedWave: number | undefined;
    const gateBefore = async (batch: StepBatch | undefined): Promise<UpgradeEvent | undefined> => {
      if (!options.beforeWave || batch?.wave === undefined || batch.wave === openedWave) return undefined;
      openedWave = batch.wave;
      return options.beforeWave(batch.wave);
    };

    // Children by hosts keep payloads small; children by batches keep histories short (one-host batches of a long
    // step on a large fleet). Each rule is its own patch, so runs recorded before it replay as they ran.
    const inChildren =
      (hosts > plan.execution.hostsPerWorkflow && patched('host-steps-in-child-workflows')) || (all.length > BATCHES_IN_PARENT && patched('children-by-batch-count'));
    if (inChildren) {
      const wavePerGroup = options.beforeWave !== undefined;
      const byHosts = groupsOf(all, { maxHosts: plan.execution.hostsPerWorkflow, wavePerGroup });
      const byHostsAndBatches = groupsOf(all, { maxHosts: plan.execution.hostsPerWorkflow, maxBatches: BATCHES_PER_CHILD, wavePerGroup });
      const sameGroups = byHosts.length === byHostsAndBatches.length && byHosts.every((group, i) => group.length === byHostsAndBatches[i]?.length);
      const groups = sameGroups || !patched('child-batch-budget') ? byHosts : byHostsAndBatches;
      for (const group of groups) {
        if (over()) break;
        const decision = await gateBefore(group[0]);
        if (decision) return { event: decision };
        const batches = group.flatMap((whole) => prepareBatch(whole, skipping) ?? []);
        if (batches.length === 0) continue;
        let results: (CompactOutcomes | null)[];
        const workflowId = `${workflowInfo().workflowId}/${options.label}-${++childRuns}`;
        const groupHosts = new Set(batches.flatMap((b) => b.tasks.map((t) => t.host))).size;
        status.children = [{ workflowId, phase: options.label, hosts: groupHosts }];
        try {
          const child = await executeChild(runHostSteps, {
            workflowId,
            args: [{ batches: batches.map(compactBatch), failureBudget: limit - failed.size }],
            staticSummary: `${options.label}: ${batches.length} batch(es) on ${groupHosts} hosts`,
          });
          results = child.batches;
        } catch (error) {
          if (isCancellation(error)) throw error;
          results = batches.map((batch) => compactOutcomes(batch, outcomesOfLostBatch(batch, error), failedTailChars));
        } finally {
          delete status.children;
        }
        batches.forEach((batch, i) => {
          const result = results[i];
          if (result) apply(batch, expandOutcomes(result));
        });
      }
    } else {
      for (const segment of segments(all)) {
        if (over()) break;
        const decision = await gateBefore(segment[0]);
        if (decision) return { event: decision };
        // Recorded runs ran every batch alone: only new runs share the parallelism between small batches.
        const window = segment.length > 1 && windowFor(segment) > 1 && patched('batches-side-by-side') ? windowFor(segment) : 1;
        await inWindow(
          segment,
          window,
          async (whole) => {
            const batch = prepareBatch(whole, skipping);
            if (batch) apply(batch, await runStepBatch(batch));
          },
          over,
        );
      }
    }
    if (problems.length === 0) return {};
    lastFailure = { ...(failedStep ? { step: failedStep } : {}), hosts: failures };
    return { problem: problems.length === 1 ? problems[0] : `${failures.length} host(s) failed: ${problems.join('; ')}` };
  };

  const runDatabase = async (task: DatabaseTask): Promise<string> => (await databaseActivity(task)(task)).result;

  /** Preflight's last part: each prerequisite checked by its command, or confirmed by a person. */
  const checkPrerequisites = async (): Promise<UpgradeEvent> => {
    for (const prerequisite of run.prerequisites) {
      if ('confirm' in prerequisite) {
        const decision = await waitAtGate(`prerequisite:${prerequisite.name}`, prerequisite.confirm);
        if (decision.type === 'GATE_REJECTED') return decision;
        continue;
      }
      try {
        const outcome = await databaseActivity(prerequisite.check)(prerequisite.check);
        record(`prerequisite:${prerequisite.name}`, prerequisite.check.host, outcome.outputTail);
      } catch (error) {
        return { type: 'PHASE_FAILED', reason: `prerequisite ${prerequisite.name} is not met: ${databaseFailure(prerequisite.check, error)}` };
      }
    }
    return { type: 'PHASE_SUCCEEDED' };
  };

  const databaseFailure = (task: DatabaseTask, error: unknown) => {
    if (isCancellation(error)) throw error;
    lastFailure = { hosts: [{ host: task.host, error: `database ${task.action} failed`, outputTail: failureMessage(error) }] };
    return `database ${task.action} on ${task.host} failed: ${failureMessage(error)}`;
  };

  let rehearsalApproved = false;
  /** Waves of remaining hosts already approved at the beforeEachBatch gate (a retried phase does not ask again). */
  const wavesApproved = new Set<number>();
  const runPhase = async (phase: PhaseName): Promise<UpgradeEvent> => {
    let checksum = '';
    for (const task of run.phases[phase].database) {
      if (task.action === 'rehearse' && plan.gates.beforeRehearsal && !rehearsalApproved) {
        const decision = await waitAtGate('beforeRehearsal');
        if (decision.type === 'GATE_REJECTED') return decision;
        rehearsalApproved = true;
      }
      let result: DatabaseOutcome;
      try {
        result = await databaseActivity(task)(task);
      } catch (error) {
        return { type: 'PHASE_FAILED', reason: `${PHASE_TITLES[phase]}: ${databaseFailure(task, error)}` };
      }
      if (task.action === 'checksum') checksum = result.result;
      if (task.action === 'backup') {
        status.backup = { name: run.backup, checksum };
        undoLog.push({ phase: status.phase, step: 'backup', hosts: [], undo: { restoreBackup: run.backup, checksum } });
      }
      if (task.action === 'rehearse') record('rehearse', task.host, result.outputTail);
    }
    const { problem, event } = await runBatches(run.phases[phase].batches, {
      label: phase,
      skipping: skipped,
      threshold: plan.execution.failureThreshold,
      ...(plan.gates.beforeEachBatch
        ? {
            beforeWave: async (wave: number) => {
              if (wavesApproved.has(wave)) return undefined;
              const decision = await waitAtGate('beforeEachBatch');
              if (decision.type === 'GATE_REJECTED') return decision;
              wavesApproved.add(wave);
              return undefined;
            },
          }
        : {}),
    });
    if (event) return event;
    if (problem) return { type: 'PHASE_FAILED', reason: `${PHASE_TITLES[phase]}: ${problem}` };
    if (phase === 'preflight') return checkPrerequisites();
    return { type: 'PHASE_SUCCEEDED' };
  };

  // --- Rollback by compensation ---------------------------------------------------------------------------------
  let restored = false;
  const runRollback = async (): Promise<UpgradeEvent> => {
    for (const step of planRollback(plan, undoLog)) {
      if (step.kind === 'restore') {
        if (restored) continue;
        let checksum: string;
        try {
          await runDatabase(step.restore);
          checksum = await runDatabase(step.checksum);
        } catch (error) {
          return { type: 'ROLLBACK_FAILED', reason: `rollback: ${databaseFailure(step.restore, error)}` };
        }
        if (checksum !== step.expectedChecksum) {
          lastFailure = { hosts: [{ host: step.restore.host, error: 'restored database differs from the backup', outputTail: checksum }] };
          return { type: 'ROLLBACK_FAILED', reason: `rollback: the restored database's checksum ${checksum} is not the backup's ${step.expectedChecksum}` };
        }
        restored = true;
        continue;
      }
      const { problem } = await runBatches(step.batches, { label: step.name, skipping: rollbackSkipped, threshold: 0 });
      if (problem) return { type: 'ROLLBACK_FAILED', reason: `rollback: ${problem}` };
    }
    return { type: 'ROLLBACK_SUCCEEDED' };
  };

  // --- The machine drives ---------------------------------------------------------------------------------------
  const perform = async (
    actions: readonly { type: string; params?: unknown }[],
    context: { failure?: string; failedIn?: MachineState },
  ): Promise<UpgradeEvent> => {
    const work = actions.filter((a): a is UpgradeAction => ['runPhase', 'openGate', 'awaitOperator', 'runRollback'].includes(a.type));
    const action = work[work.length - 1];
    if (!action) throw ApplicationFailure.nonRetryable(`machine entered a state without work: ${JSON.stringify(actions)}`);
    switch (action.type) {
      case 'runPhase':
        return runPhase(action.params.phase);
      case 'openGate':
        return waitAtGate(action.params.gate);
      case 'awaitOperator': {
        const failedPhase = action.params.rollingBack ? 'rolling-back' : PUBLIC_PHASE[context.failedIn ?? 'preflight'];
        return waitForOperator(action.params.rollingBack, context.failure ?? 'a step failed', failedPhase);
      }
      case 'runRollback':
        return runRollback();
    }
  };

  const ROLLBACK_STATES: MachineState[] = ['rollingBack', 'rollbackAwaitingOperator'];
  let cancelled: unknown;
  let [snapshot, actions] = initialTransition(upgradeMachine, { gates: run.gates });
  while (snapshot.status === 'active') {
    const state = snapshot.value as MachineState;
    status.phase = PUBLIC_PHASE[state];
    status.failure = snapshot.context.failure;
    publish();
    let event: UpgradeEvent;
    try {
      // Compensation runs to the end even when the run is cancelled: it must never stop half-way.
      event = ROLLBACK_STATES.includes(state) || cancelled
        ? await CancellationScope.nonCancellable(() => perform(actions, snapshot.context))
        : await perform(actions, snapshot.context);
    } catch (error) {
      if (!isCancellation(error) || cancelled) throw error;
      cancelled = error;
      event = { type: 'CANCELLED' };
      status.decisions.push({ gate: 'guided-failure', approver: 'cancellation', decision: 'rollback', at: new Date().toISOString() });
    }
    [snapshot, actions] = transition(upgradeMachine, snapshot, event);
  }
  const final = snapshot.value as MachineState;
  status.phase = PUBLIC_PHASE[final];
  status.failure = snapshot.context.failure;
  publish();

  if (cancelled) throw cancelled;
  if (final === 'failed') {
    throw ApplicationFailure.nonRetryable(snapshot.context.failure ?? 'upgrade failed', 'UpgradeFailed', publicStatus());
  }
  return {
    outcome: final === 'completed' ? 'completed' : final === 'rolledBack' ? 'rolled-back' : 'rejected',
    fleet: plan.fleet,
    target: plan.target,
    hosts: run.hostIds.length,
    ...(status.backup ? { backup: status.backup } : {}),
    decisions: status.decisions,
    records: status.records,
    ...(status.recordsNotKept ? { recordsNotKept: status.recordsNotKept } : {}),
    ...(snapshot.context.failure && final !== 'completed' ? { reason: snapshot.context.failure } : {}),
    ...(final === 'completed' && plan.followUp.length ? { followUp: plan.followUp } : {}),
  };
}
