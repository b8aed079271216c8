/**
 * The plan is normalized once, at the start of a run, by a local activity: the history holds the plan with its
 * defaults filled in, so an open run replays the same whatever a later release's defaults are.
 */
import { expect, it } from 'vitest';
import { PROFILES, hostIds } from '../../lab/lab';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { atGate, freshLab, labPlan, labWorker, recordHistory, uniqueId, useTemporalClient } from '../helpers';

const temporal = useTemporalClient();

it("keeps the plan with its defaults in the run's history", async () => {
  const lab = freshLab({ hosts: 2 });
  const { execution: _defaulted, ...plan } = labPlan(hostIds(PROFILES.appv!, 2));
  const { worker, taskQueue, close } = await labWorker(lab);
  try {
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId('normalized'), args: [plan] });
      await atGate(handle, 'beforeOffline');
      await recordHistory(handle, 'plan-normalized');
      const events = (await handle.fetchHistory()).events ?? [];
      const markers = events.flatMap((event) => (event.markerRecordedEventAttributes ? [event.markerRecordedEventAttributes] : []));
      const data = markers.find((marker) => marker.markerName === 'core_local_activity')?.details?.data?.payloads?.[0]?.data;
      expect(data, 'the local activity marker of normalizePlan').toBeDefined();
      const marker = JSON.parse(Buffer.from(data as Uint8Array).toString('utf8')) as { activity_type: string };
      expect(marker.activity_type).toBe('normalizePlan');
      const result = markers.find((m) => m.markerName === 'core_local_activity')?.details?.result?.payloads?.[0]?.data;
      // The plan had no `execution`: its defaults are what the history keeps.
      const normalized = JSON.parse(Buffer.from(result as Uint8Array).toString('utf8')) as { plan: { execution: unknown } };
      expect(normalized.plan.execution).toEqual({ maxParallel: 10, batchSize: 200, failureThreshold: 0, hostsPerWorkflow: 1000 });
      await handle.terminate('the test is over');
    });
  } finally {
    await close();
  }
});
