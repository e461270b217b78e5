/**
 * Gradient buckets: the runs of gradient memory that one collective call
 * moves in data-parallel training. The store packs the parameters of a
 * chunk one after another in each region, so the gradients of neighbouring
 * parameters that all require a gradient form one stretch of memory; a
 * bucket is a piece of such a stretch, cut at block boundaries
 * ({@linkcode BLOCK_ELEMENTS} from each parameter's first element, as the
 * step plan cuts them), at most {@linkcode BUCKET_ELEMENTS} long unless one
 * block is longer.
 *
 * Each bucket is also split between the ranks at block boundaries, for
 * sharded optimizer state: the parts of the ranks lie one after another
 * (padding between parameters included), as a reduce-scatter and an
 * all-gather lay them out. Each cut falls on the side of its ideal place
 * that evens out the cuts before it, so each bucket is split about evenly
 * and each rank owns about 1/worldSize of all the elements.
 *
 * @module
 */

import type { ParameterSlots } from "../store/slots.ts";
import { BLOCK_ELEMENTS } from "../step/step_plan.ts";

/**
 * Elements per bucket (4 MiB of float32): small enough that averaging one
 * bucket overlaps the all-reduce of the next, large enough that the
 * collectives' fixed cost stays small (`deno task bench:dist`).
 */
export const BUCKET_ELEMENTS = 2 ** 20;

/** One block of a bucket: a piece of one parameter. */
export interface BucketBlock {
  /** The parameter's slots. */
  readonly slots: ParameterSlots;
  /** Its first element, from the parameter's first. */
  readonly offset: number;
  /** Elements. */
  readonly length: number;
  /** Element offset of its gradient in the arena. */
  readonly grad: number;
}

/** A bucket: gradient memory moved by one collective. */
export interface Bucket {
  /** The arena. */
  readonly arena: number;
  /** Element offset of its first gradient in the arena. */
  readonly grad: number;
  /** Elements from the first block's start to the last block's end. */
  readonly length: number;
  /** Elements from a gradient slot back to its data slot (the chunk's region stride). */
  readonly dataBack: number;
  /** Elements from a gradient slot on to its exp_avg slot. */
  readonly expAvgAhead: number;
  /** Its blocks, in memory order. */
  readonly blocks: readonly BucketBlock[];
  /** Elements of each rank's part (they add up to `length`). */
  readonly counts: readonly number[];
  /** The blocks each rank owns: `blocks[owners[r] .. owners[r + 1])`. */
  readonly owners: readonly number[];
}

/** A parameter, by its position in the optimizer, for bucketing. */
export interface BucketEntry {
  /** Its slots. */
  readonly slots: ParameterSlots;
}

/**
 * Cuts the gradients of the entries that require a gradient into buckets,
 * each split between `worldSize` ranks.
 *
 * @param entries Every parameter of the optimizer, in group order.
 * @param worldSize The number of ranks.
 * @param bucketElements Elements per bucket (tests use small ones).
 * @returns The buckets, in memory order.
 */
export function gradientBuckets(
  entries: readonly BucketEntry[],
  worldSize: number,
  bucketElements: number = BUCKET_ELEMENTS,
): Bucket[] {
  const order = entries
    .map(({ slots }) => slots)
    .filter((slots) => slots.requiresGrad)
    .sort((a, b) => a.arena - b.arena || a.grad - b.grad);
  const runs: { first: ParameterSlots; blocks: BucketBlock[] }[] = [];
  let blocks: BucketBlock[] = [];
  let first: ParameterSlots | undefined;
  let end = 0;
  const close = () => {
    if (first !== undefined && blocks.length > 0) runs.push({ first, blocks });
    blocks = [];
  };
  for (const slots of order) {
    const adjacent = first !== undefined && slots.arena === first.arena &&
      slots.grad >= end && slots.grad - end < 16 &&
      slots.grad - slots.data === first.grad - first.data;
    if (!adjacent) {
      close();
      first = slots;
    }
    const size = slots.gradView.length;
    for (let offset = 0; offset < size; offset += BLOCK_ELEMENTS) {
      const grad = slots.grad + offset;
      if (
        blocks.length > 0 &&
        grad + Math.min(BLOCK_ELEMENTS, size - offset) - blocks[0]!.grad > bucketElements
      ) {
        close();
        first = slots;
      }
      blocks.push({ slots, offset, length: Math.min(BLOCK_ELEMENTS, size - offset), grad });
    }
    end = slots.grad + size;
  }
  close();
  // ranks below each cut hold this many elements more than their share so far
  const excess = new Float64Array(worldSize);
  return runs.map((run) => bucketOf(run.first, run.blocks, excess));
}

/**
 * A bucket of `blocks`, split between the ranks: each cut at the block
 * boundary next to its ideal place (r/worldSize of the bucket), on the side
 * that makes up for the cuts of the buckets before, so that every bucket is
 * split about evenly (collectives of lopsided parts progress in many small
 * stages) and every rank's total stays within about a block of its share.
 */
function bucketOf(
  slots: ParameterSlots,
  blocks: readonly BucketBlock[],
  excess: Float64Array,
): Bucket {
  const worldSize = excess.length;
  const start = blocks[0]!.grad;
  const last = blocks.at(-1)!;
  const length = last.grad + last.length - start;
  const startOf = (b: number) => (b < blocks.length ? blocks[b]!.grad : start + length);
  const owners = [0];
  for (let r = 1; r < worldSize; r++) {
    const ideal = start + (r * length) / worldSize;
    let right = owners[r - 1]!;
    while (right < blocks.length && startOf(right) < ideal) right++;
    const left = Math.max(owners[r - 1]!, right - 1);
    const cut = excess[r]! > 0 ? left : right;
    owners.push(cut);
    excess[r]! += startOf(cut) - ideal;
  }
  owners.push(blocks.length);
  // a rank's part runs from its first block to the next rank's first block (padding included)
  const counts = owners.slice(0, -1).map((b, r) => startOf(owners[r + 1]!) - startOf(b));
  return {
    arena: slots.arena,
    grad: start,
    length,
    dataBack: slots.grad - slots.data,
    expAvgAhead: slots.expAvg - slots.grad,
    blocks,
    counts,
    owners,
  };
}
