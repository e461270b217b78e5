/**
 * Data parallelism for one optimizer: what its ranks exchange around a
 * step. Every rank steps the same parameters on its own batch; before the
 * update the gradients are summed over the ranks and divided by the world
 * size (in float32), so every rank then scans, decides and updates the same
 * averaged gradients and stays bit-identical to the others, with no other
 * collective. With sharded state (ZeRO-1) each rank keeps only its part of
 * the buckets: the gradients are reduce-scattered instead, and the
 * parameters all-gathered after the update.
 *
 * A rank without a gradient for a parameter adds zeros (as PyTorch's DDP
 * does); a parameter no rank has a gradient for takes no part in the step.
 *
 * The average is the step's gradient write, so it carries the step's scan:
 * each block is divided by the kernel and scanned right after, while it is
 * in cache, and the step decides from those sums instead of scanning again
 * (with sharded state, each rank its own blocks, as it would have).
 *
 * @module
 */

import type { ParameterSlots } from "../store/slots.ts";
import type { Collective } from "./collective.ts";
import type { CollectiveOp } from "./collective_ops.ts";
import { type Bucket, gradientBuckets } from "./gradient_buckets.ts";
import type { Parameter } from "../store/parameter.ts";
import type { KernelSegment, LionKernel } from "../kernels/kernel.ts";
import { BLOCK_ELEMENTS, type StepPlan } from "../step/step_plan.ts";
import { packBfloat16, sumBfloat16 } from "./bfloat16_exchange.ts";

/** A parameter of the optimizer, in group order. */
export interface DataParallelEntry {
  /** The parameter. */
  readonly param: Parameter;
  /** Its slots. */
  readonly slots: ParameterSlots;
  /** Index of its group. */
  readonly group: number;
}

/** What the exchange scans as it averages: the verdict alone, `Σg²` (for clipping), or nothing. */
export type ExchangeScan = "verdict" | "squares" | null;

/** How gradients travel: float32, or rounded to bfloat16 (half the bytes). */
export type GradientEncoding = "float32" | "bfloat16";

/** The ranks' exchanges for one optimizer. */
export class DataParallel {
  /** The ranks. */
  readonly collective: Collective;
  /** Whether each rank keeps only its part of exp_avg (ZeRO-1). */
  readonly shardState: boolean;
  readonly #entries: readonly DataParallelEntry[];
  /** Per entry: how many ranks have a gradient, after the exchange. */
  readonly #flags: Float32Array;
  #buckets: readonly Bucket[] = [];
  /** Each entry's name, shape and group: fixed when the optimizer is built. */
  readonly #described: readonly string[];
  /** Which entries required a gradient when the layout was checked (and the buckets cut). */
  readonly #checkedRequires: Uint8Array;
  #checked = false;
  /** The kernel that averages and scans the gradients (the engine's CPU kernel). */
  readonly #kernel: LionKernel;
  /** What the last exchange scanned, and its sums per parameter, by the parameter's blocks. */
  #scan: ExchangeScan = null;
  readonly #scans = new Map<ParameterSlots, Float64Array>();
  /** How gradients travel. */
  readonly #encoding: GradientEncoding;
  /** Per bucket, every rank's bfloat16 gradients (the bfloat16 encoding). */
  readonly #words = new Map<Bucket, Uint16Array>();

  /**
   * @param entries Every parameter of the optimizer, in group order.
   * @param collective The ranks.
   * @param shardState Keep only this rank's part of exp_avg.
   * @param kernel The engine's CPU kernel: it averages and scans the gradients.
   * @param encoding How gradients travel.
   */
  constructor(
    entries: readonly DataParallelEntry[],
    collective: Collective,
    shardState: boolean,
    kernel: LionKernel,
    encoding: GradientEncoding = "float32",
  ) {
    this.#entries = entries;
    this.#encoding = encoding;
    this.collective = collective;
    this.shardState = shardState;
    this.#kernel = kernel;
    this.#flags = new Float32Array(entries.length);
    this.#described = entries.map(({ param, group }) =>
      `${param.name}:${param.shape.join("x")}:${group}`
    );
    this.#checkedRequires = new Uint8Array(entries.length);
  }

  /** The buckets of the current layout. */
  get buckets(): readonly Bucket[] {
    return this.#buckets;
  }

  /**
   * The check that every rank built the same optimizer (names, shapes,
   * groups, which parameters require a gradient), before the first exchange
   * and again when this rank's layout changes: an all-gather of a
   * fingerprint. Empty while the layout is the one checked.
   *
   * @returns The collectives; the last one's follow-up throws on a mismatch.
   */
  layoutOps(): CollectiveOp[] {
    // only requiresGrad can change after construction: compare it, flag by flag, every step
    const requires = (i: number) => (this.#entries[i]!.slots.requiresGrad ? 1 : 0);
    if (this.#checked && this.#checkedRequires.every((checked, i) => checked === requires(i))) {
      return [];
    }
    const now = Uint8Array.from(this.#entries, (_, i) => requires(i));
    const { rank, worldSize } = this.collective;
    const prints = new Float64Array(worldSize);
    prints[rank] = fingerprint(this.#described.map((entry, i) => `${entry}:${now[i]}`).join("|"));
    return [{
      kind: "allGather",
      buffer: prints,
      counts: new Array(worldSize).fill(1),
      then: () => {
        const differ = [...prints.keys()].filter((r) => prints[r] !== prints[0]);
        if (differ.length > 0) {
          throw new RangeError(
            `Cannot step as the ranks built different optimizers: the parameters of rank${
              differ.length > 1 ? "s" : ""
            } ${
              differ.join(", ")
            } (names, shapes, groups, requiresGrad) differ from rank 0's. Every rank must build the same optimizer`,
          );
        }
        this.#checkedRequires.set(now);
        this.#checked = true;
        this.#buckets = gradientBuckets(this.#entries, worldSize);
        this.#words.clear();
      },
    }];
  }

  /**
   * The gradient exchange: the count of ranks with a gradient per
   * parameter, then each bucket all-reduced (or, sharded, reduce-scattered)
   * and averaged as it arrives: divided by the world size, block by block,
   * each block scanned as `scan` asks (but for one rank, unsharded). Absent
   * gradients are zeroed first, so they add nothing. Call
   * {@linkcode DataParallel.settle} after.
   *
   * @param scan What the step's gate needs scanned.
   * @returns The collectives.
   */
  exchangeOps(scan: ExchangeScan): CollectiveOp[] {
    const { rank, worldSize } = this.collective;
    // one rank, unsharded, in float32, writes nothing here: its engine scans (in its workers) as on one process
    const rewrites = worldSize > 1 || this.shardState || this.#encoding === "bfloat16";
    const taken = rewrites ? scan : null;
    this.#scan = taken;
    const ops = this.presenceOps();
    this.#entries.forEach(({ slots }) => {
      if (taken !== null && slots.requiresGrad) this.#scanOf(slots).fill(0);
    });
    for (const bucket of this.#buckets) {
      const [from, to] = this.shardState
        ? [bucket.owners[rank]!, bucket.owners[rank + 1]!]
        : [0, bucket.blocks.length];
      if (this.#encoding === "bfloat16") {
        ops.push(this.#bfloat16Op(bucket, from, to));
        continue;
      }
      ops.push({
        kind: this.shardState ? "reduceScatter" : "allReduceSum",
        buffer: this.#view(bucket, 0),
        ...(this.shardState ? { counts: bucket.counts } : {}),
        then: () => this.#average(bucket, from, to),
      });
    }
    return ops;
  }

  /**
   * The count of ranks with a gradient per parameter, as an all-reduce;
   * absent gradients are zeroed first, so that they add nothing, and the
   * scans taken as the gradients were written are dropped where the
   * exchange rewrites them. Call {@linkcode DataParallel.settle} after.
   *
   * @param keepWrittenScans Keep a present gradient's scan (the sign vote reads the gradients as written).
   * @returns The collective.
   */
  presenceOps(keepWrittenScans = false): CollectiveOp[] {
    this.#entries.forEach(({ slots }, i) => {
      const present = slots.requiresGrad && slots.hasGrad;
      this.#flags[i] = present ? 1 : 0;
      if (slots.requiresGrad && !present) slots.gradView.fill(0);
      // an absent gradient's scan is stale: the step scans its zeros
      if (!keepWrittenScans || !present) slots.gradScan = null;
    });
    return [{ kind: "allReduceSum", buffer: this.#flags }];
  }

  /**
   * A bucket's bfloat16 exchange: this rank's gradients rounded into its
   * part of the bucket's words now, every rank's part all-gathered, then
   * blocks `[from, to)` summed in rank order and averaged.
   */
  #bfloat16Op(bucket: Bucket, from: number, to: number): CollectiveOp {
    const { rank, worldSize } = this.collective;
    const stride = bucket.length + (bucket.length % 2); // whole float32 words a rank
    let words = this.#words.get(bucket);
    if (words === undefined) this.#words.set(bucket, words = new Uint16Array(stride * worldSize));
    const grads = this.#view(bucket, 0);
    packBfloat16(
      new Uint32Array(grads.buffer, grads.byteOffset, grads.length),
      0,
      bucket.length,
      words,
      rank * stride,
    );
    const summed = words;
    return {
      kind: "allGather",
      // the words travel as float32: an all-gather copies them as they are
      buffer: new Float32Array(words.buffer),
      counts: new Array<number>(worldSize).fill(stride / 2),
      then: () => {
        for (let b = from; b < to; b++) {
          const { grad, length } = bucket.blocks[b]!;
          sumBfloat16(
            summed,
            stride,
            worldSize,
            grad - bucket.grad,
            length,
            grads,
            grad - bucket.grad,
          );
        }
        this.#average(bucket, from, to);
      },
    };
  }

  /**
   * The sums of the last exchange's scan for `plan`'s blocks (0 for the
   * blocks other ranks own, with sharded state), or `null` where it did not
   * scan what the step needs.
   *
   * @param plan The step's plan.
   * @param squares Whether the step needs `Σg²` (it clips).
   * @returns The sums, in block order.
   */
  scanned(plan: StepPlan, squares: boolean): Float64Array | null {
    if (this.#scan === null || (squares && this.#scan !== "squares")) return null;
    const sums = new Float64Array(plan.blocks.length);
    for (const { slots, firstBlock } of plan.params) sums.set(this.#scanOf(slots), firstBlock);
    return sums;
  }

  /** Divides blocks `[from, to)` of `bucket` by the world size, each scanned after. */
  #average(bucket: Bucket, from: number, to: number): void {
    const { memory } = this.#entries[0]!.slots.memory.arenas[bucket.arena]!;
    const { worldSize } = this.collective;
    const scan = this.#scan;
    for (let b = from; b < to; b++) {
      const { slots, offset, length, grad } = bucket.blocks[b]!;
      const block = offset / BLOCK_ELEMENTS;
      const segment: KernelSegment = { data: 0, grad, expAvg: 0, length, group: 0, block };
      const out = scan === null ? null : this.#scanOf(slots);
      this.#kernel.averageGradients(memory, [segment], worldSize, out, scan === "squares");
    }
  }

  /** A parameter's scan sums, one per block of its gradient. */
  #scanOf(slots: ParameterSlots): Float64Array {
    const blocks = Math.ceil(slots.gradView.length / BLOCK_ELEMENTS);
    let sums = this.#scans.get(slots);
    if (sums?.length !== blocks) this.#scans.set(slots, sums = new Float64Array(blocks));
    return sums;
  }

  /** Marks the gradients present where some rank had one, after the exchange. */
  settle(): void {
    this.#entries.forEach(({ slots }, i) => {
      if (slots.requiresGrad) slots.hasGrad = this.#flags[i]! > 0;
    });
  }

  /**
   * Sharded state: every rank's part of each bucket's parameter values (or
   * exp_avg) copied to the others, in place.
   *
   * @param slot Which slot: `"data"` after an update, `"expAvg"` to gather the state.
   * @returns The collectives.
   */
  gatherOps(slot: "data" | "expAvg"): CollectiveOp[] {
    return this.#buckets.map((bucket) => ({
      kind: "allGather",
      buffer: this.#view(bucket, slot === "data" ? -bucket.dataBack : bucket.expAvgAhead),
      counts: bucket.counts,
    }));
  }

  /**
   * The divergence check: a checksum of every parameter's values (and,
   * unsharded, exp_avg) all-gathered; the follow-up throws on every rank,
   * naming the ranks and parameters that differ from rank 0's.
   *
   * @param withState Include exp_avg (each rank holds all of it).
   * @param step The step just taken, for the message.
   * @returns The collectives.
   */
  divergenceOps(withState: boolean, step: number): CollectiveOp[] {
    const { rank, worldSize } = this.collective;
    const per = this.#entries.length * 2;
    const sums = new Float64Array(worldSize * per);
    this.#entries.forEach(({ slots }, i) => {
      sums[rank * per + 2 * i] = checksum(slots.dataView);
      sums[rank * per + 2 * i + 1] = withState ? checksum(slots.expAvgView) : 0;
    });
    return [{
      kind: "allGather",
      buffer: sums,
      counts: new Array(worldSize).fill(per),
      then: () => {
        const drifted: string[] = [];
        for (let r = 1; r < worldSize; r++) {
          const names = this.#entries.flatMap(({ param }, i) =>
            [0, 1].filter((k) => sums[r * per + 2 * i + k] !== sums[2 * i + k])
              .map((k) => `${param.name}${k === 1 ? " (exp_avg)" : ""}`)
          );
          if (names.length > 0) {
            drifted.push(`rank ${r} differs from rank 0 in ${names.join(", ")}`);
          }
        }
        if (drifted.length > 0) {
          throw new Error(
            `The ranks drifted apart by step ${step}: ${
              drifted.join("; ")
            }. Every rank must start from the same parameters and state and step on the same averaged gradients`,
          );
        }
      },
    }];
  }

  /** A float32 view of a bucket's slot (`shift` elements from its gradients). */
  #view(bucket: Bucket, shift: number): Float32Array {
    const { buffer } = this.#entries[0]!.slots.memory.arenas[bucket.arena]!.memory;
    return new Float32Array(buffer, (bucket.grad + shift) * 4, bucket.length);
  }
}

/** FNV-1a over a string's UTF-16 code units: a 32-bit fingerprint. */
function fingerprint(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** FNV-1a over the bits of float32 values. */
function checksum(values: Float32Array): number {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  let hash = 0x811c9dc5;
  for (let i = 0; i < bits.length; i++) hash = Math.imul(hash ^ bits[i]!, 0x01000193);
  return hash >>> 0;
}
