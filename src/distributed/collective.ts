/**
 * The collective contract: what data-parallel training needs from a group
 * of processes (ranks) that step the same model. The core depends on this
 * interface only; {@linkcode LocalCollective} (one rank) is in the core, and
 * the MPI implementation is the separate entry point `./mpi`, so the core
 * needs no FFI permission.
 *
 * Every rank must call the same collectives in the same order with buffers
 * of the same length: a collective is one operation of the whole group.
 *
 * @module
 */

/**
 * The buffers collectives move: float32 gradients and parameters, float64 sums.
 *
 * @example Sum float64 partials over the ranks
 * ```ts
 * import { type CollectiveBuffer, LocalCollective } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const partials: CollectiveBuffer = new Float64Array([0.5, 2]);
 * await new LocalCollective().allReduceSum(partials);
 * assert.equal(partials[1], 2);
 * ```
 */
export type CollectiveBuffer = Float32Array | Float64Array;

/**
 * The collectives again, blocking the calling thread until they complete:
 * what a synchronous step (`stepSync()`, a TensorFlow.js optimizer's
 * `applyGradients`) needs. The semantics are those of {@linkcode Collective}.
 *
 * @example Block until every rank has its part of the sums
 * ```ts
 * import { LocalCollective } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const { blocking } = new LocalCollective();
 * const grads = new Float32Array([1, 2, 3, 4]);
 * blocking.reduceScatter(grads, [4]); // one rank: its part is the whole buffer
 * assert.deepEqual([...grads], [1, 2, 3, 4]);
 * ```
 */
export interface BlockingCollectives {
  /** {@linkcode Collective.allReduceSum}, blocking. */
  allReduceSum(buffer: CollectiveBuffer): void;
  /** {@linkcode Collective.reduceScatter}, blocking. */
  reduceScatter(buffer: CollectiveBuffer, counts: readonly number[]): void;
  /** {@linkcode Collective.allGather}, blocking. */
  allGather(buffer: CollectiveBuffer, counts: readonly number[]): void;
  /** {@linkcode Collective.broadcast}, blocking. */
  broadcast(buffer: CollectiveBuffer, root: number): void;
  /** {@linkcode Collective.barrier}, blocking. */
  barrier(): void;
}

/**
 * A group of `worldSize` ranks that run the same program, and the
 * collectives between them. Buffers are changed in place and must not be
 * touched until the returned promise settles.
 *
 * @example One rank: every collective leaves the data as it is
 * ```ts
 * import { type Collective, LocalCollective } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const comm: Collective = new LocalCollective();
 * const sums = new Float64Array([1, 2]);
 * await comm.allReduceSum(sums);
 * assert.deepEqual([...sums], [1, 2]);
 * assert.equal(comm.worldSize, 1);
 * ```
 */
export interface Collective {
  /** This process's rank, in [0, worldSize). */
  readonly rank: number;
  /** The number of ranks. */
  readonly worldSize: number;
  /**
   * Sums `buffer` element by element over the ranks, in place: afterwards
   * every rank holds the same sums, bit for bit.
   */
  allReduceSum(buffer: CollectiveBuffer): Promise<void>;
  /** Copies `root`'s `buffer` into every other rank's. */
  broadcast(buffer: CollectiveBuffer, root: number): Promise<void>;
  /** Resolves once every rank has reached it. */
  barrier(): Promise<void>;
  /**
   * Sums `buffer` over the ranks and leaves each rank its own part of the
   * sums, in place: rank `r`'s part is the `counts[r]` elements that start
   * after the parts of ranks `0..r-1`. Elements outside a rank's part are
   * unspecified afterwards.
   *
   * @param counts Elements per rank; they add up to `buffer.length`.
   */
  reduceScatter(buffer: CollectiveBuffer, counts: readonly number[]): Promise<void>;
  /**
   * Copies each rank's part of `buffer` (laid out as in
   * {@linkcode Collective.reduceScatter}) into every other rank's, in place.
   *
   * @param counts Elements per rank; they add up to `buffer.length`.
   */
  allGather(buffer: CollectiveBuffer, counts: readonly number[]): Promise<void>;
  /** The same collectives, blocking; absent where they cannot block. */
  readonly blocking?: BlockingCollectives;
  /** Ends this rank's part in the group (MPI: finalizes); idempotent. */
  close(): Promise<void>;
}

/**
 * Checks that `counts` splits `length` elements over `worldSize` ranks.
 *
 * @param action What was being done, for the message.
 * @param counts Elements per rank.
 * @param worldSize The number of ranks.
 * @param length The buffer's length.
 * @throws {RangeError} When the counts do not fit.
 */
export function checkCounts(
  action: string,
  counts: readonly number[],
  worldSize: number,
  length: number,
): void {
  if (!Array.isArray(counts) || counts.length !== worldSize) {
    throw new RangeError(
      `Cannot ${action} as 'counts' must have one count per rank (${worldSize}): current length is ${
        (counts as unknown[])?.length
      }`,
    );
  }
  let total = 0;
  for (const [r, count] of counts.entries()) {
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(
        `Cannot ${action} as 'counts[${r}]' must be a non-negative integer: current value is ${count}`,
      );
    }
    total += count;
  }
  if (total !== length) {
    throw new RangeError(
      `Cannot ${action} as the counts add up to ${total} but the buffer holds ${length} elements`,
    );
  }
}
