/**
 * Signed decisions through the `cutover` command, as a person uses it: a key made with `cutover keys new`, a token
 * printed by `cutover token` for the Web UI, and `cutover approve --key` against a worker whose trust file takes
 * signed decisions only.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import type { RunStatus } from '../../core/status';
import { PROFILES, hostIds } from '../../lab/lab';
import { approveSignal } from '../../workflows/messages';
import type { upgradeFleet } from '../../workflows/upgradeFleet';
import { labPlan, labWorker, useTemporalClient } from '../helpers';
import { cutover, expectJson, expectOk, expectUserError, pollCutover, removeTempDirs, tempDir } from './cli';

describe('keys and signed decisions from the CLI', () => {
  const temporal = useTemporalClient();
  afterAll(removeTempDirs);

  it('makes a key, signs an approval with it, prints a token for the Web UI, and refuses a decision by name', async () => {
    const dir = tempDir();
    const keyEnv = { CUTOVER_KEY_DIR: join(dir, 'keys') };
    const made = expectOk(await cutover(['keys', 'new', '--as', 'alice'], { env: keyEnv }));
    const aliceKey = join(dir, 'keys', 'alice.key');
    expect(made).toContain(`private key: ${aliceKey}`);
    expect(statSync(aliceKey).mode & 0o777).toBe(0o600);
    const publicLine = made.split('\n').find((line) => line.startsWith('cutover-ed25519 ')) as string;
    expect(publicLine).toMatch(/^cutover-ed25519 \S+ alice$/);
    expectUserError(await cutover(['keys', 'new', '--as', 'alice'], { env: keyEnv }), 'exists', 'never overwritten');
    expectOk(await cutover(['keys', 'new', '--as', 'bob'], { env: keyEnv }));

    const trustFile = join(dir, 'trust.yaml');
    const bobLine = expectOk(await cutover(['keys', 'new', '--as', 'bob', '--file', join(dir, 'bob2.key')], { env: keyEnv })).split('\n').find((l) => l.startsWith('cutover-ed25519 '));
    writeFileSync(
      trustFile,
      stringify({
        approvers: [{ name: 'alice', keys: [publicLine] }, { name: 'bob', keys: [bobLine] }],
        groups: { board: ['alice', 'bob'] },
        rules: [{ fleets: ['*'], gates: ['*'], actions: ['approve', 'reject'], groups: ['board'] }],
      }),
    );
    const lab = join(dir, 'lab');
    expectOk(await cutover(['lab', 'up', '--hosts', '2'], { env: { CUTOVER_LAB_DIR: lab } }));
    const plan = labPlan(hostIds(PROFILES.appv!, 2), { gates: { beforeOffline: { instructions: 'Both of the board.', approvers: [], quorum: 2 } } });
    const planFile = join(dir, 'plan.yaml');
    writeFileSync(planFile, stringify(plan));
    const { worker, taskQueue, close } = await labWorker(lab, { trustFile });
    const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB_DIR: lab, ...keyEnv };
    try {
      await worker.runUntil(async () => {
        expectOk(await cutover(['start', planFile], { env }));
        await pollCutover(['status', plan.fleet, '--json'], { env }, (r) => ((JSON.parse(r.stdout) as RunStatus).pendingGate ? true : undefined), 'the gate');
        const text = expectOk(await cutover(['status', plan.fleet], { env }));
        expect(text).toContain(`cutover approve cutover-${plan.fleet} --key YOUR.key`);

        expectUserError(await cutover(['approve', plan.fleet, '--as', 'alice'], { env }), 'approve refused', 'accepts signed decisions only');
        expect(expectOk(await cutover(['approve', plan.fleet, '--key', aliceKey, '--comment', 'window open'], { env }))).toMatch(/approved by alice \(key SHA256:\S+\)/);

        // The Web UI path: the token `cutover token` prints is the whole input of the signal "approve".
        const token = expectJson<{ token: string }>(await cutover(['token', 'approve', plan.fleet, '--key', join(dir, 'bob2.key')], { env }));
        expect(token.token).toMatch(/^cutover1\./);
        await temporal.client.workflow.getHandle(`cutover-${plan.fleet}`).signal(approveSignal, token);
        const result = await temporal.client.workflow.getHandle<typeof upgradeFleet>(`cutover-${plan.fleet}`).result();
        expect(result.outcome).toBe('completed');
        expect(result.decisions.map((d) => [d.approver, d.comment])).toEqual([
          ['alice', 'window open'],
          ['bob', undefined],
        ]);
      });
    } finally {
      await close();
    }
  });
});
