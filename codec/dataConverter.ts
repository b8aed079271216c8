/**
 * The one data converter of every client and worker Cutover makes (the CLI, the worker, `npm start`, `cutover dev`,
 * the benchmark, the tests): encryption is one setting, CUTOVER_CODEC_KEYS. Without it, Temporal's defaults.
 */
import { join } from 'node:path';
import type { DataConverter } from '@temporalio/common';
import { PROJECT_ROOT } from '../projectRoot';
import { AesGcmCodec } from './codec';
import { loadCodecKeys } from './keys';

/** Bundled into the workflow code as well (bundleWorkflowCode's failureConverterPath), so workflow failures are encrypted too. */
export const FAILURE_CONVERTER_PATH = join(PROJECT_ROOT, 'codec', 'failureConverter.cjs');

export function cutoverDataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter {
  const keys = loadCodecKeys(env);
  return keys ? { payloadCodecs: [new AesGcmCodec(keys)], failureConverterPath: FAILURE_CONVERTER_PATH } : {};
}

export function encryptionOn(dataConverter: DataConverter): boolean {
  return (dataConverter.payloadCodecs?.length ?? 0) > 0;
}
