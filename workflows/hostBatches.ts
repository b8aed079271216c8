/**
 * The one loop over a phase's batches, shared by upgradeFleet (phaseBatches.ts) and its child workflow runHostSteps:
 * segment by segment, in order, a window of each side by side, no new batch once too many hosts have failed.
 */
import { segments } from '../core/batching';
import { inLanes } from '../core/lanes';
import type { StepBatch } from '../core/planner';

export interface SegmentLoop<E> {
  /** Whether too many hosts have failed to start another batch. */
  over: () => boolean;
  /** How many batches of a segment run side by side. */
  window: (segment: StepBatch[]) => number;
  run: (batch: StepBatch) => Promise<void>;
  /** Before a segment starts: an event here (a rejected gate) ends the loop. */
  before?: (segment: StepBatch[]) => Promise<E | undefined>;
}

/** Runs batches segment by segment (core/batching.ts `segments`), in order, a window of each at once. */
export async function runSegments<E>(batches: StepBatch[], loop: SegmentLoop<E>): Promise<E | undefined> {
  for (const segment of segments(batches)) {
    if (loop.over()) break;
    const event = await loop.before?.(segment);
    if (event) return event;
    await inLanes(segment, loop.window(segment), loop.run, loop.over);
  }
  return undefined;
}
