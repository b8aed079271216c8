/**
 * The scale design on a real server: phases over more than hostsPerWorkflow hosts run in child workflows, small
 * batches share the parallelism, a failure threshold lets the rest of a phase go on, and a site's host steps run
 * on the site's own task queue.
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { queryStatus } from '../../client/runs';
import { BATCHES_IN_PARENT } from '../../core/budget';
import { type UpgradePlan } from '../../core/plan';
import { siteTaskQueue } from '../../core/planner';
import { PROFILES, hostIds, labFault, labOps, labStatus } from '../../lab/lab';
import { approveUpdate, skipUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { createCutoverWorker, createSiteWorker } from '../../worker/worker';
import {
  approvedRun,
  atGate,
  atGuidedFailure,
  freshLab,
  labPlan,
  quickRetries,
  recordHistory,
  uniqueId,
  waitFor,
  workflowBundle,
  useTemporalClient,
} from '../helpers';

const temporal = useTemporalClient();

type HistoryEvents = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>;
const events = async (handle: WorkflowHandle): Promise<HistoryEvents> => (await handle.fetchHistory()).events ?? [];

function withExecution(plan: UpgradePlan, execution: Partial<UpgradePlan['execution']>): UpgradePlan {
  return { ...plan, execution: { ...plan.execution, ...execution } };
}

/** Each host's upgrade in a batch of its own, as a long installer would run. */
function installerPerHost(plan: UpgradePlan): UpgradePlan {
  const role = plan.roles['management-server']!;
  return { ...plan, roles: { ...plan.roles, 'management-server': { ...role, steps: { ...role.steps, upgrade: { ...role.steps.upgrade!, batchSize: 1 } } } } };
}

describe('scale', () => {
  it('runs a phase of more one-host batches than a parent should hold in child workflows, even on a small fleet', async () => {
    const count = BATCHES_IN_PARENT + 6;
    const hosts = hostIds(PROFILES.appv!, count);
    const lab = freshLab({ hosts: count });
    // Far fewer hosts than hostsPerWorkflow, but one upgrade batch each: the parent would hold ~7 events per batch.
    const plan = withExecution(installerPerHost(labPlan(hosts)), { maxParallel: 10 });
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
      const history = await events(handle);
      const children = history.flatMap((e) => (e.childWorkflowExecutionStartedEventAttributes ? [e.childWorkflowExecutionStartedEventAttributes.workflowExecution?.workflowId ?? ''] : []));
      expect(children).toEqual([`${handle.workflowId}/upgradeRest-1`]);
      const parentHostSteps = history.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runHostStep');
      // Every other phase is one batch a step; the remaining hosts' upgrades all went to the child.
      expect(parentHostSteps.length).toBeLessThan(20);
      expect(history.length).toBeLessThan(300);
      const status = await handle.query(statusQuery);
      expect(status.hostCounts).toEqual({ online: count });
      await recordHistory(handle, 'children-by-batch-count');
    });
    const installs = labOps(lab).filter((op) => op.op.startsWith('install'));
    expect(installs.filter((op) => op.result === 'ok').map((op) => op.host).sort()).toEqual([...hosts].sort());
  }, 180_000);

  it('runs phases over more than hostsPerWorkflow hosts in child workflows, in the seeds order, every host-step once', async () => {
    const hosts = hostIds(PROFILES.appv!, 7);
    const lab = freshLab({ hosts: 7 });
    const plan = withExecution(installerPerHost(labPlan(hosts)), { hostsPerWorkflow: 3, batchSize: 3, maxParallel: 3 });
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
      const history = await events(handle);
      const children = history.flatMap((e) => (e.childWorkflowExecutionStartedEventAttributes ? [e.childWorkflowExecutionStartedEventAttributes.workflowExecution?.workflowId ?? ''] : []));
      // 7 hosts in batches of 3, a child for up to 3 hosts: drain, stop, verify and online take 3 children each; the
      // 6 remaining hosts take 2 (each child upgrades and starts its wave). Preflight's children ran before the gate.
      expect(children.filter((id) => id.includes('/drain-'))).toHaveLength(3);
      expect(children.filter((id) => id.includes('/upgradeRest-'))).toHaveLength(2);
      // Host steps of the children's phases never appear as activities of the parent: only the lone owner's and the database's.
      const parentActivities = history.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
      expect(new Set(parentActivities)).toEqual(new Set(['readTrustPolicy', 'runHostStep', 'runDatabaseTask']));
      expect(parentActivities.filter((name) => name === 'runHostStep')).toHaveLength(2); // the owner's upgrade and start

      const child = temporal.client.workflow.getHandle(children.find((id) => id.includes('/upgradeRest-')) as string);
      const childHistory = await events(child);
      const installs = childHistory.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runHostStep');
      expect(installs.length).toBeGreaterThanOrEqual(4); // 3 one-host upgrades + the wave's start batch
      await recordHistory(handle, 'child-workflows');
      await recordHistory(child, 'host-steps-child');

      const status = await handle.query(statusQuery);
      expect(status.hostCounts).toEqual({ online: 7 });
      expect(status.undoLog.filter((u) => u.step === 'upgrade').reduce((n, u) => n + u.hosts, 0)).toBe(7);
    });

    const ops = labOps(lab);
    expect(ops.filter((op) => op.result !== 'ok')).toEqual([]);
    for (const host of hosts) {
      for (const step of ['version', 'drain', 'stop', 'install', 'start', 'verify', 'online']) {
        expect(ops.filter((op) => op.host === host && op.op.split(' ')[0] === step), `${host} ${step}`).toHaveLength(1);
      }
    }
    const seqOf = (host: string, op: string) => ops.find((o) => o.host === host && o.op.startsWith(op))?.seq ?? Infinity;
    const schemaUpgrade = seqOf('appv-01', 'install 4.5 --upgrade-schema');
    for (const host of hosts) expect(seqOf(host, 'stop')).toBeLessThan(seqOf('db', 'backup'));
    expect(seqOf('db', 'backup')).toBeLessThan(schemaUpgrade);
    for (const host of hosts.slice(1)) expect(seqOf(host, 'install')).toBeGreaterThan(schemaUpgrade);
    expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
  });

  it('the status shows the hosts a running child workflow has finished, before the child ends', async () => {
    const hosts = hostIds(PROFILES.appv!, 7);
    const lab = freshLab({ hosts: 7 });
    labFault(lab, 'appv-04', 'install', { delaySeconds: 8 });
    const plan = withExecution(installerPerHost(labPlan(hosts)), { hostsPerWorkflow: 3, maxParallel: 3 });
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      // appv-04's install holds its child up; the others' one-host upgrades finish meanwhile.
      const during = await waitFor(async () => {
        const status = await queryStatus(temporal.client, handle.workflowId);
        return status.children?.some((c) => c.phase === 'upgradeRest') && (status.hostCounts.upgraded ?? 0) >= 4 ? status : undefined;
      }, 'upgrades finished inside the child');
      expect(during.children).toEqual([{ workflowId: expect.stringMatching(new RegExp(`^${handle.workflowId}/upgradeRest-\\d+$`)), phase: 'upgradeRest', hosts: 6 }]);
      expect(during.hosts['appv-04']?.state).toBe('offline');
      // The parent's own answer has not heard of them yet: the child reports when it ends.
      const parentOnly = await handle.query(statusQuery);
      expect(Object.values(parentOnly.hosts).filter((h) => h.state === 'upgraded')).toHaveLength(0);
      expect((await handle.result()).outcome).toBe('completed');
      const after = await queryStatus(temporal.client, handle.workflowId);
      expect(after.children).toBeUndefined();
      expect(after.hostCounts).toEqual({ online: 7 });
    });
  }, 120_000);

  it('one-host batches share maxParallel: several installs run at once, never more than maxParallel', async () => {
    const hosts = hostIds(PROFILES.appv!, 7);
    const lab = freshLab({ hosts: 7 });
    for (const host of hosts.slice(1)) labFault(lab, host, 'install', { delaySeconds: 1 });
    const plan = withExecution(installerPerHost(labPlan(hosts)), { maxParallel: 3 });
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
      await recordHistory(handle, 'side-by-side');
    });
    // labhost logs the delay fault as a delay starts and the install as it ends: count installs under way.
    let running = 0;
    let most = 0;
    for (const op of labOps(lab).filter((o) => o.op.startsWith('install') && o.host !== 'appv-01')) {
      running += op.result === 'fault' ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(most).toBe(3);
  });

  it('with a failure threshold, the rest of the phase goes on past a failed host, which waits for the operator', async () => {
    const hosts = hostIds(PROFILES.appv!, 5);
    const lab = freshLab({ hosts: 5 });
    labFault(lab, 'appv-02', 'install', 'always');
    const plan = withExecution(installerPerHost(quickRetries(labPlan(hosts))), { failureThreshold: 1, maxParallel: 1 });
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      const waiting = await atGuidedFailure(handle);
      expect(waiting.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-02']);
      // The hosts after it were upgraded and started; appv-02 was not started after its failed upgrade.
      expect(waiting.hosts['appv-02']?.state).toBe('failed');
      for (const host of ['appv-03', 'appv-04', 'appv-05']) expect(waiting.hosts[host]?.state, host).toBe('started');
      await recordHistory(handle, 'failure-threshold');
      await handle.executeUpdate(skipUpdate, { args: [{ operator: 'olga', host: 'appv-02' }] });
      expect((await handle.result()).outcome).toBe('completed');
    });
    const state = labStatus(lab);
    expect(state.hosts.filter((h) => h.version === '4.5').map((h) => h.id)).toEqual(['appv-01', 'appv-03', 'appv-04', 'appv-05']);
  });

  it('without a threshold, the first failed host stops new batches', async () => {
    const hosts = hostIds(PROFILES.appv!, 5);
    const lab = freshLab({ hosts: 5 });
    labFault(lab, 'appv-02', 'install', 'always');
    const plan = withExecution(installerPerHost(quickRetries(labPlan(hosts))), { maxParallel: 1 });
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      const waiting = await atGuidedFailure(handle);
      expect(waiting.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['appv-02']);
      for (const host of ['appv-03', 'appv-04', 'appv-05']) expect(waiting.hosts[host]?.state, host).toBe('offline');
      await handle.terminate('test over');
    });
    expect(labOps(lab).filter((op) => op.op.startsWith('install') && op.host !== 'appv-01' && op.host !== 'appv-02')).toEqual([]);
  });

  it("runs a site's host steps on the site's task queue, served by an activity-only worker", async () => {
    const hosts = hostIds(PROFILES.appv!, 4);
    const lab = freshLab({ hosts: 4 });
    const base = labPlan(hosts);
    const plan: UpgradePlan = { ...base, hosts: base.hosts.map((host, i) => (i >= 2 ? { ...host, site: 'branch' } : host)) };
    const taskQueue = `test-${randomUUID()}`;
    const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
    const options = { connection, taskQueue, workflowBundle: await workflowBundle(), lab: true, commandEnv: { CUTOVER_LAB_DIR: lab } };
    const main = await createCutoverWorker(options);
    const site = await createSiteWorker('branch', options);
    try {
      await site.runUntil(
        main.runUntil(async () => {
          const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('sites'), args: [plan] });
          await atGate(handle, 'beforeOffline');
          await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
          expect((await handle.result()).outcome).toBe('completed');
          const scheduled = (await events(handle)).flatMap((e) => {
            const a = e.activityTaskScheduledEventAttributes;
            if (a?.activityType?.name !== 'runHostStep') return [];
            const input = JSON.parse(Buffer.from(a.input?.payloads?.[0]?.data ?? new Uint8Array()).toString()) as { tasks: { host: string }[] };
            return [{ queue: a.taskQueue?.name, hosts: input.tasks.map((t) => t.host) }];
          });
          for (const batch of scheduled) {
            const atSite = batch.hosts.every((h) => h === 'appv-03' || h === 'appv-04');
            expect(batch.hosts.some((h) => h === 'appv-03' || h === 'appv-04') === atSite, 'a batch never mixes sites').toBe(true);
            expect(batch.queue).toBe(atSite ? siteTaskQueue(taskQueue, 'branch') : taskQueue);
          }
          expect(scheduled.filter((b) => b.queue === siteTaskQueue(taskQueue, 'branch')).length).toBeGreaterThanOrEqual(6);
          await recordHistory(handle, 'sites');
        }),
      );
    } finally {
      await connection.close();
    }
    expect(labStatus(lab).hosts.every((h) => h.version === '4.5' && h.online)).toBe(true);
  });
});

