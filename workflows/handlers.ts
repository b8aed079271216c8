/**
 * The run's signals, updates and query, wired to FleetRun. Every payload is parsed (core/inputs.ts), then checked by a
 * pure rule (core/gates.ts, core/operator.ts): an update's validator refuses it with the reason, a refused signal is
 * logged and counted in the status, and neither changes anything. No handler throws into the workflow task.
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import type { z } from 'zod';
import { refuseDecision } from '../core/gates';
import { type Authenticated, type Decider, authenticateApproval, authenticateOperator } from '../core/authority';
import { ApprovalInput, type DecisionInput, LegacyApprovalInput, LegacyOperatorInput, OperatorInput, parseDecisionInput } from '../core/inputs';
import { notWaitingReason, refuseOperatorAction } from '../core/operator';
import type { OperatorAction, RunStatus } from '../core/status';
import type { FleetRun } from './fleetRun';
import {
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

const GATE_HANDLERS = [
  ['approve', approveSignal, approveUpdate, 'Approve the pending gate: {"token": "cutover1..."} from `cutover token`, or {"approver": "name"} where the policy accepts names'],
  ['reject', rejectSignal, rejectUpdate, 'Reject the pending gate: {"token": "cutover1..."}, or {"approver": "name", "comment": "why"} where the policy accepts names'],
] as const;

const OPERATOR_HANDLERS = [
  ['retry', retrySignal, retryUpdate, 'Run the failed step again on the hosts that failed: {"operator": "name"}'],
  ['skip', skipSignal, skipUpdate, 'Go on without failed hosts, where the plan allows: {"operator": "name", "host": "id"} or {"operator": "name", "hosts": ["id", ...]}'],
  ['rollback', rollbackSignal, rollbackUpdate, 'Roll the whole fleet back to the source version: {"operator": "name"}'],
] as const;

/** A decision message: how a decision by name parses, who took it and whether the run takes it now, and what that does. */
interface DecisionMessage<Named> {
  named: z.ZodType<Named>;
  /** How a run from before strict parsing reads the same payload (core/inputs.ts). */
  legacy: z.ZodType<Named, unknown>;
  /** The decider, authenticated (a token verified, or a name the policy accepts) and allowed now; or why not. */
  check: (input: DecisionInput<Named>) => Authenticated;
  accept: (decider: Decider) => void;
}

function checked<Named>(run: FleetRun, message: DecisionMessage<Named>, raw: unknown, name: string): Authenticated {
  const parsed = parseDecisionInput(message.named, raw, name, run.versions.trusted ? undefined : message.legacy);
  return parsed.ok ? message.check(parsed.value) : parsed;
}

/** A decision as a signal: refused ones (unparsable, unproven or not allowed) are logged and counted, and change nothing. */
function signalHandler<Named>(run: FleetRun, name: string, message: DecisionMessage<Named>): (raw: unknown) => void {
  return (raw) => {
    try {
      const result = checked(run, message, raw, `${name} signal`);
      if (result.ok) return message.accept(result.decider);
      run.countRefusedSignal();
      log.warn(`${name} signal refused: ${result.reason}`);
    } catch (error) {
      // A handler that throws fails every workflow task from then on: a bug here must cost one signal, not the run.
      run.countRefusedSignal();
      log.error(`${name} signal could not be handled: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
}

/** The validator of a decision as an update: the sender learns why it was refused, and nothing changed. */
function updateValidator<Named>(run: FleetRun, name: string, message: DecisionMessage<Named>): (raw: unknown) => void {
  return (raw) => {
    const result = checked(run, message, raw, `${name} update`);
    if (!result.ok) throw new Error(result.reason);
  };
}

/**
 * The update's handler. Validators do not run on replay, so the handler checks again (with the same state and
 * workflow time, so with the same answer); an error in it fails the update, never the workflow task.
 */
function updateHandler<Named>(run: FleetRun, name: string, message: DecisionMessage<Named>): (raw: unknown) => RunStatus {
  return (raw) => {
    try {
      const result = checked(run, message, raw, `${name} update`);
      if (result.ok) message.accept(result.decider);
      return run.publicStatus();
    } catch (error) {
      throw ApplicationFailure.nonRetryable(`${name} could not be handled: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
}

/** Then the gate's own rules: the gate is pending, the decider may decide it, and has not approved it yet. */
function gateDecision(run: FleetRun, kind: 'approve' | 'reject'): DecisionMessage<ApprovalInput> {
  return {
    named: ApprovalInput,
    legacy: LegacyApprovalInput,
    check: (input) => {
      const pending = run.status.pendingGate;
      if (!pending) return { ok: false, reason: 'named' in input && input.named.gate ? `gate ${input.named.gate} is not pending` : 'no gate is pending' };
      const proven = authenticateApproval(run.trust, input, { gate: pending.gate, opening: pending.opening ?? 0, decision: kind }, Date.now());
      if (!proven.ok) return proven;
      const { name, gate } = proven.decider;
      const refused = refuseDecision(pending, { approver: name, ...(gate ? { gate } : {}) }, kind);
      return refused ? { ok: false, reason: refused } : proven;
    },
    accept: (decider) => run.decideGate(kind, decider),
  };
}

/** Then guided failure's own rules: the run waits for an operator, and a skip names failed hosts it may skip. */
function operatorDecision(run: FleetRun, action: OperatorAction): DecisionMessage<OperatorInput> {
  return {
    named: OperatorInput,
    legacy: LegacyOperatorInput,
    check: (input) => {
      const waiting = run.status.awaitingOperator;
      if (!waiting) return { ok: false, reason: notWaitingReason(run.status.pendingGate?.gate) };
      const proven = authenticateOperator(run.trust, input, { gate: 'guided-failure', opening: waiting.opening ?? 0, decision: action }, Date.now());
      if (!proven.ok) return proven;
      const { name, hosts } = proven.decider;
      const refused = refuseOperatorAction(waiting, action, { operator: name, ...(hosts ? { hosts } : {}) });
      return refused ? { ok: false, reason: refused } : proven;
    },
    accept: (decider) => run.chooseForFailure(action, decider),
  };
}

function registerGateHandlers(run: FleetRun): void {
  for (const [kind, signal, update, description] of GATE_HANDLERS) {
    const message = gateDecision(run, kind);
    setHandler(signal, signalHandler(run, signal.name, message), { description });
    setHandler(update, updateHandler(run, update.name, message), {
      validator: updateValidator(run, update.name, message),
      description: `${description}; answers with the run's status, or refuses with the reason.`,
    });
  }
}

function registerOperatorHandlers(run: FleetRun): void {
  for (const [action, signal, update, description] of OPERATOR_HANDLERS) {
    const message = operatorDecision(run, action);
    setHandler(signal, signalHandler(run, signal.name, message), { description });
    setHandler(update, updateHandler(run, update.name, message), { validator: updateValidator(run, update.name, message), description });
  }
}

export function registerHandlers(run: FleetRun): void {
  registerGateHandlers(run);
  registerOperatorHandlers(run);
  setHandler(statusQuery, () => run.publicStatus(), { description: 'Phase, every host, the pending gate or failure, and every decision.' });
}
