/**
 * The worker's trust policy, read once per run: who may decide what (core/trust). It is the worker operators' file,
 * not the plan's, so whoever starts a run cannot choose who approves it. The run's history keeps what was read, and
 * the workflow parses it again itself: it trusts no payload.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { codecKeyFiles } from '../codec/keys';
import { UserError } from '../core/errors';
import { parseTrustFile } from '../core/trust';
import { parseYamlText } from '../core/yamlText';

/** What a lab worker decides by when it has no trust file: decisions by name, as in the demo. */
export const LAB_TRUST_FILE = { unsigned: 'accept-by-name' } as const;

export interface TrustSource {
  /** The trust file's path, "lab" for the lab's built-in policy, or "none". */
  source: string;
  /** The file's content as data, before validation. */
  file: unknown;
  /** Files this worker itself uses (its trust file, TLS key and certificates, signing key): never a plan's secret. */
  workerFiles: string[];
}

/** The settings that name files of the worker's own: Temporal's connection (envconfig's variables) and Cutover's (and its codec keys' files). */
const WORKER_FILE_SETTINGS = ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_CONFIG_FILE', 'CUTOVER_KEY'];

function workerFiles(trustFile: string | undefined): string[] {
  const named = WORKER_FILE_SETTINGS.flatMap((name) => (process.env[name] ? [process.env[name] as string] : []));
  return [...(trustFile ? [resolve(trustFile)] : []), ...[...named, ...codecKeyFiles()].map((file) => resolve(file))];
}

export interface TrustDeps {
  /** The trust file (YAML or JSON): CUTOVER_TRUST_FILE. */
  trustFile?: string;
  /** A lab worker without a trust file accepts decisions by name. */
  lab: boolean;
}

function readTrustFile(path: string): unknown {
  let data: unknown;
  try {
    data = parseYamlText(readFileSync(path, 'utf8'), `the trust file ${path}`, 'a trust file');
  } catch (error) {
    throw ApplicationFailure.nonRetryable(error instanceof UserError ? error.message : `cannot read the trust file ${path}: ${(error as Error).message}`, 'InvalidTrustFile');
  }
  const parsed = parseTrustFile(data);
  if (!parsed.ok) throw ApplicationFailure.nonRetryable(`the trust file ${path} is not valid:\n${parsed.message}`, 'InvalidTrustFile');
  return data;
}

export function createTrustActivities(deps: TrustDeps) {
  return {
    async readTrustPolicy(): Promise<TrustSource> {
      const files = workerFiles(deps.trustFile);
      if (deps.trustFile) return { source: deps.trustFile, file: readTrustFile(deps.trustFile), workerFiles: files };
      // Without a file, a production worker refuses every decision by name, and nobody holds a key it trusts.
      return { ...(deps.lab ? { source: 'lab', file: LAB_TRUST_FILE } : { source: 'none', file: {} }), workerFiles: files };
    },
  };
}
