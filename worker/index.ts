/** The worker entry point: `cutover worker` or `npm run worker`. Reads TEMPORAL_* (envconfig) and CUTOVER_TASK_QUEUE. */
import { createCutoverWorker } from './worker';

export async function main(): Promise<void> {
  const worker = await createCutoverWorker();
  console.log(`cutover worker polling task queue "${worker.options.taskQueue}" in namespace "${worker.options.namespace}"`);
  await worker.run();
}
