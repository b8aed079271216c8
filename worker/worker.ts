import { join } from 'node:path';
import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivities } from '../activities';
import { connectWorker, serverTarget, taskQueue, type ServerTarget } from '../client/connection';
import { LAB_BIN } from '../lab/lab';
import { createLocalTransport } from '../transport/local';
import { createRoutingTransport } from '../transport/router';
import { createSshTransport } from '../transport/ssh';

export interface WorkerOptions {
  target?: ServerTarget;
  connection?: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** Pre-built workflow code (tests bundle once per file); otherwise workflows/ is bundled at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Extra environment for commands the local transport runs (e.g. CUTOVER_LAB_DIR). */
  commandEnv?: Record<string, string>;
}

export async function createCutoverWorker(options: WorkerOptions = {}): Promise<Worker> {
  const target = options.connection ? undefined : (options.target ?? serverTarget());
  const connection = options.connection ?? (await connectWorker(target));
  // Lab hosts are driven by `labhost`, put on the local transport's PATH the way an agent is installed on a host.
  const transport = createRoutingTransport({
    local: createLocalTransport({ env: { PATH: `${LAB_BIN}:${process.env.PATH ?? ''}`, ...options.commandEnv } }),
    ssh: createSshTransport(),
  });
  return Worker.create({
    connection,
    namespace: options.namespace ?? target?.namespace ?? 'default',
    taskQueue: options.taskQueue ?? taskQueue(),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: join(__dirname, '..', 'workflows', 'index.ts') }),
    activities: createActivities({ transport }),
    // Batch activities heartbeat which hosts are done; a retry after a crash trusts only what reached the server.
    // The default throttle (up to 0.8 x the heartbeat timeout) could lose 16 s of finished hosts, so send each second.
    maxHeartbeatThrottleInterval: '1s',
    // On SIGTERM, host commands under way get time to finish before the worker exits (they are never killed).
    shutdownGraceTime: '60s',
    // Pooled SSH connections are closed once the worker has stopped (and its last activities have finished).
    plugins: [{ name: 'cutover-transport', runWorker: (worker, next) => next(worker).finally(() => transport.close()) }],
  });
}
