/**
 * Where the Temporal server is, read the way the `temporal` CLI reads it (@temporalio/envconfig): TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE and temporal.toml. Moving from the dev
 * server to a cluster or Temporal Cloud is configuration.
 */
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { cutoverDataConverter } from '../codec/dataConverter';
import { UserError } from '../core/errors';

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';
export const DEFAULT_TASK_QUEUE = 'cutover';

export interface ServerTarget {
  address: string;
  namespace: string;
  connectionOptions: ConnectionOptions;
}

export function serverTarget(env: NodeJS.ProcessEnv = process.env): ServerTarget {
  let config;
  try {
    config = loadClientConnectConfig({
      overrideEnvVars: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    });
  } catch (error) {
    throw new UserError(`The Temporal connection settings cannot be read: ${(error as Error).message}`);
  }
  const address = config.connectionOptions.address ?? DEFAULT_ADDRESS;
  return {
    address,
    namespace: config.namespace ?? DEFAULT_NAMESPACE,
    connectionOptions: { ...(config.connectionOptions as ConnectionOptions), address },
  };
}

export function taskQueue(env: NodeJS.ProcessEnv = process.env): string {
  return env.CUTOVER_TASK_QUEUE || DEFAULT_TASK_QUEUE;
}

function unreachable(target: ServerTarget, error: unknown): UserError {
  return new UserError(
    `Cannot reach the Temporal server at ${target.address} (namespace ${target.namespace}): ${(error as Error).message}. ` +
      `Start the embedded one with \`npm start\` or \`cutover dev\`, or point TEMPORAL_ADDRESS (or a temporal.toml profile) at your server.`,
  );
}

/** A client with Cutover's data converter (encrypting when CUTOVER_CODEC_KEYS is set). */
export async function connectClient(target = serverTarget(), dataConverter: DataConverter = cutoverDataConverter()): Promise<Client> {
  try {
    const connection = await Connection.connect({ ...target.connectionOptions, connectTimeout: 5_000 });
    return new Client({ connection, namespace: target.namespace, dataConverter });
  } catch (error) {
    throw unreachable(target, error);
  }
}

export async function connectWorker(target = serverTarget()): Promise<NativeConnection> {
  // Only workers load @temporalio/worker (webpack, the native core): the CLI's commands use connectClient.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { NativeConnection } = require('@temporalio/worker') as typeof import('@temporalio/worker');
  try {
    return await NativeConnection.connect(target.connectionOptions as Parameters<typeof NativeConnection.connect>[0]);
  } catch (error) {
    throw unreachable(target, error);
  }
}
