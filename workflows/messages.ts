/**
 * Signals, updates and queries of upgradeFleet, defined once and shared by the workflow, the CLI and the tests.
 * Signals carry small JSON payloads so the Web UI's "Send a Signal" works; updates answer yes/no with a reason.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { HostStepsProgress } from '../core/progress';
import type { SignedInput } from '../core/inputs';
import type { ApprovalInput, OperatorInput, RunStatus } from '../core/status';

/** A decision by name (where the worker's trust policy accepts names), or signed: `{"token": "cutover1...."}`. */
type Approval = ApprovalInput | SignedInput;
type OperatorDecision = OperatorInput | SignedInput;

export const WORKFLOW_TYPE = 'upgradeFleet';

export const approveSignal = defineSignal<[Approval]>('approve');
export const rejectSignal = defineSignal<[Approval]>('reject');
export const approveUpdate = defineUpdate<RunStatus, [Approval]>('approveGate');
export const rejectUpdate = defineUpdate<RunStatus, [Approval]>('rejectGate');
export const statusQuery = defineQuery<RunStatus>('status');
/** A child workflow's (runHostSteps) batches finished so far, for the parent's status while the child runs. */
export const hostStepsProgressQuery = defineQuery<HostStepsProgress>('progress');

/** Guided failure: what the operator does about a step that used up its retries. */
export const retrySignal = defineSignal<[OperatorDecision]>('retry');
export const skipSignal = defineSignal<[OperatorDecision]>('skip');
export const rollbackSignal = defineSignal<[OperatorDecision]>('rollback');
export const retryUpdate = defineUpdate<RunStatus, [OperatorDecision]>('retryStep');
export const skipUpdate = defineUpdate<RunStatus, [OperatorDecision]>('skipHost');
export const rollbackUpdate = defineUpdate<RunStatus, [OperatorDecision]>('rollbackRun');

export const PhaseAttribute = defineSearchAttributeKey('CutoverPhase', SearchAttributeType.KEYWORD);
export const FleetAttribute = defineSearchAttributeKey('CutoverFleet', SearchAttributeType.KEYWORD);

/** One open run per fleet: the workflow id is derived from the fleet. */
export function workflowIdForFleet(fleet: string): string {
  return `cutover-${fleet}`;
}
