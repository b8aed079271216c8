/** The readable preview `cutover plan` prints: the procedure's phases and gates in order, with each batch. Pure. */
import { type GateName, type UpgradePlan, ownValue } from './plan';
import { type RunPlan, hostRange } from './planner';
import { PROCEDURE, type ProcedurePhase } from './procedure';

function header(run: RunPlan, plan: UpgradePlan): string[] {
  const { maxParallel, batchSize, hostsPerWorkflow, failureThreshold } = plan.execution;
  return [
    `Fleet ${run.fleet}: ${run.source} → ${run.target}, ${run.hostIds.length} hosts, DB owner ${run.owner}, database ${plan.database.name}${databaseText(plan)}`,
    `Each host may start at ${(ownValue(plan.upgradePaths, plan.target) ?? []).join(' or ')}: preflight records its version, and a rollback returns it there.`,
    `Hosts run ${maxParallel} at a time, at most ${batchSize} per batch; a phase over ${hostsPerWorkflow} hosts runs in child workflows of up to ${hostsPerWorkflow}.`,
    `A phase starts no new batch once ${failureThreshold === 0 ? 'any host has' : `more than ${failureThreshold} of its hosts have`} failed; failed hosts wait for the operator.`,
    '',
  ];
}

/** How the database is treated, and so how a rollback undoes it. */
function databaseText(plan: UpgradePlan): string {
  const { strategy, previous } = plan.database;
  return strategy === 'new-database' ? ` (new, beside ${previous}; a rollback points the hosts back at ${previous}, no restore)` : ' (upgraded in place; a rollback restores the backup)';
}

function gateLines(plan: UpgradePlan, name: GateName, when: string | undefined): string[] {
  const definition = plan.gates[name];
  if (!definition) return [];
  const who = definition.approvers.length ? definition.approvers.join(', ') : 'anyone';
  return [
    `GATE ${name}${when ? `, ${when}` : ''}: ${definition.quorum} approval(s) from ${who}${definition.timeout ? `, expires after ${definition.timeout}` : ''}`,
    `     ${definition.instructions}`,
  ];
}

function phaseLines(run: RunPlan, row: ProcedurePhase): string[] {
  const { batches, database } = run.phases[row.phase];
  const lines = [row.title, ...database.map((task) => `     database ${task.action} on ${task.host}: ${task.command}`)];
  for (const batch of batches) {
    lines.push(`     ${batch.step} [${batch.role}${batch.site ? ` @${batch.site}` : ''}] on ${hostRange(batch.tasks)}, ${batch.retry.maxAttempts} attempt(s), timeout ${batch.timeoutMs / 1000}s`);
    const sample = batch.tasks[0];
    if (sample) lines.push(`       e.g. ${sample.host}: ${sample.command}${sample.undo ? `   (undo: ${sample.undo})` : ''}`);
  }
  if (row.phase === 'preflight') lines.push(...prerequisiteLines(run));
  return lines;
}

function prerequisiteLines(run: RunPlan): string[] {
  return run.prerequisites.map((prerequisite) =>
    'check' in prerequisite
      ? `     prerequisite ${prerequisite.name}: check on ${prerequisite.check.host}: ${prerequisite.check.command}`
      : `     prerequisite ${prerequisite.name}: confirmed by ${prerequisite.confirm.approvers.join(', ') || 'anyone'}: ${prerequisite.confirm.instructions}`,
  );
}

/** The rehearsal at the end of preflight, when the plan has one: its own backup, then the copy's upgrade. */
function rehearsalLines(run: RunPlan): string[] {
  if (run.rehearsal.length === 0) return [];
  return ['Rehearse the schema upgrade on a copy, before anything changes', ...run.rehearsal.map((task) => `     database ${task.action} on ${task.host}: ${task.command}`)];
}

/** Numbered items: each gate the plan has, then each phase, in the procedure's order; preflight's rehearsal after it. */
export function formatPreview(run: RunPlan, plan: UpgradePlan): string {
  const items: string[][] = [];
  for (const row of PROCEDURE) {
    if (row.gateBefore) items.push(gateLines(plan, row.gateBefore.gate, undefined));
    const within = (row.gatesWithin ?? []).map((gate) => gateLines(plan, gate.gate, gate.when));
    if (row.changesHosts) items.push(...within, phaseLines(run, row));
    else items.push(phaseLines(run, row), ...within, rehearsalLines(run));
  }
  const numbered = items.filter((item) => item.length > 0).map(([first, ...rest], i) => [`${i + 1}. ${first}`, ...rest].join('\n'));
  return [...header(run, plan), ...numbered].join('\n');
}
