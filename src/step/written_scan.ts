/**
 * The gradient scan taken as the library writes a gradient: the `grad`
 * setter (and so the tfjs adapter's copies) copies block by block and runs
 * the step's own scan kernel on each block while it is still in cache (the
 * verdict alone, or `Σg²` where the optimizer clips), so a
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
import {
  decideStep,
  gateNeedsScan,
  gateNeedsSquares,
  type StepDecision,
  type StepGate,
} from "./step_decision.ts";
import { BLOCK_ELEMENTS, type StepPlan } from "./step_plan.ts";

/** The gate of a step decided before it runs: the engine neither scans nor decides again. */
export const DECIDED: StepGate = Object.freeze({ nonFinite: "ignore", maxGradNorm: Infinity });

/**
 * A `writeGradient` for a store's parameters: copies `values` into the
 * gradient slot block by block (64 KiB), scanning each block right after
 * copying it, while it is in cache.
 *
 * @param kernel The kernel the step would scan with.
 * @param squares Sum `Σg²` (for clipping), or test for NaN and infinity alone (cheaper).
 * @returns The writer.
 */
export function gradientWriter(
  kernel: LionKernel,
  squares: boolean,
): (slots: ParameterSlots, values: ArrayLike<number>) => void {
  // one segment and its list, reused: a write of a small gradient costs little more than its copy
  const segment = { data: 0, grad: 0, expAvg: 0, length: 0, group: 0, block: 0 };
  const segments = [segment];
  return (slots, values) => {
    const view = slots.gradView;
    const blocks = Math.ceil(view.length / BLOCK_ELEMENTS);
    const previous = slots.gradScan;
    const scan = previous?.squares === squares && previous.sums.length === blocks
      ? previous
      : { sums: new Float64Array(blocks), squares };
    const memory = slots.memory.arenas[slots.arena]!.memory;
    const typed = ArrayBuffer.isView(values) ? values as unknown as Float32Array : undefined;
    // a plain array, or one block: copied at once, then scanned
    if (typed === undefined || blocks === 1) view.set(values);
    for (let block = 0; block < blocks; block++) {
      const start = block * BLOCK_ELEMENTS;
      const length = Math.min(BLOCK_ELEMENTS, view.length - start);
      if (typed !== undefined && blocks > 1) {
        view.set(typed.subarray(start, start + length), start);
      }
      segment.grad = slots.grad + start;
      segment.length = length;
      segment.block = block;
      kernel.scanGradients(memory, segments, scan.sums, squares);
    }
    slots.gradScan = scan;
  };
}

/**
 * The scan's sums per block of the step, from the scans taken at the
 * writes, or `null` when a parameter of the step has none (its gradient is
 * scanned by the step), or has the verdict alone where `squares` are needed.
 *
 * @param plan The step's plan.
 * @param squares Whether the step needs `Σg²` (it clips).
 * @returns The sums, in block order.
 */
export function writtenScan(plan: StepPlan, squares: boolean): Float64Array | null {
  const sums = new Float64Array(plan.blocks.length);
  for (const { slots, firstBlock, blockCount } of plan.params) {
    const scan = slots.gradViewShared ? null : slots.gradScan;
    if (scan === null || scan.sums.length !== blockCount || (squares && !scan.squares)) return null;
    sums.set(scan.sums, firstBlock);
  }
  return sums;
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
  if (gate === DECIDED || !gateNeedsScan(gate)) return undefined;
  return decideFromScan(gate, writtenScan(plan, gateNeedsSquares(gate)));
}

/**
 * The decision of a step from sums its scan would have given, taken
 * before it (as a write or the data-parallel average scans), or
 * `undefined` without them.
 *
 * @param gate The step's gate.
 * @param gradSquares The sums per block of the step, or `null`.
 * @returns The sums and the decision.
 */
export function decideFromScan(
  gate: StepGate,
  gradSquares: Float64Array | null,
): { gradSquares: Float64Array; decision: StepDecision } | undefined {
  return gradSquares === null
    ? undefined
    : { gradSquares, decision: decideStep(gate, gradSquares) };
}
