/**
 * Approvals bound to verified identities, on a real server: a worker whose trust file takes signed decisions only.
 * Keys are made as `cutover keys new` makes them, and tokens as `cutover approve --key` makes them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApplicationFailure, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeToken, readKey, signedPlan, writeNewKey } from '../../client/signing';
import type { RunStatus } from '../../core/status';
import { newNonce, signStatement } from '../../core/trust';
import { PROFILES, hostIds, labOps } from '../../lab/lab';
import { approveSignal, approveUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { atGate, failedWorkflowTasks, freshLab, labPlan, labWorker, recordHistory, uniqueId, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

function keysAndTrustFile(extra: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-trust-'));
  const key = (name: string) => ({ ...writeNewKey(name, join(dir, `${name}.key`)), text: () => readKey(join(dir, `${name}.key`)) });
  const [alice, bob, carol, mallory] = [key('alice'), key('bob'), key('carol'), key('mallory')];
  const trustFile = join(dir, 'trust.yaml');
  writeFileSync(
    trustFile,
    stringify({
      approvers: [alice, bob, carol].map((k, i) => ({ name: ['alice', 'bob', 'carol'][i], keys: [k.publicKeyLine] })),
      groups: { 'change-board': ['alice', 'bob', 'carol'], operators: ['alice'] },
      revoked: [carol.fingerprint],
      rules: [
        { fleets: ['lab-*'], gates: ['*'], actions: ['approve', 'reject'], groups: ['change-board'] },
        { fleets: ['lab-*'], gates: ['guided-failure'], actions: ['retry', 'skip', 'rollback'], groups: ['operators'] },
      ],
      ...extra,
    }),
  );
  return { trustFile, alice, bob, carol, mallory };
}

const refusal = async (promise: Promise<unknown>) => {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  return (error as WorkflowUpdateFailedError).cause?.message ?? '';
};

/** A token for alice's approval of the pending gate, with one field made wrong. */
function forged(handle: WorkflowHandle, status: RunStatus, keyText: string, change: Record<string, unknown>): string {
  return signStatement(
    {
      workflowId: handle.workflowId,
      firstRunId: status.firstRunId ?? '',
      gate: 'beforeOffline',
      opening: status.pendingGate?.opening ?? 1,
      decision: 'approve',
      planDigest: status.planDigest ?? '',
      expiresAt: new Date(Date.now() + 600_000).toISOString(),
      nonce: newNonce(new Uint8Array(randomBytes(16))),
      ...change,
    },
    keyText,
  );
}

describe('signed decisions', () => {
  it('takes only tokens signed by trusted, unrevoked keys for this run, gate, opening, decision and plan; a quorum counts keys', async () => {
    const keys = keysAndTrustFile();
    const lab = freshLab({ hosts: 2 });
    // The plan names the trust file's group: the gate's approvers are its members the policy allows.
    const plan = labPlan(hostIds(PROFILES.appv!, 2), { gates: { beforeOffline: { instructions: 'Two of the change board.', approvers: ['group:change-board'], quorum: 2 } } });
    const { worker, taskQueue, close } = await labWorker(lab, { trustFile: keys.trustFile });
    try {
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
        const status = await atGate(handle, 'beforeOffline');
        expect(status.trust).toMatchObject({ source: keys.trustFile, decisions: 'signed' });
        expect(status.pendingGate).toMatchObject({ opening: 1, quorum: 2, approvers: ['alice', 'bob', 'carol'] });
        const approve = (token: string) => handle.executeUpdate(approveUpdate, { args: [{ token }] });
        const aliceKey = keys.alice.text();

        expect(await refusal(handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] }))).toContain('accepts signed decisions only');
        expect(await refusal(approve(forged(handle, status, keys.mallory.text(), {})))).toContain(`key ${keys.mallory.fingerprint} is not in the trust policy`);
        expect(await refusal(approve(forged(handle, status, keys.carol.text(), {})))).toContain(`key ${keys.carol.fingerprint} is revoked`);
        const wrong: [Record<string, unknown>, string][] = [
          [{ workflowId: 'cutover-other' }, 'cutover-other'],
          [{ firstRunId: 'another-run' }, 'another-run'],
          [{ gate: 'beforeOnline' }, 'beforeOnline'],
          [{ opening: 2 }, '2'],
          [{ decision: 'reject' }, 'reject'],
          [{ planDigest: `sha256:${'0'.repeat(64)}` }, '0000'],
          [{ expiresAt: new Date(Date.now() - 1000).toISOString() }, 'expired'],
        ];
        for (const [change, named] of wrong) expect(await refusal(approve(forged(handle, status, aliceKey, change))), JSON.stringify(change)).toContain(named);

        const token = await makeToken(temporal.client, handle.workflowId, status, { decision: 'approve', keyText: aliceKey, validForMs: 600_000 });
        const afterAlice = await approve(token);
        expect(afterAlice.pendingGate?.approvedBy).toEqual(['alice']);
        expect(afterAlice.decisions).toMatchObject([{ approver: 'alice', decision: 'approve', key: keys.alice.fingerprint }]);
        // One key twice is one approval: the same token, or a new one from the same key, is refused.
        expect(await refusal(approve(token))).toMatch(/already|used/);
        expect(await refusal(approve(forged(handle, status, aliceKey, {})))).toContain('alice has already approved');
        expect(labOps(lab).every((op) => op.op === 'version')).toBe(true);

        // The Web UI's path: the signal "approve" with the pasted {"token": ...}.
        await handle.signal(approveSignal, { token: await makeToken(temporal.client, handle.workflowId, status, { decision: 'approve', keyText: keys.bob.text(), validForMs: 600_000 }) });
        const result = await handle.result();
        expect(result.outcome).toBe('completed');
        expect(result.decisions.map((d) => [d.approver, d.key])).toEqual([
          ['alice', keys.alice.fingerprint],
          ['bob', keys.bob.fingerprint],
        ]);
        expect((await handle.query(statusQuery)).refusedSignals).toBeUndefined();
        expect(await failedWorkflowTasks(handle)).toEqual([]);
        await recordHistory(handle, 'signed-approvals');
      });
    } finally {
      await close();
    }
  });

  it('refuses a plan naming a secret the worker may not give, before any command runs', async () => {
    const keys = keysAndTrustFile();
    const lab = freshLab({ hosts: 2 });
    const base = labPlan(hostIds(PROFILES.appv!, 2));
    const management = base.roles['management-server']!;
    const plan = {
      ...base,
      roles: {
        ...base.roles,
        'management-server': { ...management, steps: { ...management.steps, verify: { ...management.steps.verify!, run: 'labhost {{host}} verify {{version}} --token {{secret:env:TEMPORAL_API_KEY}}' } } },
      },
      database: { ...base.database, backup: { ...base.database.backup, run: `labhost db backup {{backup}} --with {{secret:file:${keys.trustFile}}}` } },
    };
    const { worker, taskQueue, close } = await labWorker(lab, { trustFile: keys.trustFile });
    try {
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan] });
        const error = await handle.result().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(WorkflowFailedError);
        const message = ((error as WorkflowFailedError).cause as ApplicationFailure).message;
        expect((error as WorkflowFailedError).cause).toMatchObject({ type: 'InvalidPlan' });
        expect(message).toContain("env:TEMPORAL_API_KEY: env:TEMPORAL_API_KEY is the worker's own setting, never a plan's secret\n  → at roles.management-server.steps.verify.run");
        expect(message).toContain(`file:${keys.trustFile}: file:${keys.trustFile} is one of the worker's own files`);
        expect(message).toContain('→ at database.backup.run');
      });
    } finally {
      await close();
    }
    expect(labOps(lab)).toEqual([]);
  });

  it('runs only plans signed by an author of the fleet where the policy requires it, before any command', async () => {
    const keys = keysAndTrustFile({ plans: { requireSigned: true, authors: [{ fleets: ['lab-*'], groups: ['operators'] }] } });
    const lab = freshLab({ hosts: 2 });
    const plan = labPlan(hostIds(PROFILES.appv!, 2));
    const { worker, taskQueue, close } = await labWorker(lab, { trustFile: keys.trustFile });
    const start = (input: unknown) => temporal.client.workflow.start('upgradeFleet', { taskQueue, workflowId: uniqueId(plan.fleet), args: [input] });
    const failure = async (input: unknown) => {
      const error = await (await start(input)).result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      return (error as WorkflowFailedError).cause as ApplicationFailure;
    };
    try {
      await worker.runUntil(async () => {
        expect(await failure(plan)).toMatchObject({ type: 'UnsignedPlan', message: expect.stringContaining('This worker runs signed plans only') });
        expect((await failure(signedPlan(plan, keys.bob.text()))).message).toContain('bob may not author plans for fleet');
        expect((await failure(signedPlan(plan, keys.mallory.text()))).message).toContain('is not in the trust policy');
        const altered = { ...signedPlan(plan, keys.alice.text()), plan: { ...plan, hosts: plan.hosts.slice(0, 1) } };
        expect((await failure(altered)).message).toContain('not this plan');
        expect(labOps(lab)).toEqual([]);

        const handle = await start(signedPlan(plan, keys.alice.text()));
        const status = await atGate(handle, 'beforeOffline');
        expect(status.planSignedBy).toEqual({ author: 'alice', key: keys.alice.fingerprint });
        // A signed plan's run is decided as any other: the token binds the plan inside the envelope.
        const token = await makeToken(temporal.client, handle.workflowId, status, { decision: 'approve', keyText: keys.alice.text(), validForMs: 600_000 });
        expect((await handle.executeUpdate(approveUpdate, { args: [{ token }] })).decisions).toMatchObject([{ approver: 'alice', key: keys.alice.fingerprint }]);
        await handle.terminate('the test has seen the signed plan start and be approved');
        await recordHistory(handle, 'signed-plan');
      });
    } finally {
      await close();
    }
  });
});
