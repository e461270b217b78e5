/**
 * The step plan: which elements a step touches, cut into blocks.
 *
 * Each parameter with a gradient is cut into blocks of
 * {@linkcode BLOCK_ELEMENTS} counted from its first element. A block is the
 * unit of partial sums: whatever thread or worker computes a block, it sums
 * it in the same order, and the calling thread adds a parameter's blocks in
 * block order, so metrics do not depend on how blocks are shared out.
 *
 * @module
 */

import { isUint8Moment, type MomentumDtype, UINT8_BLOCK_WORDS } from "../store/moment_dtype.ts";
import {
  cautionFactor,
  type GroupConstants,
  type KernelSegment,
  PARTIAL_COUNT,
} from "../kernels/kernel.ts";
import type { MetricPartials } from "./metrics.ts";
import type { Parameter } from "../store/parameter.ts";
import type { ParameterSlots } from "../store/slots.ts";

/** Elements per block of partial sums (64 KiB of float32). */
export const BLOCK_ELEMENTS = 16_384;

/** A parameter that takes part in a step. */
export interface ActiveParameter {
  /** The parameter. */
  readonly param: Parameter;
  /** Its slots in the store. */
  readonly slots: ParameterSlots;
  /** Index of its group. */
  readonly group: number;
}

/** A parameter's place in the plan. */
export interface PlannedParameter extends ActiveParameter {
  /** Index of its first block. */
  readonly firstBlock: number;
  /** Number of its blocks. */
  readonly blockCount: number;
}

/** A block: a kernel segment and the arena it lies in. */
export interface PlannedBlock extends KernelSegment {
  /** Index of the arena that holds the block's three slots. */
  readonly arena: number;
  /** Index of the first block of the block's parameter (its blocks are consecutive). */
  readonly firstBlock: number;
}

/** The blocks of one step. */
export interface StepPlan {
  /** The parameters, in group order then parameter order. */
  readonly params: readonly PlannedParameter[];
  /** The blocks, in block order (`blocks[i].block === i`). */
  readonly blocks: readonly PlannedBlock[];
  /**
   * The parameters' names, in `params` order: one list per plan, which the
   * metrics of every step on the plan share (their keys are built once).
   */
  readonly names: readonly string[];
}

/** How a plan lays out exp_avg: its type, and for 8-bit moments the groups' count. */
export interface MomentLayout {
  /** How exp_avg is stored. */
  readonly momentumDtype: MomentumDtype;
  /**
   * The optimizer's groups. Under `"uint8"` the kernels take twice as many
   * constants: each group's 8-bit ones, then the same groups' float32 ones,
   * which the blocks of tensors under 4,096 elements point to.
   */
  readonly groups: number;
}

const FLOAT32_LAYOUT: MomentLayout = { momentumDtype: "float32", groups: 0 };

/**
 * Cuts the active parameters into blocks.
 *
 * @param active The parameters that have a gradient and require one.
 * @param blockElements Elements per block (tests use small blocks; even,
 * and a multiple of 256 for 8-bit moments, whose blocks of 256 must not be cut).
 * @param layout How exp_avg is stored: a bfloat16 block's first moment lies
 * `2 · start` bytes into the slot, so its float32 offset (byte / 4) moves by
 * `start / 2`; an 8-bit block's first scale block lies
 * `start / 256` of them into the slot.
 * @returns The plan.
 */
export function planStep(
  active: readonly ActiveParameter[],
  blockElements: number = BLOCK_ELEMENTS,
  layout: MomentLayout = FLOAT32_LAYOUT,
): StepPlan {
  const { momentumDtype } = layout;
  if (momentumDtype === "uint8" && blockElements % 256 !== 0) {
    throw new RangeError(
      `Cannot plan blocks of ${blockElements} elements for 8-bit moments: they must be whole blocks of 256`,
    );
  }
  const blocks: PlannedBlock[] = [];
  const params: PlannedParameter[] = [];
  for (const entry of active) {
    const { slots } = entry;
    const size = slots.dataView.length;
    const uint8 = isUint8Moment(momentumDtype, size);
    const momentStride = momentumDtype === "bfloat16" ? 0.5 : uint8 ? UINT8_BLOCK_WORDS / 256 : 1;
    // a small tensor of an 8-bit optimizer takes its group's float32 constants
    const group = momentumDtype === "uint8" && !uint8 ? entry.group + layout.groups : entry.group;
    const firstBlock = blocks.length;
    for (let start = 0; start < size; start += blockElements) {
      blocks.push({
        arena: slots.arena,
        data: slots.data + start,
        grad: slots.grad + start,
        expAvg: slots.expAvg + start * momentStride,
        length: Math.min(blockElements, size - start),
        group,
        block: blocks.length,
        firstBlock,
      });
    }
    params.push({ ...entry, firstBlock, blockCount: blocks.length - firstBlock });
  }
  return { params, blocks, names: params.map(({ param }) => param.name) };
}

/**
 * A list of blocks split by arena (a kernel call never crosses an arena),
 * each arena's blocks in the list's order.
 *
 * @param blocks Blocks, from any arenas.
 * @returns The arena of each run and its segments, by arena index.
 */
export function blocksByArena(
  blocks: readonly PlannedBlock[],
): { arena: number; segments: PlannedBlock[] }[] {
  const runs = new Map<number, PlannedBlock[]>();
  for (const block of blocks) {
    let run = runs.get(block.arena);
    if (run === undefined) runs.set(block.arena, run = []);
    run.push(block);
  }
  return [...runs].sort(([a], [b]) => a - b).map(([arena, segments]) => ({ arena, segments }));
}

/**
 * Adds each parameter's block partials, in block order.
 *
 * @param plan The step's plan.
 * @param partials `PARTIAL_COUNT` sums per block.
 * @returns The pre-reduced metrics, by parameter name.
 */
export function partialsByParameter(plan: StepPlan, partials: Float64Array): MetricPartials {
  const sums = new Float64Array(plan.params.length * PARTIAL_COUNT);
  plan.params.forEach(({ firstBlock, blockCount }, i) => {
    for (let block = firstBlock; block < firstBlock + blockCount; block++) {
      for (let k = 0; k < PARTIAL_COUNT; k++) {
        sums[i * PARTIAL_COUNT + k]! += partials[block * PARTIAL_COUNT + k]!;
      }
    }
  });
  return { names: plan.names, sums };
}

/**
 * Names of the parameters with a block whose `Σg²` is not finite (a NaN or
 * infinite gradient).
 *
 * @param plan The step's plan.
 * @param gradSquares `Σg²` per block.
 * @returns The names, in plan order.
 */
export function nonFiniteParameters(plan: StepPlan, gradSquares: Float64Array): string[] {
  return plan.params
    .filter(({ firstBlock, blockCount }) => {
      for (let block = firstBlock; block < firstBlock + blockCount; block++) {
        if (!Number.isFinite(gradSquares[block]!)) return true;
      }
      return false;
    })
    .map(({ param }) => param.name);
}

/**
 * Each block's caution factor (0 in groups that are not cautious), from the
 * agreeing counts of every block of the step: a parameter's factor comes
 * from the counts of all its blocks, wherever they were counted.
 *
 * @param blocks Every block of the step, in block order.
 * @param counts Agreeing elements per block (read for cautious groups only).
 * @param groups Each group's constants.
 * @param out The factor per block.
 */
export function cautionFactors(
  blocks: readonly PlannedBlock[],
  counts: Float64Array,
  groups: readonly GroupConstants[],
  out: Float32Array,
): void {
  for (let start = 0; start < blocks.length;) {
    const first = blocks[start]!;
    let end = start;
    let agreeing = 0;
    let elements = 0;
    for (; end < blocks.length && blocks[end]!.firstBlock === first.firstBlock; end++) {
      agreeing += counts[end]!;
      elements += blocks[end]!.length;
    }
    out.fill(groups[first.group]!.cautious ? cautionFactor(agreeing, elements) : 0, start, end);
    start = end;
  }
}
