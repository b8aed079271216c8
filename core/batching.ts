/**
 * How a phase's batches run, decided without I/O: which batches run side by side, whether the phase runs in the
 * workflow itself or in child workflows, and how the children's groups are cut. The workflow passes its `patched()`
 * in as `isPatched`, so runs recorded before a rule replay as they ran, and tests pass `() => true`.
 */
import { BATCHES_IN_PARENT, BATCHES_PER_CHILD } from './budget';
import type { StepBatch } from './planner';

/** Asks whether new code may take a patched path (the workflow's `patched()`): called in the order the rules apply. */
export type IsPatched = (patchId: string) => boolean;

export function hostCount(batches: readonly StepBatch[]): number {
  return new Set(batches.flatMap((batch) => batch.tasks.map((task) => task.host))).size;
}

/**
 * Consecutive batches that may run side by side: the same step of the same wave. Batches of different steps never
 * overlap (a host's start waits for its upgrade), and waves keep their order (and their gates).
 */
export function segments(batches: StepBatch[]): StepBatch[][] {
  const result: StepBatch[][] = [];
  for (const batch of batches) {
    const last = result[result.length - 1];
    const previous = last?.[last.length - 1];
    if (last && previous && previous.step === batch.step && previous.wave === batch.wave) last.push(batch);
    else result.push([batch]);
  }
  return result;
}

/** How many batches of a segment run at once so that at most maxParallel hosts do: small batches share the fleet's parallelism. */
export function windowFor(segment: StepBatch[]): number {
  const largest = Math.max(...segment.map((batch) => batch.tasks.length));
  const maxParallel = segment[0]?.maxParallel ?? 1;
  return Math.max(1, Math.floor(maxParallel / Math.max(1, largest)));
}

/** The window of a segment run by the parent: recorded runs ran every batch alone, only new runs share. */
export function parentWindow(segment: StepBatch[], isPatched: IsPatched): number {
  return segment.length > 1 && windowFor(segment) > 1 && isPatched('batches-side-by-side') ? windowFor(segment) : 1;
}

/**
 * Whether a phase runs in child workflows. Children by hosts keep payloads small; children by batches keep histories
 * short (one-host batches of a long step on a large fleet). Each rule is its own patch, asked only when it applies.
 */
export function runsInChildren(batches: StepBatch[], hostsPerWorkflow: number, isPatched: IsPatched): boolean {
  return (
    (hostCount(batches) > hostsPerWorkflow && isPatched('host-steps-in-child-workflows')) ||
    (batches.length > BATCHES_IN_PARENT && isPatched('children-by-batch-count'))
  );
}

export interface GroupLimits {
  maxHosts: number;
  /** Most batches a group runs, so a child's history stays short; a wave with more is split, in order. */
  maxBatches?: number;
  /** With a gate before each wave, a group never holds two waves, so the gate can open between children. */
  wavePerGroup: boolean;
}

/**
 * The groups of batches the children run: by hosts, and (new runs) also by batch count. The patch is asked only
 * when the batch budget changes the groups, so recorded runs that it would not have changed carry no marker.
 */
export function childGroups(batches: StepBatch[], limits: Omit<GroupLimits, 'maxBatches'>, isPatched: IsPatched): StepBatch[][] {
  const byHosts = groupsOf(batches, limits);
  const byHostsAndBatches = groupsOf(batches, { ...limits, maxBatches: BATCHES_PER_CHILD });
  const sameGroups = byHosts.length === byHostsAndBatches.length && byHosts.every((group, i) => group.length === byHostsAndBatches[i]?.length);
  return sameGroups || !isPatched('child-batch-budget') ? byHosts : byHostsAndBatches;
}

/** Whole waves in order (a wave's start follows its upgrade), or single batches where there are no waves. */
function units(batches: StepBatch[], maxBatches: number): StepBatch[][] {
  const result: StepBatch[][] = [];
  for (const batch of batches) {
    const last = result[result.length - 1];
    if (last && batch.wave !== undefined && last[0]?.wave === batch.wave && last.length < maxBatches) last.push(batch);
    else result.push([batch]);
  }
  return result;
}

/**
 * Splits a phase's batches into the groups its child workflows run, in order: units (see above) up to `maxHosts`
 * hosts and `maxBatches` batches a group (at least one unit). Only a wave of more than `maxBatches` batches is cut,
 * into consecutive groups: the children run one after another, so its start still follows its upgrade.
 */
export function groupsOf(batches: StepBatch[], { maxHosts, maxBatches = Infinity, wavePerGroup }: GroupLimits): StepBatch[][] {
  const groups: StepBatch[][] = [];
  let hostsInGroup = 0;
  for (const unit of units(batches, maxBatches)) {
    const hosts = hostCount(unit);
    const last = groups[groups.length - 1];
    const fits = last !== undefined && hostsInGroup + hosts <= maxHosts && last.length + unit.length <= maxBatches;
    if (last && fits && !wavePerGroup) {
      last.push(...unit);
      hostsInGroup += hosts;
    } else {
      groups.push([...unit]);
      hostsInGroup = hosts;
    }
  }
  return groups;
}
