/**
 * The control block: the shared memory through which the main thread
 * dispatches a step to the shard workers and collects the results, with no
 * message per step. Both sides build the same views from the same sizes.
 *
 * A step: the main thread writes the group constants, the block table (when
 * the plan changed), each worker's block range and the flags, clears the
 * counters, then bumps `generation` and notifies. Each worker scans its
 * gradients (when asked), meets the others at the scan barrier, updates its
 * blocks unless a gradient was non-finite or a worker failed, writes its
 * sums, and counts itself `done`. The main thread waits on `done` with
 * `Atomics.waitAsync`, never blocking.
 *
 * @module
 */

import { GROUP_CONSTANT_FIELDS } from "../src/kernel.ts";

/** Header slots (Int32). */
export const Header = {
  generation: 0,
  done: 1,
  flags: 2,
  scanArrived: 3,
  nonFinite: 4,
  failed: 5,
  stop: 6,
  /** Test hook: 1 + index of a worker that must fail this step. */
  faultWorker: 7,
  /** Test hook: 1 = throw in the kernel, 2 = die (uncaught error). */
  faultMode: 8,
  /** Bumped whenever the block table or the ranges change (workers cache their segments). */
  planVersion: 9,
} as const;

/** Bits of `flags`. */
export const Flags = {
  scan: 1,
  metrics: 2,
  /** The host wrote parameter values since the last step (device engines upload them). */
  paramsWritten: 4,
  /** The host wrote exp_avg (a loaded state dict). */
  stateWritten: 8,
  /** Not a step: bring device-resident exp_avg back into the arenas. */
  pull: 16,
} as const;

/** Int32 values per block in the block table. */
export const BLOCK_FIELDS = 6; // arena, data, grad, expAvg, length, group
/** Bytes of each worker's error message slot. */
export const ERROR_BYTES = 1024;
const HEADER_INTS = 16;
const PARTIALS = 6;

/** The sizes both sides agree on. */
export interface ControlSizes {
  readonly workers: number;
  readonly groups: number;
  readonly maxBlocks: number;
}

/** Typed views of a control block. */
export class ControlBlock {
  /** The shared memory. */
  readonly buffer: SharedArrayBuffer;
  /** The sizes. */
  readonly sizes: ControlSizes;
  /** Header. */
  readonly header: Int32Array;
  /** `[start, end)` block range per worker. */
  readonly ranges: Int32Array;
  /** Group constants. */
  readonly groups: Float32Array;
  /** The block table. */
  readonly blocks: Int32Array;
  /** `Σg²` per block. */
  readonly gradSquares: Float64Array;
  /** Partial sums per block. */
  readonly partials: Float64Array;
  /** UTF-8 error message per worker. */
  readonly errors: Uint8Array;

  /**
   * Views `buffer`, or allocates one when omitted.
   *
   * @param sizes The sizes.
   * @param buffer An existing control block (the worker side).
   */
  constructor(sizes: ControlSizes, buffer?: SharedArrayBuffer) {
    const { workers, groups, maxBlocks } = sizes;
    let offset = 0;
    const take = (bytes: number, align: number) => {
      offset = Math.ceil(offset / align) * align;
      const at = offset;
      offset += bytes;
      return at;
    };
    const header = take(HEADER_INTS * 4, 8);
    const ranges = take(workers * 2 * 4, 8);
    const groupsAt = take(groups * GROUP_CONSTANT_FIELDS * 4, 8);
    const blocks = take(maxBlocks * BLOCK_FIELDS * 4, 8);
    const gradSquares = take(maxBlocks * 8, 8);
    const partials = take(maxBlocks * PARTIALS * 8, 8);
    const errors = take(workers * ERROR_BYTES, 8);
    this.buffer = buffer ?? new SharedArrayBuffer(offset);
    this.sizes = sizes;
    this.header = new Int32Array(this.buffer, header, HEADER_INTS);
    this.ranges = new Int32Array(this.buffer, ranges, workers * 2);
    this.groups = new Float32Array(this.buffer, groupsAt, groups * GROUP_CONSTANT_FIELDS);
    this.blocks = new Int32Array(this.buffer, blocks, maxBlocks * BLOCK_FIELDS);
    this.gradSquares = new Float64Array(this.buffer, gradSquares, maxBlocks);
    this.partials = new Float64Array(this.buffer, partials, maxBlocks * PARTIALS);
    this.errors = new Uint8Array(this.buffer, errors, workers * ERROR_BYTES);
  }

  /** Writes `message` into worker `index`'s error slot (truncated). */
  writeError(index: number, message: string): void {
    const slot = this.errors.subarray(index * ERROR_BYTES, (index + 1) * ERROR_BYTES);
    slot.fill(0);
    slot.set(new TextEncoder().encode(message).subarray(0, ERROR_BYTES - 1));
  }

  /** Reads worker `index`'s error message, or "" when it has none. */
  readError(index: number): string {
    const slot = this.errors.subarray(index * ERROR_BYTES, (index + 1) * ERROR_BYTES);
    const end = slot.indexOf(0);
    return new TextDecoder().decode(slot.slice(0, end < 0 ? ERROR_BYTES : end));
  }
}
