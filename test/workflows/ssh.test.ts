/**
 * A lab fleet upgraded over SSH, on a real Temporal server: every host is a real OpenSSH server on a loopback port
 * (test/sshd.ts) whose sessions drive the lab, so each step travels worker → ssh → sshd → labhost.
 */
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { LAB_BIN, labFault, labOps, labStatus } from '../../lab/lab';
import { retryUpdate, statusQuery } from '../../workflows/messages';
import { approvedRun, atGuidedFailure, freshLab, labPlan, quickRetries, useTemporalClient } from '../helpers';
import { type SshFleet, keygen, sshFleetPerTest, startProxy } from '../sshd';

const temporal = useTemporalClient();
const HOSTS = ['appv-01', 'appv-02', 'appv-03'];

const startFleet = sshFleetPerTest();

/** A fresh lab behind three sshd, and the lab plan with every host on the ssh transport. */
async function sshLab(transport?: (fleet: SshFleet, id: string) => UpgradePlan['hosts'][number]['transport']) {
  const lab = freshLab({ hosts: HOSTS.length });
  const started = await startFleet(HOSTS, { PATH: `${LAB_BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`, CUTOVER_LAB_DIR: lab });
  const base = labPlan(HOSTS);
  const plan: UpgradePlan = { ...base, hosts: base.hosts.map((host) => ({ ...host, transport: transport?.(started, host.id) ?? started.transport(host.id) })) };
  return { lab, fleet: started, plan };
}

describe('upgradeFleet over ssh', () => {
  it('upgrades the whole fleet through three sshd, one reused connection per host', async () => {
    const { lab, fleet, plan } = await sshLab((f, id) => (id === 'appv-03' ? f.transport(id, { hostKey: undefined, knownHosts: f.knownHosts }) : f.transport(id)));
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.records.filter((r) => r.step === 'upgrade').map((r) => r.host).sort()).toEqual(HOSTS);
    });
    const status = labStatus(lab);
    expect(status.database.schema).toBe('4.5');
    for (const host of status.hosts) expect(host, host.id).toMatchObject({ version: '4.5', services: { AppVServer: 'running' }, online: true });
    // Every step reached its host through that host's sshd, all of them over the one connection the worker keeps.
    expect(fleet.hosts.map((host) => host.logins())).toEqual([1, 1, 1]);
    for (const id of HOSTS) expect(labOps(lab).filter((op) => op.host === id && op.result === 'ok').length, id).toBeGreaterThanOrEqual(7);
  });

  it('a host whose key is not the pinned one fails at once, naming the host and the key it presented', async () => {
    const impostor = (f: SshFleet) => `ssh-ed25519 ${keygen(join(f.dir, 'impostor')).fingerprint}`;
    const { lab, fleet, plan } = await sshLab((f, id) => (id === 'appv-02' ? f.transport(id, { hostKey: impostor(f) }) : f.transport(id)));
    const pinned = (plan.hosts[1]?.transport as { hostKey: string }).hostKey;
    const refusal = `host key of appv-02 (127.0.0.1:${fleet.host('appv-02').port}) is ${fleet.host('appv-02').fingerprint} (ssh-ed25519), not the pinned ${pinned}: if the host was reinstalled, check the new key with its administrator and update transport.hostKey`;
    // The version step allows 3 attempts; a rejected host key uses one.
    expect(plan.roles['management-server']?.steps.version?.retry.maxAttempts).toBe(3);
    await approvedRun(
      temporal.client,
      plan,
      lab,
      async (handle) => {
        // Preflight reaches every host before anything changes: the run fails there, the fleet untouched.
        const error = await handle.result().then(
          () => undefined,
          (failure: unknown) => failure,
        );
        expect(error).toBeInstanceOf(WorkflowFailedError);
        expect((error as WorkflowFailedError).cause?.message).toBe(
          `Preflight: reach every host and check its version: version failed on 1 host(s): appv-02: version failed (exit -1) after 1 attempt(s) (${refusal})`,
        );
        const status = await handle.query(statusQuery);
        expect(status.hosts['appv-02']).toEqual({ state: 'failed', step: 'version', error: 'version failed (exit -1) after 1 attempt(s)', outputTail: refusal });
        expect(status.hosts['appv-01']?.state).toBe('checked');
      },
      { gates: [] },
    );
    expect(fleet.host('appv-02').logins()).toBe(0);
    expect(labOps(lab).filter((op) => op.host === 'appv-02')).toEqual([]);
  });

  it('a connection dropped in the middle of an upgrade is retried, and the run completes', async () => {
    let proxy: Awaited<ReturnType<typeof startProxy>> | undefined;
    const { lab, fleet, plan } = await sshLab();
    try {
      proxy = await startProxy(fleet.host('appv-02').port);
      const throughProxy = { ...plan, hosts: plan.hosts.map((host) => (host.id === 'appv-02' ? { ...host, transport: { ...(host.transport as object), port: proxy!.port } as typeof host.transport } : host)) };
      labFault(lab, 'appv-02', 'install', { delaySeconds: 3 });
      const delays = () => labOps(lab).filter((op) => op.host === 'appv-02' && op.op.startsWith('install') && op.result === 'fault');
      await approvedRun(temporal.client, throughProxy, lab, async (handle) => {
        await expect.poll(() => delays().length, { timeout: 60_000, interval: 100 }).toBe(1);
        proxy!.drop();
        const result = await handle.result();
        expect(result.outcome).toBe('completed');
        // The one retry in the run, and why: the retried attempt's start event keeps the failure before it.
        const retries = (await handle.fetchHistory()).events
          ?.map((event) => event.activityTaskStartedEventAttributes)
          .filter((started) => (started?.attempt ?? 1) > 1)
          .map((started) => started?.lastFailure?.message);
        expect(retries).toEqual([expect.stringMatching(/^upgrade failed on 1 of 2 host\(s\), first appv-02 \(exit -1\): cannot reach appv-02: the (connection to|session on) \S+@127\.0\.0\.1:\d+ /)]);
      });
      // The install ran a second time over a new connection (the first one's fate was unknown to the worker).
      expect(delays().length).toBe(2);
      expect(proxy.connections()).toBe(2);
      expect(labStatus(lab).hosts.find((h) => h.id === 'appv-02')).toMatchObject({ version: '4.5', services: { AppVServer: 'running' }, online: true });
    } finally {
      await proxy?.close();
    }
  });

  it('a command that fails goes to the guided failure with its output tail; fixed and retried, the run completes', async () => {
    const { lab, plan } = await sshLab();
    labFault(lab, 'appv-03', 'verify', 'always');
    await approvedRun(temporal.client, quickRetries(plan), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.step).toBe('verify');
      expect(failed.awaitingOperator?.hosts).toEqual([
        { host: 'appv-03', error: 'verify failed (exit 1) after 2 attempt(s)', outputTail: 'FAULT: injected permanent failure of verify on appv-03\n' },
      ]);
      labFault(lab, 'appv-03', 'verify', 'clear');
      await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
      expect((await handle.result()).outcome).toBe('completed');
    });
    expect(labStatus(lab).hosts.every((host) => host.version === '4.5' && host.online)).toBe(true);
  });
});
