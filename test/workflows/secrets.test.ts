/**
 * Secrets by reference, end to end on a real Temporal server: a run over ssh whose key comes from a file reference,
 * whose verify step echoes a secret from the environment (and fails once, so the echo is in a retry's failure too),
 * and whose backup echoes a secret from a file. The whole history, the status query and the result hold the
 * references and the redaction labels, never a byte of the values.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpgradePlan } from '../../core/plan';
import { LAB_BIN, labFault } from '../../lab/lab';
import { statusQuery } from '../../workflows/messages';
import { allText, approvedRun, freshLab, labPlan, useTemporalClient } from '../helpers';
import { sshFleetPerTest } from '../sshd';

const temporal = useTemporalClient();
const HOSTS = ['appv-01', 'appv-02', 'appv-03'];

const startFleet = sshFleetPerTest();
afterEach(() => {
  delete process.env.CUTOVER_TEST_TOKEN;
});

describe('secrets by reference', () => {
  it('a run that used secrets leaves none of their bytes in its history, status or result', async () => {
    const lab = freshLab({ hosts: HOSTS.length });
    const fleet = await startFleet(HOSTS, { PATH: `${LAB_BIN}:/usr/local/bin:/usr/bin:/bin`, CUTOVER_LAB_DIR: lab });
    const token = `tok-${randomUUID()}`;
    process.env.CUTOVER_TEST_TOKEN = token;
    const password = `pw-${randomUUID()}`;
    const passwordFile = join(fleet.dir, 'db-password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    const keyLines = readFileSync(fleet.userKey, 'utf8')
      .split('\n')
      .filter((line) => line.length > 20 && !line.startsWith('-----'));

    const base = labPlan(HOSTS);
    const role = base.roles['management-server'] as UpgradePlan['roles'][string];
    const plan: UpgradePlan = {
      ...base,
      hosts: base.hosts.map((host) => ({ ...host, transport: fleet.transport(host.id) })),
      database: { ...base.database, backup: { ...base.database.backup!, run: `labhost db backup {{backup}} && echo connected with {{secret:file:${passwordFile}}}` } },
      roles: {
        ...base.roles,
        'management-server': {
          ...role,
          steps: {
            ...role.steps,
            verify: {
              ...(role.steps.verify as NonNullable<typeof role.steps.verify>),
              run: 'labhost {{host}} verify {{version}}; code=$?; echo token={{secret:env:CUTOVER_TEST_TOKEN}}; exit $code',
              retry: { maxAttempts: 3, initialInterval: '100ms', backoff: 1, maxInterval: '100ms' },
              record: true,
            },
          },
        },
      },
    };
    labFault(lab, 'appv-02', 'verify', { times: 1 });

    await approvedRun(temporal.client, plan, lab, async (handle) => {
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      const status = await handle.query(statusQuery);
      const history = await handle.fetchHistory();
      const texts = [...allText(history), JSON.stringify(status), JSON.stringify(result)];
      const everything = texts.join('\n');

      // None of the values...
      for (const secret of [token, password, ...keyLines]) {
        expect(everything.includes(secret), `a secret (${secret.slice(0, 6)}…) is in the history`).toBe(false);
      }
      // ...though the run used them: the echoes ran (their redacted lines are there), the references travelled.
      expect(result.records.filter((r) => r.step === 'verify').map((r) => r.output)).toEqual(HOSTS.map((host) => `${host} healthy at 4.5\ntoken=[secret:env:CUTOVER_TEST_TOKEN]`));
      expect(everything).toContain(`connected with [secret:file:${passwordFile}]`);
      // The first verify on appv-02 failed; that attempt's failure (in the retry's start event) carries the echo, redacted.
      expect(everything).toContain('verify failed on 1 of 3 host(s), first appv-02 (exit 1): token=[secret:env:CUTOVER_TEST_TOKEN]');
      expect(everything).toContain('{{secret:env:CUTOVER_TEST_TOKEN}}');
      expect(everything).toContain(`file:${fleet.userKey}`);
    });
  });
});
