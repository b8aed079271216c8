/**
 * The run's signals, updates and query, wired to FleetRun. Every decision is checked by a pure rule first
 * (core/gates.ts, core/operator.ts): an update's validator refuses it with the reason, a refused signal is dropped
 * with a warning, and neither changes anything.
 */
import { log, setHandler } from '@temporalio/workflow';
import { refuseDecision } from '../core/gates';
import { refuseOperatorAction } from '../core/operator';
import type { ApprovalInput, OperatorAction, OperatorInput } from '../core/status';
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

function registerGateHandlers(run: FleetRun): void {
  for (const [kind, signal, update, description] of GATE_HANDLERS) {
    const refusal = (input: ApprovalInput) => refuseDecision(run.status.pendingGate, input, kind);
    setHandler(
      signal,
      (input: ApprovalInput) => {
        const refused = refusal(input);
        if (refused) log.warn(`${kind} signal refused: ${refused}`);
        else run.decideGate(kind, input);
      },
      { description },
    );
    setHandler(update, (input: ApprovalInput) => (run.decideGate(kind, input), run.publicStatus()), {
      validator: (input: ApprovalInput) => {
        const refused = refusal(input);
        if (refused) throw new Error(refused);
      },
      description: `${description}; answers with the run's status, or refuses with the reason.`,
    });
  }
}

function registerOperatorHandlers(run: FleetRun): void {
  for (const [action, signal, update, description] of OPERATOR_HANDLERS) {
    const refusal = (input: OperatorInput) => refuseOperatorAction(run.status.awaitingOperator, action as OperatorAction, input);
    setHandler(
      signal,
      (input: OperatorInput) => {
        const refused = refusal(input);
        if (refused) log.warn(`${action} signal refused: ${refused}`);
        else run.chooseForFailure(action, input);
      },
      { description },
    );
    setHandler(update, (input: OperatorInput) => (run.chooseForFailure(action, input), run.publicStatus()), {
      validator: (input: OperatorInput) => {
        const refused = refusal(input);
        if (refused) throw new Error(refused);
      },
      description,
    });
  }
}

export function registerHandlers(run: FleetRun): void {
  registerGateHandlers(run);
  registerOperatorHandlers(run);
  setHandler(statusQuery, () => run.publicStatus(), { description: 'Phase, every host, the pending gate or failure, and every decision.' });
}
