/**
 * Sharding: a step's blocks, in slot order, cut into contiguous ranges of
 * about equal element counts, one per worker. Blocks are never split, so a
 * block's partial sums are computed whole by one worker, and a tensor may
 * span shards.
 *
 * @module
 */

/**
 * Cuts `lengths` (elements per block, in order) into `parts` contiguous
 * ranges balanced by element count.
 *
 * @param lengths Elements of each block.
 * @param parts Number of ranges (workers), >= 1.
 * @returns `parts + 1` bounds: range k is blocks [bounds[k], bounds[k + 1]).
 */
export function balanceShards(lengths: ArrayLike<number>, parts: number): Int32Array<ArrayBuffer> {
  let total = 0;
  for (let i = 0; i < lengths.length; i++) total += lengths[i]!;
  const bounds = new Int32Array(parts + 1);
  bounds[parts] = lengths.length;
  let block = 0;
  let before = 0; // elements in blocks [0, block)
  for (let k = 1; k < parts; k++) {
    const target = (total * k) / parts;
    // advance while taking the next block brings the cut closer to the target
    while (block < lengths.length && before + lengths[block]! / 2 < target) {
      before += lengths[block]!;
      block++;
    }
    bounds[k] = block;
  }
  return bounds;
}
