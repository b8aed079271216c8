/**
 * The run's signals, updates and query, wired to FleetRun. Every payload is parsed (core/inputs.ts), then checked by a
 * pure rule (core/gates.ts, core/operator.ts): an update's validator refuses it with the reason, a refused signal is
 * logged and counted in the status, and neither changes anything. No handler throws into the workflow task.
 */
import { ApplicationFailure, log, setHandler } from '@temporalio/workflow';
import type { z } from 'zod';
import { refuseDecision } from '../core/gates';
import { ApprovalInput, OperatorInput, parseInput } from '../core/inputs';
import { refuseOperatorAction } from '../core/operator';
import type { RunStatus } from '../core/status';
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
  ['approve', approveSignal, approveUpdate, 'Approve the pending gate: {"approver": "name", "comment": "optional"}'],
  ['reject', rejectSignal, rejectUpdate, 'Reject the pending gate: {"approver": "name", "comment": "why"}'],
] as const;

const OPERATOR_HANDLERS = [
  ['retry', retrySignal, retryUpdate, 'Run the failed step again on the hosts that failed: {"operator": "name"}'],
  ['skip', skipSignal, skipUpdate, 'Go on without failed hosts, where the plan allows: {"operator": "name", "host": "id"} or {"operator": "name", "hosts": ["id", ...]}'],
  ['rollback', rollbackSignal, rollbackUpdate, 'Roll the whole fleet back to the source version: {"operator": "name"}'],
] as const;

/** A decision message: how its payload parses, when the run refuses it, and what accepting it does. */
interface Decision<T> {
  schema: z.ZodType<T>;
  /** Why the run refuses this (parsed) decision now, or undefined when it accepts it. */
  refuse: (input: T) => string | undefined;
  accept: (input: T) => void;
}

/** A decision as a signal: refused ones (unparsable or not allowed) are logged and counted, and change nothing. */
function signalHandler<T>(run: FleetRun, name: string, decision: Decision<T>): (raw: unknown) => void {
  return (raw) => {
    try {
      const parsed = parseInput(decision.schema, raw, `${name} signal`);
      const refused = parsed.ok ? decision.refuse(parsed.value) : parsed.reason;
      if (refused === undefined && parsed.ok) return decision.accept(parsed.value);
      run.countRefusedSignal();
      log.warn(parsed.ok ? `${name} signal refused: ${refused}` : (refused as string));
    } catch (error) {
      // A handler that throws fails every workflow task from then on: a bug here must cost one signal, not the run.
      run.countRefusedSignal();
      log.error(`${name} signal could not be handled: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
}

/** The validator of a decision as an update: the sender learns why it was refused, and nothing changed. */
function updateValidator<T>(name: string, decision: Decision<T>): (raw: unknown) => void {
  return (raw) => {
    const parsed = parseInput(decision.schema, raw, `${name} update`);
    if (!parsed.ok) throw new Error(parsed.reason);
    const refused = decision.refuse(parsed.value);
    if (refused) throw new Error(refused);
  };
}

/**
 * The update's handler. Validators do not run on replay, so the handler parses again; it runs only after its validator
 * accepted the input, and an error in it fails the update, never the workflow task.
 */
function updateHandler<T>(run: FleetRun, name: string, decision: Decision<T>): (raw: unknown) => RunStatus {
  return (raw) => {
    try {
      const parsed = parseInput(decision.schema, raw, `${name} update`);
      if (parsed.ok) decision.accept(parsed.value);
      return run.publicStatus();
    } catch (error) {
      throw ApplicationFailure.nonRetryable(`${name} could not be handled: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
}

function registerGateHandlers(run: FleetRun): void {
  for (const [kind, signal, update, description] of GATE_HANDLERS) {
    const decision: Decision<ApprovalInput> = {
      schema: ApprovalInput,
      refuse: (input) => refuseDecision(run.status.pendingGate, input, kind),
      accept: (input) => run.decideGate(kind, input),
    };
    setHandler(signal, signalHandler(run, signal.name, decision), { description });
    setHandler(update, updateHandler(run, update.name, decision), {
      validator: updateValidator(update.name, decision),
      description: `${description}; answers with the run's status, or refuses with the reason.`,
    });
  }
}

function registerOperatorHandlers(run: FleetRun): void {
  for (const [action, signal, update, description] of OPERATOR_HANDLERS) {
    const decision: Decision<OperatorInput> = {
      schema: OperatorInput,
      refuse: (input) => refuseOperatorAction(run.status.awaitingOperator, action, input),
      accept: (input) => run.chooseForFailure(action, input),
    };
    setHandler(signal, signalHandler(run, signal.name, decision), { description });
    setHandler(update, updateHandler(run, update.name, decision), { validator: updateValidator(update.name, decision), description });
  }
}

export function registerHandlers(run: FleetRun): void {
  registerGateHandlers(run);
  registerOperatorHandlers(run);
  setHandler(statusQuery, () => run.publicStatus(), { description: 'Phase, every host, the pending gate or failure, and every decision.' });
}
