/**
 * Encrypted payloads on a real Temporal server (issue 16). A run with a failed host, an operator's retry and
 * comments, read back through a client *without* the codec: no host name, command, output or comment is in any
 * payload or failure message of its history, nor in its query answers (status, current details); the client with the
 * codec reads all of them. Then a key rotation: a run started under key 1 finishes on a worker whose newest key is 2.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../codec/codec';
import { cutoverDataConverter } from '../../codec/dataConverter';
import { PROFILES, hostIds, labFault } from '../../lab/lab';
import { approveUpdate, retryUpdate, statusQuery } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { atGate, atGuidedFailure, freshLab, labPlan, labWorker, quickRetries, testClient, uniqueId } from '../helpers';

const HOSTS = hostIds(PROFILES.appv!, 3);

/** A process environment with these keys, newest first, as CUTOVER_CODEC_KEYS names them. */
function keyEnv(...ids: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { CUTOVER_CODEC_KEYS: ids.map((id) => `${id}=env:CUTOVER_CODEC_KEY_${id}`).join(',') };
  for (const id of ids) env[`CUTOVER_CODEC_KEY_${id}`] = KEYS[id];
  return env;
}
const KEYS: Record<string, string> = { k1: randomBytes(32).toString('base64'), k2: randomBytes(32).toString('base64') };

interface FoundPayload {
  path: string;
  encoding: string;
  keyId?: string;
}

const utf8 = (bytes: unknown) => (bytes instanceof Uint8Array ? Buffer.from(bytes).toString('utf8') : '');

/** Every payload in a history (or any API answer): an object with `metadata` and `data`, with where it is. */
function payloadsIn(value: unknown, path = '', out: FoundPayload[] = []): FoundPayload[] {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return out;
  const record = value as Record<string, unknown>;
  if ('metadata' in record && 'data' in record && record.metadata && typeof record.metadata === 'object') {
    const metadata = record.metadata as Record<string, unknown>;
    out.push({ path, encoding: utf8(metadata.encoding), ...(metadata[KEY_ID_METADATA] ? { keyId: utf8(metadata[KEY_ID_METADATA]) } : {}) });
    return out;
  }
  for (const [key, item] of Object.entries(record)) payloadsIn(item, `${path}.${key}`, out);
  return out;
}

/** Everything as text: strings as they are, and every byte array decoded, so nothing hides in a payload's bytes. */
function allText(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const item of value) allText(item, out);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) allText(item, out);
  return out;
}

/**
 * Plaintext by design: search attributes are the server's indexes (README), and a patch marker holds the id of a
 * patched() change of Cutover's code, written by the SDK's core, not by a codec. Everything else must be encrypted.
 */
// Search attributes are indexes; a patch marker's data is the patch id; a local activity marker's `data` is the SDK's
// own bookkeeping (sequence, attempt, activity type, times), while its `result` goes through the codec.
const plaintextByDesign = (found: FoundPayload) =>
  found.path.includes('searchAttributes') ||
  found.path.includes('markerRecordedEventAttributes.details.patch-data') ||
  found.path.includes('markerRecordedEventAttributes.details.data.');

let raw: Client;
beforeAll(async () => {
  raw = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
});
afterAll(async () => {
  await raw?.connection.close();
});

/** A query answered by the workflow, as the server hands it to a client without the codec. */
async function rawQuery(workflowId: string, queryType: string) {
  const response = await raw.workflowService.queryWorkflow({ namespace: 'default', execution: { workflowId }, query: { queryType } });
  return response.queryResult;
}

describe('encrypted payloads', () => {
  it('keeps hosts, commands, output and comments out of the history and the query answers; the codec reads them back', async () => {
    const converter = cutoverDataConverter(keyEnv('k1'));
    const client = await testClient(converter);
    const lab = freshLab({ hosts: HOSTS.length });
    const comment = `go-ahead-${randomUUID()}`;
    const retryComment = `fixed-the-installer-${randomUUID()}`;
    labFault(lab, 'appv-03', 'install', 'always');
    const { worker, taskQueue, close } = await labWorker(lab, { dataConverter: converter });
    const plan = quickRetries(labPlan(HOSTS));
    let handle: WorkflowHandle<typeof upgradeFleet> | undefined;
    try {
      await worker.runUntil(async () => {
        handle = await client.workflow.start(upgradeFleet, { taskQueue, workflowId: uniqueId(plan.fleet), args: [plan], staticSummary: `upgrade of ${HOSTS.join(' ')}`, staticDetails: `hosts ${HOSTS.join(', ')}` });
        await atGate(handle, 'beforeOffline');
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'beforeOffline', comment }] });
        const failed = await atGuidedFailure(handle);
        expect(failed.awaitingOperator?.hosts[0]?.outputTail).toContain('injected permanent failure');

        // While the run waits: its query answers leave the worker encrypted, current details (the UI's) included.
        for (const query of ['status', '__temporal_workflow_metadata']) {
          const answer = await rawQuery(handle.workflowId, query);
          expect(payloadsIn(answer).map((p) => p.encoding), query).toEqual([ENCRYPTED_ENCODING]);
          expect(allText(answer).join('\n'), query).not.toMatch(/appv-0\d|labhost|injected/);
        }
        const metadata = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
        expect(metadata.currentDetails).toContain('appv-03');

        labFault(lab, 'appv-03', 'install', 'clear');
        await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga', comment: retryComment }] });
        expect((await handle.result()).outcome).toBe('completed');
        // The client with the codec reads what the raw history hides.
        const status = await handle.query(statusQuery);
        expect(status.decisions.map((d) => d.comment)).toEqual(expect.arrayContaining([comment, retryComment]));
        expect(await (await handle.describe()).staticSummary()).toBe(`upgrade of ${HOSTS.join(' ')}`);
      });
    } finally {
      await close();
    }
    if (!handle) throw new Error('the run did not start');

    const history = await raw.workflow.getHandle(handle.workflowId).fetchHistory();
    const found = payloadsIn(history);
    expect(found.filter((p) => !plaintextByDesign(p) && p.encoding !== ENCRYPTED_ENCODING)).toEqual([]);
    expect(found.filter((p) => p.path.includes('userMetadata')).length, 'summaries and details (user metadata)').toBeGreaterThan(3);
    expect(found.filter((p) => p.path.includes('encodedAttributes')).length, 'failure messages, encoded').toBeGreaterThan(0);
    const everything = allText(history).join('\n');
    for (const secret of [...HOSTS, 'labhost', 'injected permanent failure', 'healthy at', comment, retryComment, 'alice', 'olga']) {
      expect(everything.includes(secret), `"${secret}" is in the raw history`).toBe(false);
    }

    await client.connection.close();
  });

  it('encrypts the message of a failed run, which the codec decodes', async () => {
    const converter = cutoverDataConverter(keyEnv('k1'));
    const client = await testClient(converter);
    const { worker, taskQueue, close } = await labWorker(freshLab({ hosts: 1 }), { dataConverter: converter });
    // A key pasted into a plan instead of its reference: the workflow refuses it, quoting it in its failure.
    const pasted = `pasted-key-${randomUUID()}`;
    const base = labPlan(['appv-01']);
    const plan = { ...base, hosts: base.hosts.map((host) => ({ ...host, transport: { kind: 'ssh', address: 'appv-01', user: 'svc', key: pasted } })) };
    const workflowId = uniqueId('invalid');
    try {
      const error = await worker.runUntil(client.workflow.execute(upgradeFleet, { taskQueue, workflowId, args: [plan as never] }).catch((e: unknown) => e));
      expect(error).toBeInstanceOf(WorkflowFailedError);
      expect((error as WorkflowFailedError).cause?.message).toContain(pasted);
      const history = allText(await raw.workflow.getHandle(workflowId).fetchHistory()).join('\n');
      expect(history).toContain('Encoded failure');
      expect(history).not.toContain(pasted);
    } finally {
      await close();
      await client.connection.close();
    }
  });

  it('a run started under key 1 finishes after a rotation to key 2', async () => {
    const lab = freshLab({ hosts: 2 });
    const plan = labPlan(hostIds(PROFILES.appv!, 2));
    const before = cutoverDataConverter(keyEnv('k1'));
    const after = cutoverDataConverter(keyEnv('k2', 'k1'));
    const first = await labWorker(lab, { dataConverter: before });
    const workflowId = uniqueId(plan.fleet);
    const oldClient = await testClient(before);
    try {
      await first.worker.runUntil(async () => {
        const handle = await oldClient.workflow.start(upgradeFleet, { taskQueue: first.taskQueue, workflowId, args: [plan] });
        await atGate(handle, 'beforeOffline');
      });
    } finally {
      await first.close();
    }

    const second = await labWorker(lab, { dataConverter: after, taskQueue: first.taskQueue });
    const newClient = await testClient(after);
    try {
      await second.worker.runUntil(async () => {
        const handle = newClient.workflow.getHandle<typeof upgradeFleet>(workflowId);
        await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice', gate: 'beforeOffline' }] });
        expect((await handle.result()).outcome).toBe('completed');
      });
    } finally {
      await second.close();
    }

    const history = await raw.workflow.getHandle(workflowId).fetchHistory();
    const keyIds = payloadsIn(history).flatMap((p) => (p.keyId ? [p.keyId] : []));
    expect(keyIds[0], 'the input, encrypted when the run started').toBe('k1');
    expect(keyIds.at(-1), 'the result, encrypted after the rotation').toBe('k2');
    // Both keys were needed: the old one alone cannot read the result, the new one alone not the input.
    await expect(oldClient.workflow.getHandle(workflowId).result()).rejects.toThrow(/key k2/);
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    const k2Only = cutoverDataConverter(keyEnv('k2')).payloadCodecs?.[0];
    await expect(k2Only?.decode(input as never)).rejects.toThrow(/key k1, which is not among/);
    await Promise.all([oldClient, newClient].map((c) => c.connection.close()));
  });
});
