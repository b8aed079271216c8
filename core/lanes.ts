/**
 * Bounded concurrency, one helper for the activity (hosts of a batch) and the workflow (batches of a segment). Pure
 * and deterministic: lanes take items in order, so a workflow replays the same starts.
 */

/** Runs `items` in order, at most `lanes` at a time; once `stop()` says so, starts no more (those under way finish). */
export async function inLanes<T>(items: readonly T[], lanes: number, run: (item: T) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && !stop()) {
      const item = items[next++] as T;
      await run(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(lanes, items.length) }, lane));
}
