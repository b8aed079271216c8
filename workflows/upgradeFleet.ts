/**
 * upgradeFleet: runs a validated plan in the vendor's order. The xstate machine decides what comes next; this
 * workflow performs what the machine names (phases as batch activities, gates as waits on signals/updates),
 * keeps the public status and records what would undo every completed step.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { initialTransition, transition } from 'xstate';
import type { Activities, HostOutcome } from '../activities';
import { normalizeDecision, openGate, quorumReached, refuseDecision } from '../core/gates';
import { PUBLIC_PHASE, upgradeMachine, type MachineState, type UpgradeAction, type UpgradeEvent } from '../core/machine';
import { type GateName, type HostStepName, type RetryPolicy, durationMs, validatePlan } from '../core/plan';
import { type DatabaseTask, type PhaseName, type StepBatch, PHASE_TITLES, backupName, describeBatch, planRun } from '../core/planner';
import { HOST_STATES, type ApprovalInput, type HostState, type HostStatus, type RunResult, type RunStatus } from '../core/status';
import { FleetAttribute, PhaseAttribute, approveSignal, approveUpdate, rejectSignal, rejectUpdate, statusQuery } from './messages';

/** A worker that dies mid-batch is noticed within this, not within the (possibly hour-long) step timeout. */
const HEARTBEAT_TIMEOUT_MS = 20_000;

const STATE_AFTER_STEP: Record<HostStepName, HostState> = {
  version: 'checked',
  drain: 'drained',
  stop: 'offline',
  upgrade: 'upgraded',
  start: 'started',
  verify: 'verified',
  online: 'online',
};

function retryOptions(retry: RetryPolicy): ActivityOptions['retry'] {
  return {
    maximumAttempts: retry.maxAttempts,
    initialInterval: durationMs(retry.initialInterval),
    backoffCoefficient: retry.backoff,
    maximumInterval: durationMs(retry.maxInterval),
  };
}

/** Activity option profiles: a batch gets time for every host in it, and always a heartbeat timeout. */
function hostStepActivity(batch: StepBatch) {
  const waves = Math.ceil(batch.tasks.length / batch.maxParallel);
  return proxyActivities<Activities>({
    startToCloseTimeout: batch.timeoutMs * waves + 30_000,
    heartbeatTimeout: HEARTBEAT_TIMEOUT_MS,
    retry: retryOptions(batch.retry),
    summary: describeBatch(batch),
  }).runHostStep;
}

function databaseActivity(task: DatabaseTask) {
  return proxyActivities<Activities>({
    startToCloseTimeout: task.timeoutMs + 30_000,
    heartbeatTimeout: HEARTBEAT_TIMEOUT_MS,
    retry: retryOptions(task.retry),
    summary: `database ${task.action} on ${task.host}`,
  }).runDatabaseTask;
}

function failureMessage(error: unknown): string {
  if (error instanceof ActivityFailure && error.cause) return error.cause.message;
  return error instanceof Error ? error.message : String(error);
}

export async function upgradeFleet(input: unknown): Promise<RunResult> {
  const validated = validatePlan(input);
  if (!validated.ok) {
    throw ApplicationFailure.nonRetryable(`The upgrade plan is invalid:\n${validated.message}`, 'InvalidPlan');
  }
  const plan = validated.plan;
  const run = planRun(plan, { backup: backupName(plan.fleet, plan.target, workflowInfo().runId) });

  const status: RunStatus = {
    fleet: plan.fleet,
    source: plan.source,
    target: plan.target,
    phase: 'preflight',
    hosts: Object.fromEntries(run.hostIds.map((id) => [id, { state: 'pending' } satisfies HostStatus])),
    hostCounts: {},
    decisions: [],
    undoLog: [],
  };
  let rejection: string | undefined;

  const publicStatus = (): RunStatus => {
    const hostCounts: RunStatus['hostCounts'] = {};
    for (const host of Object.values(status.hosts)) hostCounts[host.state] = (hostCounts[host.state] ?? 0) + 1;
    return { ...status, hostCounts };
  };

  const publish = () => {
    upsertSearchAttributes([
      { key: PhaseAttribute, value: status.phase },
      { key: FleetAttribute, value: plan.fleet },
    ]);
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
        `Send the signal \`approve\` with \`{"approver": "your name"}\` (or \`reject\`).`,
      );
    }
    if (status.failure) lines.push(`**Failure:** ${status.failure}`);
    setCurrentDetails(lines.join('\n\n'));
  };

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
    else rejection = `gate ${gate.gate} rejected by ${decision.approver}${decision.comment ? `: ${decision.comment}` : ''}`;
  };
  const onSignal = (kind: 'approve' | 'reject') => (decision: ApprovalInput) => {
    const refusal = refuseDecision(status.pendingGate, decision, kind);
    if (refusal) log.warn(`${kind} signal refused: ${refusal}`);
    else decide(kind, decision);
  };
  const validator = (kind: 'approve' | 'reject') => (decision: ApprovalInput) => {
    const refusal = refuseDecision(status.pendingGate, decision, kind);
    if (refusal) throw new Error(refusal);
  };
  setHandler(approveSignal, onSignal('approve'), { description: 'Approve the pending gate: {"approver": "name", "comment": "optional"}' });
  setHandler(rejectSignal, onSignal('reject'), { description: 'Reject the pending gate: {"approver": "name", "comment": "why"}' });
  setHandler(approveUpdate, (decision) => (decide('approve', decision), publicStatus()), {
    validator: validator('approve'),
    description: 'Approve the pending gate and get the run status back; refused with the reason if not allowed.',
  });
  setHandler(rejectUpdate, (decision) => (decide('reject', decision), publicStatus()), {
    validator: validator('reject'),
    description: 'Reject the pending gate; refused with the reason if not allowed.',
  });
  setHandler(statusQuery, publicStatus, { description: 'Phase, every host, the pending gate and every decision.' });

  const waitAtGate = async (name: GateName): Promise<UpgradeEvent> => {
    const gate = plan.gates[name];
    if (!gate) return { type: 'GATE_APPROVED' };
    const timeoutMs = gate.timeout ? durationMs(gate.timeout) : undefined;
    status.pendingGate = openGate(name, gate, timeoutMs ? new Date(Date.now() + timeoutMs).toISOString() : undefined);
    rejection = undefined;
    publish();
    const decided = () => rejection !== undefined || quorumReached(status.pendingGate as NonNullable<RunStatus['pendingGate']>);
    const inTime = timeoutMs === undefined ? (await condition(decided), true) : await condition(decided, timeoutMs);
    status.pendingGate = undefined;
    if (!inTime) {
      status.decisions.push({ gate: name, approver: 'timer', decision: 'expired', at: new Date().toISOString() });
      return { type: 'GATE_REJECTED', reason: `gate ${name} expired after ${gate.timeout} without approval` };
    }
    return rejection ? { type: 'GATE_REJECTED', reason: rejection } : { type: 'GATE_APPROVED' };
  };

  const allowedSources = plan.upgradePaths[plan.target] ?? [];

  /** Applies a batch's outcomes to the hosts; returns why the phase must stop, if it must. */
  const applyOutcomes = (batch: StepBatch, outcomes: HostOutcome[]): string | undefined => {
    const problems: string[] = [];
    for (const outcome of outcomes) {
      const host = status.hosts[outcome.host] as HostStatus;
      host.step = batch.step;
      const output = outcome.outputTail.trim();
      const version = output.split('\n').pop()?.trim() ?? '';
      let error: string | undefined;
      if (!outcome.ok) error = `${batch.step} failed (exit ${outcome.exitCode}) after ${outcome.attempt} attempt(s)`;
      else if (batch.step === 'version' && !allowedSources.includes(version)) {
        error = `${outcome.host} is at ${version || '(no version printed)'}: ${plan.target} can only be installed over ${allowedSources.join(' or ')}; upgrade it to ${allowedSources.join(' or ')} first`;
      }
      if (error) {
        host.state = 'failed';
        host.error = error;
        host.outputTail = outcome.outputTail;
        problems.push(`${outcome.host}: ${error}${outcome.ok ? '' : `: ${output.split('\n').pop() ?? ''}`}`);
      } else {
        host.state = STATE_AFTER_STEP[batch.step];
        delete host.error;
        delete host.outputTail;
      }
    }
    const undone = batch.tasks.filter((task) => task.undo && status.hosts[task.host]?.state !== 'failed');
    if (undone.length > 0) {
      status.undoLog.push({
        phase: status.phase,
        step: batch.step,
        hosts: undone.map((task) => task.host),
        undo: undone.map((task) => ({ host: task.host, command: task.undo as string })),
      });
    }
    return problems.length ? `${batch.step} failed on ${problems.length} host(s): ${problems.join('; ')}` : undefined;
  };

  const runBatch = async (batch: StepBatch): Promise<string | undefined> => {
    let outcomes: HostOutcome[];
    try {
      outcomes = await hostStepActivity(batch)(batch);
    } catch (error) {
      // The batch as a whole gave up (timeouts, worker lost on the last attempt): every host in it is unaccounted for.
      const message = failureMessage(error);
      outcomes = batch.tasks.map((task) => ({ host: task.host, ok: false, exitCode: -1, outputTail: message, attempt: 0 }));
    }
    const problem = applyOutcomes(batch, outcomes);
    publish();
    return problem;
  };

  const runDatabase = async (task: DatabaseTask): Promise<string> => (await databaseActivity(task)(task)).result;

  const runPhase = async (phase: PhaseName): Promise<UpgradeEvent> => {
    try {
      let checksum = '';
      for (const task of run.phases[phase].database) {
        const result = await runDatabase(task);
        if (task.action === 'checksum') checksum = result;
        if (task.action === 'backup') {
          status.backup = { name: run.backup, checksum };
          status.undoLog.push({ phase: status.phase, step: 'backup', hosts: [], undo: { restoreBackup: run.backup, checksum } });
        }
      }
      for (const batch of run.phases[phase].batches) {
        const problem = await runBatch(batch);
        if (problem) return { type: 'PHASE_FAILED', reason: `${PHASE_TITLES[phase]}: ${problem}` };
      }
      return { type: 'PHASE_SUCCEEDED' };
    } catch (error) {
      return { type: 'PHASE_FAILED', reason: `${PHASE_TITLES[phase]}: ${failureMessage(error)}` };
    }
  };

  const perform = async (actions: readonly { type: string; params?: unknown }[]): Promise<UpgradeEvent> => {
    const work = actions.filter((a): a is UpgradeAction => a.type === 'runPhase' || a.type === 'openGate');
    const action = work[work.length - 1];
    if (!action) throw ApplicationFailure.nonRetryable(`machine entered a state without work: ${JSON.stringify(actions)}`);
    return action.type === 'runPhase' ? runPhase(action.params.phase) : waitAtGate(action.params.gate);
  };

  let [snapshot, actions] = initialTransition(upgradeMachine, { gates: run.gates });
  while (snapshot.status === 'active') {
    status.phase = PUBLIC_PHASE[snapshot.value as MachineState];
    publish();
    const event = await perform(actions);
    [snapshot, actions] = transition(upgradeMachine, snapshot, event);
  }
  status.phase = PUBLIC_PHASE[snapshot.value as MachineState];
  status.failure = snapshot.context.failure;
  publish();

  if (snapshot.value === 'failed') {
    throw ApplicationFailure.nonRetryable(snapshot.context.failure ?? 'upgrade failed', 'UpgradeFailed', publicStatus());
  }
  return {
    outcome: snapshot.value === 'completed' ? 'completed' : 'rejected',
    fleet: plan.fleet,
    target: plan.target,
    hosts: run.hostIds.length,
    ...(status.backup ? { backup: status.backup } : {}),
    decisions: status.decisions,
  };
}
