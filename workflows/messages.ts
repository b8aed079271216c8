/**
 * Signals, updates and queries of upgradeFleet, defined once and shared by the workflow, the CLI and the tests.
 * Signals carry small JSON payloads so the Web UI's "Send a Signal" works; updates answer yes/no with a reason.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { HostStepsProgress } from '../core/progress';
import type { ApprovalInput, OperatorInput, RunStatus } from '../core/status';

export const WORKFLOW_TYPE = 'upgradeFleet';

export const approveSignal = defineSignal<[ApprovalInput]>('approve');
export const rejectSignal = defineSignal<[ApprovalInput]>('reject');
export const approveUpdate = defineUpdate<RunStatus, [ApprovalInput]>('approveGate');
export const rejectUpdate = defineUpdate<RunStatus, [ApprovalInput]>('rejectGate');
export const statusQuery = defineQuery<RunStatus>('status');
/** A child workflow's (runHostSteps) batches finished so far, for the parent's status while the child runs. */
export const hostStepsProgressQuery = defineQuery<HostStepsProgress>('progress');

/** Guided failure: what the operator does about a step that used up its retries. */
export const retrySignal = defineSignal<[OperatorInput]>('retry');
export const skipSignal = defineSignal<[OperatorInput]>('skip');
export const rollbackSignal = defineSignal<[OperatorInput]>('rollback');
export const retryUpdate = defineUpdate<RunStatus, [OperatorInput]>('retryStep');
export const skipUpdate = defineUpdate<RunStatus, [OperatorInput]>('skipHost');
export const rollbackUpdate = defineUpdate<RunStatus, [OperatorInput]>('rollbackRun');

export const PhaseAttribute = defineSearchAttributeKey('CutoverPhase', SearchAttributeType.KEYWORD);
export const FleetAttribute = defineSearchAttributeKey('CutoverFleet', SearchAttributeType.KEYWORD);

/** One open run per fleet: the workflow id is derived from the fleet. */
export function workflowIdForFleet(fleet: string): string {
  return `cutover-${fleet}`;
}
