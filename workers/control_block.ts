/**
 * The control block: the shared memory through which the main thread
 * dispatches a step to the shard workers and collects the results, with no
 * message per step. Both sides build the same views from the same sizes,
 * and every field is written and read by the encoders and decoders below,
 * side by side.
 *
 * A step: the main thread writes the step (group constants, gate, flags),
 * the block table and each worker's range (when the plan changed), clears
 * the counters, then bumps `generation` and notifies. Each worker scans its
 * gradients (when the gate needs it) and meets the others at the scan
 * barrier; the last to arrive takes the step's decision from every block's
 * sum and writes it; each then updates its blocks as decided (unless a
 * worker failed), writes its sums, and counts itself `done`. The main
 * thread waits on `done` with `Atomics.waitAsync`, never blocking (or, for
 * a synchronous step, in `Atomics.wait`, where the thread may block).
 *
 * @module
 */

import type { HostWrites } from "../src/engine/engine.ts";
import {
  GROUP_CONSTANT_FIELDS,
  type GroupConstants,
  packGroupConstants,
  PARTIAL_COUNT,
  unpackGroupConstants,
} from "../src/kernels/kernel.ts";
import type { SerializedError } from "../src/engine/shard_error.ts";
import {
  NON_FINITE_POLICIES,
  type StepDecision,
  type StepGate,
} from "../src/step/step_decision.ts";
import type { PlannedBlock } from "../src/step/step_plan.ts";

/** Header fields (Int32). */
export const Header = {
  generation: 0,
  done: 1,
  flags: 2,
  scanArrived: 3,
  /** The step's decision: {@linkcode DECISION_CODES}. */
  decision: 4,
  failed: 5,
  stop: 6,
  /** The gate's non-finite policy, as an index of `NON_FINITE_POLICIES`. */
  nonFinitePolicy: 7,
  /** Bumped whenever the block table or the ranges change (workers cache their blocks). */
  planVersion: 8,
  /** Workers at the count barrier of a cautious step (like `scanArrived`). */
  countArrived: 9,
  /** 1 once the last worker at the count barrier wrote the caution factors; 0 when a worker had failed. */
  cautionReady: 10,
  /**
   * Workers that have started: ready to take steps, or failed to open their
   * runner (then `startFailed` is 1 and the error is in its error field). A
   * thread that blocks instead of awaiting messages waits on this.
   */
  started: 11,
  /** 1 when a worker failed to start. */
  startFailed: 12,
} as const;

/** Bits of `flags`. */
export const Flags = {
  metrics: 1,
  /** The host wrote parameter values since the last step (device runners upload them). */
  paramsWritten: 2,
  /** The host wrote exp_avg (a loaded state dict). */
  stateWritten: 4,
  /** Not a step: bring device-resident exp_avg back into the arenas. */
  pull: 8,
} as const;

/** Decisions as the header holds them. */
const DECISION_CODES = ["update", "skip", "abort"] as const;
/** Int32 values per block in the block table. */
export const BLOCK_FIELDS = 7; // arena, data, grad, expAvg, length, group, firstBlock
/** Bytes of each worker's error field (JSON of the error's name, message and stack). */
export const ERROR_BYTES = 8192;
const HEADER_INTS = 16;

/** The sizes both sides agree on. */
export interface ControlSizes {
  readonly workers: number;
  readonly groups: number;
  readonly maxBlocks: number;
}

/** A step as the workers read it. */
export interface ShardStepRequest {
  readonly groups: readonly GroupConstants[];
  readonly gate: StepGate;
  readonly metrics: boolean;
  readonly writes: HostWrites;
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
  /** Agreeing elements per block (cautious groups). */
  readonly counts: Float64Array;
  /** The caution factor per block (0: not cautious). */
  readonly caution: Float32Array;
  /** Partial sums per block. */
  readonly partials: Float64Array;
  /** The decision's gradient scale. */
  readonly gradScale: Float64Array;
  /** The gate's `maxGradNorm` (Infinity: no clipping). */
  readonly maxGradNorm: Float64Array;
  /** UTF-8 error field per worker. */
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
    const take = (bytes: number) => {
      offset = Math.ceil(offset / 8) * 8;
      const at = offset;
      offset += bytes;
      return at;
    };
    const header = take(HEADER_INTS * 4);
    const ranges = take(workers * 2 * 4);
    const groupsAt = take(groups * GROUP_CONSTANT_FIELDS * 4);
    const blocks = take(maxBlocks * BLOCK_FIELDS * 4);
    const gradSquares = take(maxBlocks * 8);
    const counts = take(maxBlocks * 8);
    const caution = take(maxBlocks * 4);
    const partials = take(maxBlocks * PARTIAL_COUNT * 8);
    const gradScale = take(8);
    const maxGradNorm = take(8);
    const errors = take(workers * ERROR_BYTES);
    this.buffer = buffer ?? new SharedArrayBuffer(offset);
    this.sizes = sizes;
    this.header = new Int32Array(this.buffer, header, HEADER_INTS);
    this.ranges = new Int32Array(this.buffer, ranges, workers * 2);
    this.groups = new Float32Array(this.buffer, groupsAt, groups * GROUP_CONSTANT_FIELDS);
    this.blocks = new Int32Array(this.buffer, blocks, maxBlocks * BLOCK_FIELDS);
    this.gradSquares = new Float64Array(this.buffer, gradSquares, maxBlocks);
    this.counts = new Float64Array(this.buffer, counts, maxBlocks);
    this.caution = new Float32Array(this.buffer, caution, maxBlocks);
    this.partials = new Float64Array(this.buffer, partials, maxBlocks * PARTIAL_COUNT);
    this.gradScale = new Float64Array(this.buffer, gradScale, 1);
    this.maxGradNorm = new Float64Array(this.buffer, maxGradNorm, 1);
    this.errors = new Uint8Array(this.buffer, errors, workers * ERROR_BYTES);
  }

  /** Writes the step's constants, gate and flags (main thread). */
  writeStep({ groups, gate, metrics, writes }: ShardStepRequest): void {
    packGroupConstants(groups, this.groups);
    Atomics.store(this.header, Header.nonFinitePolicy, NON_FINITE_POLICIES.indexOf(gate.nonFinite));
    this.maxGradNorm[0] = gate.maxGradNorm;
    Atomics.store(
      this.header,
      Header.flags,
      (metrics ? Flags.metrics : 0) | (writes.params ? Flags.paramsWritten : 0) |
        (writes.state ? Flags.stateWritten : 0),
    );
  }

  /** Reads what {@linkcode ControlBlock.writeStep} wrote (a worker). */
  readStep(): ShardStepRequest {
    const flags = Atomics.load(this.header, Header.flags);
    return {
      groups: unpackGroupConstants(this.groups, this.sizes.groups),
      gate: {
        nonFinite: NON_FINITE_POLICIES[Atomics.load(this.header, Header.nonFinitePolicy)]!,
        maxGradNorm: this.maxGradNorm[0]!,
      },
      metrics: (flags & Flags.metrics) !== 0,
      writes: {
        params: (flags & Flags.paramsWritten) !== 0,
        state: (flags & Flags.stateWritten) !== 0,
      },
    };
  }

  /** Asks for a pull instead of a step (main thread). */
  writePull(): void {
    Atomics.store(this.header, Header.flags, Flags.pull);
  }

  /** Whether the dispatch is a pull (a worker). */
  readPull(): boolean {
    return (Atomics.load(this.header, Header.flags) & Flags.pull) !== 0;
  }

  /**
   * Writes the block table and each worker's range, and bumps `planVersion`
   * (main thread).
   *
   * @param blocks The plan's blocks, in block order.
   * @param bounds `workers + 1` bounds: worker k takes blocks [bounds[k], bounds[k + 1]).
   */
  writeBlocks(blocks: readonly PlannedBlock[], bounds: Int32Array): void {
    for (const b of blocks) {
      this.blocks.set(
        [b.arena, b.data, b.grad, b.expAvg, b.length, b.group, b.firstBlock],
        b.block * BLOCK_FIELDS,
      );
    }
    for (let w = 0; w < this.sizes.workers; w++) {
      this.ranges[2 * w] = bounds[w]!;
      this.ranges[2 * w + 1] = bounds[w + 1]!;
    }
    Atomics.add(this.header, Header.planVersion, 1);
  }

  /** Worker `index`'s blocks, as {@linkcode ControlBlock.writeBlocks} wrote them. */
  readBlocks(index: number): PlannedBlock[] {
    return this.#readBlockRange(this.ranges[2 * index]!, this.ranges[2 * index + 1]!);
  }

  /** Every block of the step (the caution factors need whole parameters). */
  readAllBlocks(): PlannedBlock[] {
    return this.#readBlockRange(0, this.blockCount());
  }

  #readBlockRange(from: number, to: number): PlannedBlock[] {
    const blocks: PlannedBlock[] = [];
    const t = this.blocks;
    for (let block = from; block < to; block++) {
      const at = block * BLOCK_FIELDS;
      blocks.push({
        arena: t[at]!,
        data: t[at + 1]! >>> 0,
        grad: t[at + 2]! >>> 0,
        expAvg: t[at + 3]! >>> 0,
        length: t[at + 4]!,
        group: t[at + 5]!,
        block,
        firstBlock: t[at + 6]!,
      });
    }
    return blocks;
  }

  /** The number of blocks of the step: the end of the last worker's range. */
  blockCount(): number {
    return this.ranges[2 * this.sizes.workers - 1]!;
  }

  /** Writes the step's decision (the last worker at the scan barrier). */
  writeDecision(decision: StepDecision): void {
    this.gradScale[0] = decision.action === "update" ? decision.gradScale : 0;
    Atomics.store(this.header, Header.decision, DECISION_CODES.indexOf(decision.action));
  }

  /** Reads what {@linkcode ControlBlock.writeDecision} wrote. */
  readDecision(): StepDecision {
    const action = DECISION_CODES[Atomics.load(this.header, Header.decision)]!;
    return action === "update" ? { action, gradScale: this.gradScale[0]! } : { action };
  }

  /** Writes worker `index`'s error, as JSON (truncated stack if it does not fit). */
  writeError(index: number, error: SerializedError): void {
    const field = this.errors.subarray(index * ERROR_BYTES, (index + 1) * ERROR_BYTES);
    let bytes = new TextEncoder().encode(JSON.stringify(error));
    if (bytes.length >= ERROR_BYTES) {
      const { name, message } = error;
      bytes = new TextEncoder().encode(
        JSON.stringify({ name, message: message.slice(0, ERROR_BYTES / 4) }),
      );
    }
    field.fill(0);
    field.set(bytes.subarray(0, ERROR_BYTES - 1));
  }

  /** Reads worker `index`'s error, or `undefined` when it has none. */
  readError(index: number): SerializedError | undefined {
    const field = this.errors.subarray(index * ERROR_BYTES, (index + 1) * ERROR_BYTES);
    const end = field.indexOf(0);
    if (end === 0) return undefined;
    return JSON.parse(new TextDecoder().decode(field.slice(0, end < 0 ? ERROR_BYTES : end)));
  }

  /** Clears every error field. */
  clearErrors(): void {
    this.errors.fill(0);
  }
}
