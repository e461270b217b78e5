/**
 * The gradient scan taken as the library writes a gradient: the `grad`
 * setter (and so the tfjs adapter's copies) copies block by block and runs
 * the step's own scan kernel on each block while it is still in cache, so a
 * step whose gradients were all written this way decides from those sums and
 * skips its scan pass over memory. The sums are the scan's own (the same
 * kernel on the same blocks), so the decision, the clipping coefficient and
 * the reported norm are the same, bit for bit.
 *
 * A gradient that anyone may write behind the library's back (a view handed
 * out by `grad` or `ensureGrad()`) is scanned by the step, as before.
 *
 * @module
 */

import type { LionKernel } from "../kernels/kernel.ts";
import type { ParameterSlots } from "../store/slots.ts";
import { decideStep, type StepDecision, type StepGate } from "./step_decision.ts";
import { BLOCK_ELEMENTS, type StepPlan } from "./step_plan.ts";

/** The gate of a step decided before it runs: the engine neither scans nor decides again. */
export const DECIDED: StepGate = Object.freeze({ nonFinite: "ignore", maxGradNorm: Infinity });

/** Blocks copied before they are scanned: 256 KiB, which stays in a core's cache. */
const BLOCKS_PER_CHUNK = 4;

/**
 * A `writeGradient` for a store's parameters: copies `values` into the
 * gradient slot, scanning each chunk right after copying it.
 *
 * @param kernel The kernel the step would scan with.
 * @returns The writer.
 */
export function gradientWriter(
  kernel: LionKernel,
): (slots: ParameterSlots, values: ArrayLike<number>) => void {
  return (slots, values) => {
    const view = slots.gradView;
    const blocks = Math.ceil(view.length / BLOCK_ELEMENTS);
    const scan = slots.gradScan?.length === blocks ? slots.gradScan : new Float64Array(blocks);
    const memory = slots.memory.arenas[slots.arena]!.memory;
    const typed = ArrayBuffer.isView(values) ? values as unknown as Float32Array : undefined;
    if (typed === undefined) view.set(values); // a plain array: copied at once, then scanned
    for (let first = 0; first < blocks; first += BLOCKS_PER_CHUNK) {
      const segments = [];
      for (let block = first; block < Math.min(blocks, first + BLOCKS_PER_CHUNK); block++) {
        const start = block * BLOCK_ELEMENTS;
        const length = Math.min(BLOCK_ELEMENTS, view.length - start);
        segments.push({ data: 0, grad: slots.grad + start, expAvg: 0, length, group: 0, block });
      }
      const start = first * BLOCK_ELEMENTS;
      const end = Math.min(view.length, (first + BLOCKS_PER_CHUNK) * BLOCK_ELEMENTS);
      if (typed !== undefined) view.set(typed.subarray(start, end), start);
      kernel.scanGradients(memory, segments, scan, true);
    }
    slots.gradScan = scan;
  };
}

/**
 * `Σg²` per block of the step, from the scans taken at the writes, or
 * `null` when a parameter of the step has none (its gradient is scanned by
 * the step).
 *
 * @param plan The step's plan.
 * @returns The sums, in block order.
 */
export function writtenSquares(plan: StepPlan): Float64Array | null {
  const squares = new Float64Array(plan.blocks.length);
  for (const { slots, firstBlock, blockCount } of plan.params) {
    const scan = slots.gradViewShared ? null : slots.gradScan;
    if (scan === null || scan.length !== blockCount) return null;
    squares.set(scan, firstBlock);
  }
  return squares;
}

/**
 * The decision of a step whose gradients were all scanned as written, or
 * `undefined` when the step must scan (or needs no scan at all).
 *
 * @param gate The step's gate.
 * @param plan The step's plan.
 * @returns The sums and the decision.
 */
export function decideFromWrites(
  gate: StepGate,
  plan: StepPlan,
): { gradSquares: Float64Array; decision: StepDecision } | undefined {
  if (gate === DECIDED || (gate.nonFinite === "ignore" && gate.maxGradNorm === Infinity)) {
    return undefined;
  }
  const gradSquares = writtenSquares(plan);
  return gradSquares === null
    ? undefined
    : { gradSquares, decision: decideStep(gate, gradSquares) };
}
