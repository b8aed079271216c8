/**
 * The message channel cannot wedge a run: every signal and update payload is parsed, a malformed one is refused
 * (an update says why, a signal is counted), no workflow task fails, and one valid approval still completes the run.
 * And the child workflow cannot be started on its own, past every gate.
 */
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { PROFILES, hostIds, labOps } from '../../lab/lab';
import { approveUpdate, statusQuery } from '../../workflows/messages';
import { runHostSteps } from '../../workflows/runHostSteps';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { atGate, failedWorkflowTasks, freshLab, labPlan, labWorker, recordHistory, uniqueId, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

/** Payloads a person or a script might send by mistake, or on purpose, through the Web UI or the temporal CLI. */
const MALFORMED: unknown[] = [
  null,
  42,
  'alice',
  [],
  {},
  { approver: { toString: 1 } },
  { approver: 'mallory', gate: { toString: 1 } },
  { approver: 'mallory', comment: { text: 'object comment' } },
  { approver: 'x'.repeat(10_000) },
  { approver: '   ' },
  { approver: 'mallory', role: 'admin' },
  JSON.parse('{"__proto__": {"approver": "alice"}}'),
  { operator: 'olga', hosts: 'appv-02' },
  { operator: 'olga', hosts: [1, 2] },
  { operator: ['olga'] },
  // Signed-decision shapes: a token that is no text, a huge one, a forged one, one with a name beside it.
  { token: 42 },
  { token: { toString: 1 } },
  { token: 'x'.repeat(100_000) },
  { token: 'cutover1.AAAA.BBBB' },
  { token: 'cutover1.AAAA.BBBB', approver: 'alice' },
];

const SIGNALS = ['approve', 'reject', 'retry', 'skip', 'rollback'];
const UPDATES = ['approveGate', 'rejectGate', 'retryStep', 'skipHost', 'rollbackRun'];

describe('the message channel', () => {
  it('refuses every malformed payload on every signal and update, and the run goes on to complete', async () => {
    const lab = freshLab({ hosts: 2 });
    const plan = labPlan(hostIds(PROFILES.appv!, 2));
    const { worker, taskQueue, close } = await labWorker(lab);
    try {
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
        await atGate(handle, 'beforeOffline');

        const reasons: string[] = [];
        for (const update of UPDATES) {
          for (const payload of MALFORMED) {
            const error = await handle.executeUpdate(update, { args: [payload] }).catch((e: unknown) => e);
            expect(error, `${update} ${JSON.stringify(payload)?.slice(0, 60)}`).toBeInstanceOf(WorkflowUpdateFailedError);
            reasons.push((error as WorkflowUpdateFailedError).cause?.message ?? '');
          }
        }
        // Each refusal names the update and the field, in one line.
        expect(reasons.every((reason) => reason.length > 0 && !reason.includes('\n'))).toBe(true);
        expect(reasons).toContain('approveGate update refused: gate: Invalid input: expected string, received object');
        expect(reasons.some((r) => r.startsWith('approveGate update refused: comment:'))).toBe(true);
        expect(reasons.some((r) => r.startsWith('approveGate update refused: approver: at most 128 characters'))).toBe(true);
        expect(reasons.some((r) => r.includes('Unrecognized key') && r.includes('__proto__'))).toBe(true);

        for (const signal of SIGNALS) for (const payload of MALFORMED) await handle.signal(signal, payload);
        const status = await handle.query(statusQuery);
        expect(status.refusedSignals).toBe(SIGNALS.length * MALFORMED.length);
        expect(status.decisions).toEqual([]);
        expect(status.pendingGate).toMatchObject({ gate: 'beforeOffline', approvedBy: [] });
        expect(labOps(lab).every((op) => op.op === 'version')).toBe(true);

        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
        expect((await handle.result()).outcome).toBe('completed');
        expect(await failedWorkflowTasks(handle)).toEqual([]);
        await recordHistory(handle, 'refused-messages');
      });
    } finally {
      await close();
    }
  });

  it('refuses to run runHostSteps without its upgradeFleet parent', async () => {
    const lab = freshLab({ hosts: 1 });
    const { worker, taskQueue, close } = await labWorker(lab);
    try {
      await worker.runUntil(async () => {
        const batch = { step: 'upgrade', role: 'management-server', hosts: ['appv-01'], command: 'labhost {{host}} install 4.5', maxParallel: 1, timeoutMs: 10_000, retry: { maxAttempts: 1, initialInterval: '1s', backoff: 1, maxInterval: '1s' } };
        const started = temporal.client.workflow.execute(runHostSteps, { taskQueue, workflowId: uniqueId('direct'), args: [{ batches: [batch as never], failureBudget: 0 }] });
        const error = await started.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WorkflowFailedError);
        expect((error as WorkflowFailedError).cause?.message).toBe('runHostSteps runs only as a child of an upgradeFleet run; start upgradeFleet instead');
      });
    } finally {
      await close();
    }
    expect(labOps(lab).filter((op) => op.op !== 'version')).toEqual([]);
  });
});
