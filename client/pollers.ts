/**
 * Which workers poll a task queue, as the server reports them (DescribeTaskQueue). The server lists every worker
 * it saw poll in the last few minutes, so one that stopped a moment ago is still listed.
 */
import type { Client } from '@temporalio/client';

/** temporal.api.enums.v1.TaskQueueType (@temporalio/proto is not a direct dependency): a worker polls each kind on its own. */
const TASK_QUEUE_TYPE = { workflow: 1, activity: 2 } as const;

export type TaskKind = keyof typeof TASK_QUEUE_TYPE;

/** The identities of the workers polling the queue for that kind of task (a worker's default identity is pid@host). */
export async function pollerIdentities(client: Client, taskQueue: string, kind: TaskKind): Promise<string[]> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: TASK_QUEUE_TYPE[kind],
  });
  return (pollers ?? []).map((poller) => poller.identity ?? '?');
}
