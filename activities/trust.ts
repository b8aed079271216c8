/**
 * The worker's trust policy, read once per run: who may decide what (core/trust). It is the worker operators' file,
 * not the plan's, so whoever starts a run cannot choose who approves it. The run's history keeps what was read, and
 * the workflow parses it again itself: it trusts no payload.
 */
import { readFileSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/activity';
import { parseDocument } from 'yaml';
import { parseTrustFile } from '../core/trust';

/** What a lab worker decides by when it has no trust file: decisions by name, as in the demo. */
export const LAB_TRUST_FILE = { unsigned: 'accept-by-name' } as const;

export interface TrustSource {
  /** The trust file's path, "lab" for the lab's built-in policy, or "none". */
  source: string;
  /** The file's content as data, before validation. */
  file: unknown;
}

export interface TrustDeps {
  /** The trust file (YAML or JSON): CUTOVER_TRUST_FILE. */
  trustFile?: string;
  /** A lab worker without a trust file accepts decisions by name. */
  lab: boolean;
}

function readTrustFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw ApplicationFailure.nonRetryable(`cannot read the trust file ${path}: ${(error as Error).message}`, 'InvalidTrustFile');
  }
  // A trust file is small: aliases bigger than the file itself are refused rather than expanded.
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) throw ApplicationFailure.nonRetryable(`the trust file ${path} is not valid YAML or JSON: ${document.errors[0]?.message.split('\n')[0]}`, 'InvalidTrustFile');
  const data: unknown = document.toJS({ maxAliasCount: 100 });
  const parsed = parseTrustFile(data);
  if (!parsed.ok) throw ApplicationFailure.nonRetryable(`the trust file ${path} is not valid:\n${parsed.message}`, 'InvalidTrustFile');
  return data;
}

export function createTrustActivities(deps: TrustDeps) {
  return {
    async readTrustPolicy(): Promise<TrustSource> {
      if (deps.trustFile) return { source: deps.trustFile, file: readTrustFile(deps.trustFile) };
      // Without a file, a production worker refuses every decision by name, and nobody holds a key it trusts.
      return deps.lab ? { source: 'lab', file: LAB_TRUST_FILE } : { source: 'none', file: {} };
    },
  };
}
