/**
 * The Dynamics GP web components scale-out procedure, end to end on a real Temporal server against the gp-web lab:
 * one web site + Session Central Service host first (it creates the new configuration database), then the session
 * hosts, each set to allow new sessions before users may sign in again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { LABHOST, labOps, labStatus } from '../../lab/lab';
import { approveUpdate, rollbackUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { approvedRun, atGate, atGuidedFailure, examplePlan, freshLab, labWorker, quickRetries, recordHistory, uniqueId, useTemporalClient, waitFor } from '../helpers';

const temporal = useTemporalClient();

const gpPlan = (): UpgradePlan => ({ ...examplePlan('gp-web-lab.yaml'), fleet: uniqueId('gp').slice(0, 40) });
const labhost = (lab: string, ...args: string[]) => execFileSync(LABHOST, args, { env: { ...process.env, CUTOVER_LAB_DIR: lab }, encoding: 'utf8' });

/** Two prerequisites are confirmed by a person in preflight, then the fleet goes offline. */
const GP_GATES = { gates: ['prerequisite:gp-utilities-upgraded', 'prerequisite:desktop-client-verified', 'beforeOffline'], approver: 'gp-admin' };

describe('Dynamics GP web components scale-out', () => {
  it('upgrades the web host first into a new configuration database, then every session host, allowing new sessions', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 5 });
    labhost(lab, 'tenant', 'upgrade', '18.0');
    const before = labStatus(lab).database;
    await approvedRun(temporal.client, gpPlan(), lab, async (handle) => {
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(result.followUp?.some((item) => item.includes('DynamicsGPTrustedApp.msi'))).toBe(true);
      expect(result.records.find((r) => r.step === 'prerequisite:tenant-services-updated')).toBeDefined();
      await recordHistory(handle, 'prerequisites');
    }, GP_GATES);
    const state = labStatus(lab);
    // The new configuration database beside the old one, which is as it was; every host points at the new one.
    expect(state.newDatabases).toEqual({ GPCONFIGURATION: { schema: '18.0' } });
    expect(state.database).toEqual(before);
    expect(state.hosts[0]).toMatchObject({ id: 'gp-web-01', version: '18.0', services: { SessionCentralService: 'running', WebSite: 'running' }, online: true, database: 'GPCONFIGURATION' });
    for (const host of state.hosts.slice(1)) {
      expect(host, host.id).toMatchObject({ version: '18.0', services: { SessionService: 'running' }, allowsNewSessions: true, online: true, database: 'GPCONFIGURATION' });
    }
    const ops = labOps(lab);
    const webInstall = ops.find((o) => o.host === 'gp-web-01' && o.op.startsWith('install'))?.seq ?? Infinity;
    for (const host of state.hosts.slice(1)) {
      expect(ops.find((o) => o.host === host.id && o.op.startsWith('install'))?.seq).toBeGreaterThan(webInstall);
    }
  });

  it('preflight stops the run, with nothing touched, while Tenant Services is not yet updated', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 3 });
    const plan = gpPlan();
    const { worker, taskQueue, close } = await labWorker(lab);
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('gp-tenant'), args: [{ ...plan, hosts: plan.hosts.slice(0, 3) }] });
      const error = await handle.result().catch((e: unknown) => e);
      expect((error as WorkflowFailedError).cause?.message).toContain('prerequisite tenant-services-updated is not met');
      expect((error as WorkflowFailedError).cause?.message).toContain('Tenant Services is at 16.0: update it to 18.0 before the web components');
    });
    await close();
    expect(labOps(lab).every((op) => op.op === 'version')).toBe(true);
  });

  it('the lab itself refuses the web components before Tenant Services (a plan without the check), and it rolls back', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 3 });
    const before = labStatus(lab).database;
    const plan = quickRetries(gpPlan());
    const unchecked = { ...plan, prerequisites: plan.prerequisites.filter((p) => !('check' in p)) };
    await approvedRun(temporal.client, { ...unchecked, hosts: plan.hosts.slice(0, 3) }, lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator).toMatchObject({ phase: 'upgrading-db-owner', hosts: [{ host: 'gp-web-01' }] });
      expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('update Tenant Services to 18.0 before the web components');
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'gp-admin' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
    }, GP_GATES);
    const state = labStatus(lab);
    expect(state.database).toEqual(before);
    expect(state.hosts.every((h) => h.version === '16.0' && Object.values(h.services).every((s) => s === 'running') && h.online)).toBe(true);
  });

  it('does not let users back in while a session host is not set to allow new sessions', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 3 });
    labhost(lab, 'tenant', 'upgrade', '18.0');
    const plan = quickRetries(gpPlan());
    const sessionHost = plan.roles['session-host']!;
    const forgetful: UpgradePlan = {
      ...plan,
      hosts: plan.hosts.slice(0, 3),
      roles: { ...plan.roles, 'session-host': { ...sessionHost, steps: { ...sessionHost.steps, start: { ...sessionHost.steps.start!, run: 'labhost {{host}} start' } } } },
    };
    await approvedRun(temporal.client, forgetful, lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.phase).toBe('verifying');
      expect(failed.awaitingOperator?.hosts.map((h) => h.host)).toEqual(['gp-session-01', 'gp-session-02']);
      expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('not set to allow new sessions');
      // Nobody was let back in: no host was brought online.
      expect(labStatus(lab).hosts.some((h) => h.online)).toBe(false);
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'gp-admin' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
    }, GP_GATES);
  });

  it('fails verify on a session host pointing at the old database; the rollback restores nothing and points every host back', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 3 });
    labhost(lab, 'tenant', 'upgrade', '18.0');
    const before = labStatus(lab).database;
    const plan = quickRetries(gpPlan());
    const waves: UpgradePlan = {
      ...plan,
      hosts: plan.hosts.slice(0, 3),
      execution: { ...plan.execution, batchSize: 1 },
      gates: { ...plan.gates, beforeEachBatch: { instructions: 'Next session host?', approvers: [], quorum: 1 } },
    };
    await approvedRun(temporal.client, waves, lab, async (handle) => {
      await atGate(handle, 'beforeEachBatch');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'gp-admin' }] });
      await waitFor(async () => ((await handle.query(statusQuery)).pendingGate?.opening === 2 ? true : undefined), 'the second wave');
      // Someone points gp-session-01's configuration back at the old database name.
      writeFileSync(join(lab, 'hosts', 'gp-session-01', 'database'), 'GPWEBCONFIG\n');
      await handle.executeUpdate(approveUpdate, { args: [{ approver: 'gp-admin' }] });
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator).toMatchObject({ phase: 'verifying', hosts: [{ host: 'gp-session-01' }] });
      expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('gp-session-01 points at the configuration database GPWEBCONFIG, expected GPCONFIGURATION');
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'gp-admin' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
      expect((await handle.query(statusQuery)).backup).toBeUndefined();
      await recordHistory(handle, 'new-database-rollback');
    }, GP_GATES);
    const ops = labOps(lab);
    expect(ops.filter((o) => o.host === 'db').map((o) => o.op)).toEqual(['verify 18.0 --database GPCONFIGURATION']);
    const state = labStatus(lab);
    expect(state.database).toEqual(before);
    for (const host of state.hosts) {
      expect(host, host.id).toMatchObject({ version: '16.0', database: 'GPWEBCONFIG', online: true });
      expect(Object.values(host.services).every((s) => s === 'running')).toBe(true);
    }
    // The rollback's verify checked each host against the old database.
    expect(ops.filter((o) => o.op === 'verify 16.0 --database GPWEBCONFIG' && o.result === 'ok').map((o) => o.host).sort()).toEqual(['gp-session-01', 'gp-session-02', 'gp-web-01']);
  });

  it('refuses a plan with db-owner on a session host, before any host is touched', async () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 2 });
    const plan = gpPlan();
    const wrong = { ...plan, hosts: [{ id: 'gp-web-01', roles: ['web-server'] }, { id: 'gp-session-01', roles: ['session-host', 'db-owner'] }] };
    const { worker, taskQueue, close } = await labWorker(lab);
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('gp-owner'), args: [wrong] });
      const error = await handle.result().catch((e: unknown) => e);
      const message = (error as WorkflowFailedError).cause?.message;
      expect(message).toContain(
        '"db-owner" on gp-session-01, a session-host host: the host with the web site and Session Central Service creates the new configuration database, never a session host\n  → at hosts[1].roles',
      );
    });
    await close();
    expect(labOps(lab)).toEqual([]);
  });

  it('the lab refuses a session host upgraded before the web host created the new database', () => {
    const lab = freshLab({ profile: 'gp-web', hosts: 3 });
    labhost(lab, 'gp-session-01', 'drain');
    labhost(lab, 'gp-session-01', 'stop');
    const run = spawnSync(LABHOST, ['gp-session-01', 'install', '18.0', '--database', 'GPCONFIGURATION'], { env: { ...process.env, CUTOVER_LAB_DIR: lab }, encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('upgrade the DB-owning server to 18.0 first');
    expect(labStatus(lab).hosts[1]?.version).toBe('16.0');
  });
});
