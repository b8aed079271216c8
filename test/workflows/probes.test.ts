/**
 * Verify steps as HTTP health probes, on a real Temporal server: a health endpoint per lab host answers with the
 * host's version and whether its service runs (503 while stopped), and the plan's verify is an http probe on it.
 * The forward run checks the target version; a rollback's verify runs the same probe and expects the source.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { labFault, labStatus } from '../../lab/lab';
import { rollbackUpdate } from '../../workflows/messages';
import { approvedRun, atGuidedFailure, freshLab, labPlan, quickRetries, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();
const HOSTS = ['appv-01', 'appv-02', 'appv-03'];

let server: Server | undefined;
afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

/** GET /HOST/health: the lab host's state as JSON; what the probe saw, per version, is counted. */
async function healthEndpoint(lab: string) {
  const answered: Record<string, number> = {};
  server = createServer((request, response) => {
    const id = request.url?.split('/')[1];
    const host = labStatus(lab).hosts.find((h) => h.id === id);
    if (!host) return void response.writeHead(404).end();
    const running = host.services.AppVServer === 'running';
    answered[host.version] = (answered[host.version] ?? 0) + 1;
    response.writeHead(running ? 200 : 503, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ status: { service: running ? 'running' : 'stopped' }, version: host.version }));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, answered };
}

function withProbe(plan: UpgradePlan, base: string): UpgradePlan {
  const role = plan.roles['management-server'] as UpgradePlan['roles'][string];
  return {
    ...plan,
    roles: {
      ...plan.roles,
      'management-server': {
        ...role,
        steps: {
          ...role.steps,
          verify: {
            probe: { kind: 'http', url: `${base}/{{host}}/health`, method: 'GET', headers: {}, status: 200, json: { version: '{{version}}', 'status.service': 'running' }, insecureSkipTlsVerify: false, deadline: '3s', interval: '200ms' },
            timeout: '10s',
            retry: { maxAttempts: 1, initialInterval: '1s', backoff: 2, maxInterval: '1m' },
            required: true,
            record: false,
          },
        },
      },
    },
  };
}

describe('verify by http probe', () => {
  it('verifies every host at the target version through its health endpoint', async () => {
    const lab = freshLab({ hosts: HOSTS.length });
    const health = await healthEndpoint(lab);
    await approvedRun(temporal.client, withProbe(labPlan(HOSTS), health.base), lab, async (handle) => {
      expect((await handle.result()).outcome).toBe('completed');
    });
    expect(health.answered['4.5']).toBeGreaterThanOrEqual(HOSTS.length);
  });

  it("a rollback's verify runs the same probe, expecting the source version", async () => {
    const lab = freshLab({ hosts: HOSTS.length });
    const health = await healthEndpoint(lab);
    // appv-03's service will not start: its health endpoint answers 503 until the deadline.
    labFault(lab, 'appv-03', 'start', 'always');
    const plan = quickRetries(withProbe(labPlan(HOSTS), health.base));
    await approvedRun(temporal.client, plan, lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.step).toBe('start');
      labFault(lab, 'appv-03', 'start', 'clear');
      const before = health.answered['4.1-SP1'] ?? 0;
      await handle.executeUpdate(rollbackUpdate, { args: [{ operator: 'olga' }] });
      expect((await handle.result()).outcome).toBe('rolled-back');
      // Every host the rollback stopped was verified back at 4.1-SP1 by the same probe.
      expect((health.answered['4.1-SP1'] ?? 0) - before).toBeGreaterThanOrEqual(HOSTS.length);
    });
    expect(labStatus(lab).hosts.every((host) => host.version === '4.1-SP1' && host.services.AppVServer === 'running')).toBe(true);
  });

  it('an unhealthy host fails verify after its deadline, and the status shows the tries', async () => {
    const lab = freshLab({ hosts: HOSTS.length });
    const health = await healthEndpoint(lab);
    await approvedRun(temporal.client, withProbe(labPlan(HOSTS), `${health.base}/nowhere`), lab, async (handle) => {
      const failed = await atGuidedFailure(handle);
      expect(failed.awaitingOperator?.step).toBe('verify');
      const host = failed.awaitingOperator?.hosts[0];
      expect(host?.error).toBe('verify failed (exit 1) after 1 attempt(s)');
      expect(host?.outputTail).toContain(`try 1: GET ${health.base}/nowhere/${host?.host}/health: status 404, expected 200\n`);
      expect(host?.outputTail).toMatch(/\[cutover\] not healthy after \d+ tries/);
      await handle.terminate('test over');
    });
  });
});
