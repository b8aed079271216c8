import { join } from 'node:path';
import { NativeConnection, Worker, type WorkerOptions as WorkerCreateOptions, type WorkflowBundleOption } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createActivities } from '../activities';
import { pruneJournals } from '../activities/journal';
import { connectWorker, serverTarget, taskQueue, type ServerTarget } from '../client/connection';
import { WORKFLOWS_PATH, prebuiltWorkflowBundle, workflowWebpackConfig } from '../build/prebuilt';
import { cutoverDataConverter } from '../codec/dataConverter';
import { siteTaskQueue } from '../core/planner';
import { LAB_BIN } from '../lab/lab';
import { PROJECT_ROOT } from '../projectRoot';
import { type LocalTransportOptions, createLocalTransport } from '../transport/local';
import { sharedSpawner } from '../transport/spawner';
import { createRoutingTransport } from '../transport/router';
import { createSshTransport } from '../transport/ssh';

export interface WorkerOptions {
  target?: ServerTarget;
  connection?: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** Default: cutoverDataConverter() (CUTOVER_CODEC_KEYS). A pre-built workflowBundle must be bundled with its failureConverterPath. */
  dataConverter?: DataConverter;
  /** Pre-built workflow code (the tests pass theirs); otherwise the build's (`npm run build`) while fresh, else workflows/ is bundled at start. */
  workflowBundle?: WorkflowBundleOption;
  /** Extra environment for commands the local transport runs (e.g. CUTOVER_LAB_DIR). */
  commandEnv?: Record<string, string>;
  /**
   * This worker drives the lab: `labhost` (lab/bin) goes on its local commands' PATH. Default: CUTOVER_LAB=1, which the
   * stack of `cutover dev` and `npm start` and the benchmark set; a production worker's commands get its own PATH.
   */
  lab?: boolean;
  /** Where host commands are spawned from: the lean spawner by default, the worker itself with CUTOVER_SPAWN_FROM=worker (for the benchmark). */
  spawnFrom?: LocalTransportOptions['spawnFrom'];
  /** Where batches journal finished hosts on this machine (default: $CUTOVER_STATE_DIR/journal or .cutover/journal). */
  journalDir?: string;
  /** The trust file: who may decide what (default: CUTOVER_TRUST_FILE; a lab worker without one accepts names). */
  trustFile?: string;
}

function isLab(options: WorkerOptions): boolean {
  return options.lab ?? process.env.CUTOVER_LAB === '1';
}

/** For a lab worker, `labhost` first on the PATH, the way an agent is installed on a real host. */
function labPath(options: WorkerOptions): { PATH?: string } {
  return isLab(options) ? { PATH: `${LAB_BIN}:${process.env.PATH ?? ''}` } : {};
}

/**
 * The activities every worker of this machine registers, on whichever task queue it polls, and the plugin that
 * closes their transport (pooled SSH connections) once the worker has stopped and its last activities finished.
 */
function hostActivities(options: WorkerOptions): Pick<WorkerCreateOptions, 'activities' | 'plugins'> {
  const spawnFrom = options.spawnFrom ?? (process.env.CUTOVER_SPAWN_FROM === 'worker' ? 'worker' : 'spawner');
  const transport = createRoutingTransport({
    local: createLocalTransport({ env: { ...labPath(options), ...options.commandEnv }, spawnFrom }),
    ssh: createSshTransport(),
  });
  // The spawners start with the worker: a run's first batch should not wait for their Node start.
  if (spawnFrom === 'spawner') sharedSpawner().warm();
  const journalDir = options.journalDir ?? join(process.env.CUTOVER_STATE_DIR ?? join(PROJECT_ROOT, '.cutover'), 'journal');
  pruneJournals(journalDir);
  return {
    activities: createActivities({ runner: transport, journalDir, lab: isLab(options), ...trustFile(options) }),
    plugins: [{ name: 'cutover-transport', runWorker: (worker, next) => next(worker).finally(() => transport.close()) }],
  };
}

function trustFile(options: WorkerOptions): { trustFile?: string } {
  const file = options.trustFile ?? process.env.CUTOVER_TRUST_FILE;
  return file ? { trustFile: file } : {};
}

const workerTuning = {
  // Batch activities heartbeat which hosts are done; a retry after a crash trusts only what reached the server (and
  // this machine's journal). The default throttle (up to 0.8 x the heartbeat timeout) could lose 16 s of finished
  // hosts, so send each second.
  maxHeartbeatThrottleInterval: '1s',
  // On SIGTERM, activities are told at once (a CancelledFailure 'WORKER_SHUTDOWN'): a batch starts no more hosts and
  // hands over as soon as its commands under way have ended (activities/handover.ts); a database task lets its
  // command finish. Host commands are never killed.
  shutdownGraceTime: 0,
} as const;

/**
 * The workflow code: the one given; else the bundle `npm install` built for this data converter, while it is fresh
 * (webpack at start costs seconds and keeps its memory); else workflows/ bundled now.
 */
function workflowCode(options: WorkerOptions, dataConverter: DataConverter): Pick<WorkerCreateOptions, 'workflowBundle' | 'workflowsPath' | 'bundlerOptions'> {
  if (options.workflowBundle) return { workflowBundle: options.workflowBundle };
  const prebuilt = prebuiltWorkflowBundle(dataConverter.failureConverterPath);
  // Bundled now the way the build bundles it (build/prebuilt.ts), so a stale build runs the same code.
  return prebuilt ? { workflowBundle: { codePath: prebuilt } } : { workflowsPath: WORKFLOWS_PATH, bundlerOptions: { webpackConfigHook: workflowWebpackConfig } };
}

/** The main worker: upgradeFleet and its child workflows, and the host steps of hosts without a site. */
export async function createCutoverWorker(options: WorkerOptions = {}): Promise<Worker> {
  const target = options.connection ? undefined : (options.target ?? serverTarget());
  const connection = options.connection ?? (await connectWorker(target));
  const dataConverter = options.dataConverter ?? cutoverDataConverter();
  return Worker.create({
    connection,
    namespace: options.namespace ?? target?.namespace ?? 'default',
    taskQueue: options.taskQueue ?? taskQueue(),
    ...workflowCode(options, dataConverter),
    dataConverter,
    ...hostActivities(options),
    ...workerTuning,
  });
}

/**
 * An activity-only worker for one site: it runs the host steps of that site's hosts, from inside the site's network.
 * No workflow code is loaded, so it stays small.
 */
export async function createSiteWorker(site: string, options: WorkerOptions = {}): Promise<Worker> {
  const target = options.connection ? undefined : (options.target ?? serverTarget());
  const connection = options.connection ?? (await connectWorker(target));
  return Worker.create({
    connection,
    namespace: options.namespace ?? target?.namespace ?? 'default',
    taskQueue: siteTaskQueue(options.taskQueue ?? taskQueue(), site),
    dataConverter: options.dataConverter ?? cutoverDataConverter(),
    ...hostActivities(options),
    ...workerTuning,
  });
}
