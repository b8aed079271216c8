/**
 * Runs wait at gates for days and outlive deploys: every recorded workflow shape in test/histories must replay
 * against today's workflow code. Re-record with `npm run record-histories` only for a deliberate, patched() change.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { HISTORIES_DIR, WORKFLOW_IDS_FILE, workflowBundle } from '../helpers';

const SHAPES = [
  'completed',
  'rejected',
  'all-gates',
  'invalid-plan',
  'rolled-back',
  'retried',
  'cancelled',
  'prerequisites',
  'rehearsal',
  'child-workflows',
  'host-steps-child',
  'side-by-side',
  'failure-threshold',
  'sites',
  'signed-approvals',
  'refused-messages',
  'signed-plan',
  'notifications',
  'per-host-versions',
  'new-database-rollback',
  'rehearsal-before-offline',
  'offline-confirmation',
  'database-task-after-lost-worker',
  'plan-normalized',
  'every-change',
  'short-heartbeat-after-lost-worker',
  'backup-verified',
];

it('keeps a recorded history of every workflow shape', () => {
  const recorded = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json') && f !== WORKFLOW_IDS_FILE).map((f) => f.replace(/\.json$/, ''));
  expect(recorded.sort()).toEqual(expect.arrayContaining(SHAPES.sort()));
});

it('replays every recorded history without nondeterminism', async () => {
  const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json') && f !== WORKFLOW_IDS_FILE);
  // Child workflow ids derive from the parent's id, so a history replays under the id it was recorded with.
  const ids = JSON.parse(readFileSync(join(HISTORIES_DIR, WORKFLOW_IDS_FILE), 'utf8')) as Record<string, string>;
  const histories = files.map((file) => ({
    workflowId: ids[file.replace(/\.json$/, '')] ?? file,
    // JSON as `temporal workflow show --output json` exports it; the SDK converts it.
    history: JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as unknown,
  }));
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
});
