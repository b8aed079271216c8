/**
 * Database tasks hold their database's lock and journal: two at once run one after the other, and a retry takes
 * the result an earlier attempt journaled instead of running the command again.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { type DatabaseOutcome, createDatabaseActivities } from '../../activities/database';
import { activityKey, databaseJournalFile } from '../../activities/databaseLock';
import type { SingleHostTask } from '../../core/planner';
import { createLocalTransport } from '../../transport/local';

const local = { kind: 'local' as const };

function task(action: SingleHostTask['action'], command: string): SingleHostTask {
  return { action, host: 'db-01', command, transport: local, timeoutMs: 10_000, retry: { maxAttempts: 2, initialInterval: '1s', backoff: 2, maxInterval: '1m' } };
}

function run(journalDir: string, activity: { workflowId: string; runId: string; activityId: string; attempt?: number }, input: SingleHostTask): Promise<DatabaseOutcome> {
  const { runDatabaseTask } = createDatabaseActivities({ runner: createLocalTransport(), journalDir });
  const env = new MockActivityEnvironment(
    { workflowExecution: { workflowId: activity.workflowId, runId: activity.runId }, activityId: activity.activityId, attempt: activity.attempt ?? 1 },
    { logger: new DefaultLogger('ERROR') },
  );
  return env.run<[SingleHostTask], DatabaseOutcome, typeof runDatabaseTask>(runDatabaseTask, input);
}

it('runs two tasks on one database one after the other, even from two runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-dblock-'));
  const log = join(dir, 'log');
  const command = (name: string) => `echo "${name} in" >> ${log}; sleep 0.4; echo "${name} out" >> ${log}; echo 0123abcd`;
  const outcomes = await Promise.all([
    run(dir, { workflowId: 'a', runId: 'r1', activityId: '1' }, task('restore', command('restore'))),
    run(dir, { workflowId: 'b', runId: 'r2', activityId: '1' }, task('backup', command('backup'))),
  ]);
  expect(outcomes.map((o) => o.result)).toEqual(['0123abcd', '0123abcd']);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  // Never "x in", "y in": each task's command ends before the other's starts.
  expect([lines[0]?.split(' ')[1], lines[1]?.split(' ')[1], lines[2]?.split(' ')[1], lines[3]?.split(' ')[1]]).toEqual(['in', 'out', 'in', 'out']);
});

it("takes the result of an earlier attempt that finished after its worker was lost, and runs nothing", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-dblock-'));
  const activity = { workflowId: 'wf', runId: 'run', activityId: '9' };
  const input = task('restore', `touch ${join(dir, 'ran')}; echo restored`);
  // What the killed worker's spawner journaled after its worker's last word.
  writeFileSync(databaseJournalFile(dir, input), `${JSON.stringify({ host: activityKey(activity), event: 'done', outputTail: 'restored from the first attempt\n' })}\n`);
  const outcome = await run(dir, { ...activity, attempt: 2 }, input);
  expect(outcome.result).toBe('restored from the first attempt');
  expect(existsSync(join(dir, 'ran'))).toBe(false);
  // Another activity of the same run does run.
  expect((await run(dir, { ...activity, activityId: '10' }, input)).result).toBe('restored');
  expect(existsSync(join(dir, 'ran'))).toBe(true);
});
