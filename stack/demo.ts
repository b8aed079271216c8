/**
 * `npm start`: bring up the stack, upgrade the lab's App-V fleet with examples/appv-lab.yaml, show live progress with
 * `cutover watch`'s view, and stop at the approval gate (approve here, in the Web UI, or with `cutover approve`).
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { connectClient } from '../client/connection';
import { formatStatus } from '../client/format';
import { readPlan } from '../client/readPlan';
import { decide, queryStatus, startRun } from '../client/runs';
import { watchRun } from '../client/watch';
import type { RunStatus } from '../core/status';
import { labStatus, labUp } from '../lab/lab';
import { workflowIdForFleet } from '../workflows/messages';
import type { upgradeFleet } from '../workflows/upgradeFleet';
import { PROJECT_ROOT } from '../projectRoot';
import { uiRunUrl, untilInterrupted, upStack, type Stack } from './stack';

export const DEMO_PLAN = join(PROJECT_ROOT, 'examples', 'appv-lab.yaml');

const time = () => new Date().toISOString().slice(11, 19);

/** What the run asks a person now: a gate's opening or a failure's; undefined when it asks nothing. */
function question(status: RunStatus | undefined): string | undefined {
  if (status?.pendingGate) return `gate ${status.pendingGate.gate} ${status.pendingGate.opening ?? ''}`;
  if (status?.awaitingOperator) return `operator ${status.awaitingOperator.opening ?? ''}`;
  return undefined;
}

/** Until the question asked in `status` is answered (here, in the Web UI, or with the CLI), or the run closes. */
async function untilAnswered(client: Client, handle: WorkflowHandle, status: RunStatus): Promise<void> {
  const asked = question(status);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const open = await handle.describe().then((d) => d.status.name === 'RUNNING', () => true);
    const now = await queryStatus(client, handle.workflowId).catch(() => status);
    if (!open || question(now) !== asked) return;
  }
}

/** A gate: approved automatically with --yes, or asked at the terminal while it may be answered elsewhere too. */
async function attendGate(client: Client, handle: WorkflowHandle, status: RunStatus, yes: boolean): Promise<void> {
  const gate = status.pendingGate as NonNullable<RunStatus['pendingGate']>;
  if (yes) {
    await decide(client, handle.workflowId, 'approve', { gate: gate.gate, approver: 'npm-start --yes', comment: 'approved automatically (--yes)' });
    console.log(`[${time()}] approved ${gate.gate} automatically (--yes)`);
    return;
  }
  if (!process.stdin.isTTY) return untilAnswered(client, handle, status);
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  // readline swallows Ctrl-C while it prompts; pass it on so the stack stops as it would otherwise.
  prompt.on('SIGINT', () => process.emit('SIGINT'));
  const approver = userInfo().username;
  const answered = new Promise<void>((resolve) => {
    prompt.question(`Approve gate ${gate.gate} as ${approver}? [y/N] `, (answer) => {
      const kind = /^y(es)?$/i.test(answer.trim()) ? 'approve' : 'reject';
      decide(client, handle.workflowId, kind, { gate: gate.gate, approver, comment: 'at the npm start prompt' })
        .then(() => console.log(`[${time()}] ${kind === 'approve' ? 'approved' : 'rejected'} ${gate.gate} as ${approver}`))
        .catch((error: Error) => console.log(`[${time()}] ${error.message}`))
        .finally(resolve);
    });
  });
  await Promise.race([answered, untilAnswered(client, handle, status)]);
  prompt.close();
}

/**
 * Follows the run with `cutover watch`'s view. At a gate it says where else to approve and asks here (or approves
 * with --yes); a failure waits for an answer from the Web UI or the commands the view shows.
 */
async function follow(client: Client, handle: WorkflowHandle<typeof upgradeFleet>, stack: Stack, yes: boolean): Promise<void> {
  for (;;) {
    const end = await watchRun(client, handle.workflowId);
    if (end.kind === 'ended' || !end.status) return;
    const where = uiRunUrl(stack, handle.workflowId) ?? 'your Temporal UI';
    if (end.status.pendingGate) {
      console.log(`  or in the Web UI (${where}): Send a Signal "approve" with {"approver": "your name"}\n`);
      await attendGate(client, handle, end.status, yes);
    } else {
      console.log(`  or in the Web UI (${where}): Send a Signal "retry", "skip" or "rollback" with {"operator": "your name"}\n`);
      await untilAnswered(client, handle, end.status);
    }
  }
}

export async function demo(options: { yes: boolean }): Promise<number> {
  const plan = readPlan(DEMO_PLAN);
  const stack = await upStack((line) => console.log(`cutover: ${line}`));
  // Ctrl-C or a supervisor's SIGTERM while following the run: stop what we started (the run itself is durable
  // and resumes with the next `npm start`).
  const interrupt = async () => {
    console.log('\ncutover: stopping the stack (the run stays where it is and resumes with the next start)');
    await stack.stop();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const client = await connectClient();
    const workflowId = workflowIdForFleet(plan.fleet);
    let handle: WorkflowHandle<typeof upgradeFleet> = client.workflow.getHandle(workflowId);
    const open = await handle.describe().then((d) => d.status.name === 'RUNNING', () => false);
    if (open) {
      console.log(`cutover: a demo run is already open; following ${workflowId}`);
    } else {
      labUp(stack.labDir, { profile: 'appv', hosts: plan.hosts.length });
      console.log(`cutover: fresh lab of ${plan.hosts.length} App-V servers at ${stack.labDir}`);
      handle = await startRun(client, plan, stack.taskQueue);
    }
    console.log(`\nUpgrading ${plan.fleet}: ${plan.source} → ${plan.target}`);
    console.log(`  Web UI: ${uiRunUrl(stack, workflowId) ?? '(no UI for this server)'}`);
    console.log(`  status: cutover status ${workflowId}\n`);
    await follow(client, handle, stack, options.yes);

    let exitCode = 0;
    try {
      const result = await handle.result();
      const summaryLine = {
        completed: `✔ upgrade completed: ${result.hosts} hosts of ${result.fleet} now at ${result.target}`,
        rejected: `✖ upgrade rejected before anything changed: ${result.hosts} hosts of ${result.fleet} untouched`,
        'rolled-back': `✖ upgrade rolled back (${result.reason ?? 'no reason given'}): ${result.fleet} is back at ${plan.source}`,
      }[result.outcome];
      console.log(`\n${summaryLine}`);
      for (const item of result.followUp ?? []) console.log(`  [ ] ${item}`);
      exitCode = result.outcome === 'completed' ? 0 : 1;
    } catch (error) {
      console.log(`\n✖ upgrade failed: ${error instanceof WorkflowFailedError ? error.cause?.message : (error as Error).message}`);
      console.log(formatStatus(workflowId, await queryStatus(client, workflowId)));
      exitCode = 1;
    }
    const lab = labStatus(stack.labDir);
    console.log(`lab: database schema ${lab.database.schema}; ${lab.hosts.map((h) => `${h.id} ${h.version} ${Object.values(h.services).join('/')}${h.online ? ' online' : ''}`).join('; ')}`);
    await client.connection.close();
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
    if (!options.yes) {
      console.log(`\nThe stack keeps running (Web UI ${stack.uiUrl ?? 'n/a'}). Press Ctrl-C to stop it.`);
      await untilInterrupted();
    }
    return exitCode;
  } finally {
    await stack.stop();
  }
}

export async function dev(): Promise<void> {
  const stack = await upStack((line) => console.log(`cutover: ${line}`));
  try {
    console.log(`\nCutover is up.`);
    console.log(`  Temporal: ${stack.address}, namespace ${stack.namespace}; Web UI ${stack.uiUrl ?? 'n/a'}`);
    console.log(`  Worker on task queue "${stack.taskQueue}"; lab at ${stack.labDir}`);
    console.log(`  Start a run: cutover start examples/appv-lab.yaml (or from the Web UI: workflow type upgradeFleet, task queue ${stack.taskQueue})`);
    console.log(`Press Ctrl-C to stop.`);
    await untilInterrupted();
  } finally {
    await stack.stop();
  }
}
