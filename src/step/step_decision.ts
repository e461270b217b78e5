/**
 * The step gate: the one decision every engine takes between the gradient
 * scan and the update, from the sums of the whole step (every block, every
 * shard). Engines scan, meet, call {@linkcode decideStep}, then update as it
 * says, so a new gate (a gradient scale from the global norm, a loss-scale
 * skip, agreement across processes) is written here and nowhere else.
 *
 * @module
 */

import { namesOf } from "../_internal/names_of.ts";

/**
 * What a step does when a gradient holds NaN or ±Infinity:
 * - `"error"`: throw a `RangeError` naming the parameters, changing nothing;
 * - `"skip"`: skip the whole step, report it in `lastStep` and the logger;
 * - `"ignore"`: apply it as torch does (the moment becomes NaN).
 *
 * @example Skip steps with bad gradients instead of throwing
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { nonFinite: "skip", logger: null });
 * w.grad = [NaN, 1];
 * await opt.step();
 * assert.deepEqual(opt.lastStep.nonFinite, ["w"]);
 * assert.deepEqual([...w.data], [1, 1]);
 * ```
 */
export type NonFinitePolicy = "error" | "skip" | "ignore";

/** The non-finite policies (their indices are the control block's codes). */
export const NON_FINITE_POLICIES: readonly NonFinitePolicy[] = namesOf({
  error: 0,
  skip: 0,
  ignore: 0,
});

/** What the gate is configured with, per step. */
export interface StepGate {
  /** What a NaN or infinite gradient does to the step. */
  readonly nonFinite: NonFinitePolicy;
  /**
   * Clip the gradients to this global L2 norm (torch's `clip_grad_norm_`);
   * `Infinity` leaves them as they are.
   */
  readonly maxGradNorm: number;
}

/**
 * What a step does after its scan:
 * - `update`: apply the update, the gradients multiplied by `gradScale` (a
 *   float32 value; 1 leaves them exactly as they are);
 * - `skip`: change nothing, and report the step as skipped;
 * - `abort`: change nothing, and fail the step (`nonFinite: "error"`).
 */
export type StepDecision =
  | { readonly action: "update"; readonly gradScale: number }
  | { readonly action: "skip" }
  | { readonly action: "abort" };

/** The decision of a step whose gradients are applied as they are. */
export const UPDATE: StepDecision = Object.freeze({ action: "update", gradScale: 1 });
const SKIP: StepDecision = Object.freeze({ action: "skip" });
/** The decision of a step that must change nothing and fail. */
export const ABORT: StepDecision = Object.freeze({ action: "abort" });

/**
 * Whether the gate tests the gradients for NaN and ±Infinity: every policy
 * but `"ignore"`.
 *
 * @param gate The step's gate.
 * @returns `true` when a non-finite gradient stops the step.
 */
export function gateChecksFinite(gate: StepGate): boolean {
  return gate.nonFinite !== "ignore";
}

/**
 * What a step whose gradients hold NaN or ±Infinity does under the gate:
 * `skip` or `abort`, or `update` where the gate does not check (`"ignore"`).
 *
 * @param gate The step's gate.
 * @returns The decision.
 */
export function nonFiniteDecision(gate: StepGate): StepDecision {
  return !gateChecksFinite(gate) ? UPDATE : gate.nonFinite === "skip" ? SKIP : ABORT;
}

/**
 * Whether the gate needs the gradient scan (`Σg²` per block) before it can
 * decide. Without it, engines go straight to the update.
 *
 * @param gate The step's gate.
 * @returns `true` when a scan must run first.
 */
export function gateNeedsScan(gate: StepGate): boolean {
  return gateChecksFinite(gate) || gateNeedsSquares(gate);
}

/**
 * Whether the gate needs `Σg²` from the scan (the norm, for clipping), and
 * not the non-finite verdict alone: without it, the scan only tests each
 * gradient for NaN and ±Infinity, which costs a read and no arithmetic.
 *
 * @param gate The step's gate.
 * @returns `true` when the scan must sum squares.
 */
export function gateNeedsSquares(gate: StepGate): boolean {
  return gate.maxGradNorm !== Infinity;
}

/**
 * The global L2 norm of the step's gradients from the scan's `Σg²` per
 * block, rounded to float32 as torch's `clip_grad_norm_` returns it.
 *
 * @param gradSquares `Σg²` per block.
 * @returns `f32(√Σ)`; NaN or Infinity when a gradient is.
 */
export function globalGradNorm(gradSquares: Float64Array): number {
  let total = 0;
  for (const sum of gradSquares) total += sum;
  return Math.fround(Math.sqrt(total));
}

/**
 * torch 1.13's clipping coefficient, rounded as it rounds it:
 * `max_norm / (total_norm + 1e-6)` on a float32 tensor is the reciprocal of
 * `f32(total + f32(1e-6))` times `f32(maxNorm)`, each rounded to float32,
 * then clamped at 1.
 *
 * @param maxNorm The norm to clip to.
 * @param total The gradients' norm (float32).
 * @returns The float32 factor the gradients are multiplied by.
 */
export function clipCoefficient(maxNorm: number, total: number): number {
  const reciprocal = Math.fround(1 / Math.fround(total + Math.fround(1e-6)));
  return Math.min(Math.fround(reciprocal * Math.fround(maxNorm)), 1);
}

/**
 * The step's decision, from the scan's `Σg²` of every block of the step (a
 * non-finite sum means a NaN or infinite gradient: squares of finite
 * float32 values cannot overflow float64), or its verdict alone where the
 * gate needs no norm: the `nonFinite` policy first, then the clipping
 * coefficient of `maxGradNorm`.
 *
 * @param gate The step's gate.
 * @param gradSquares `Σg²` (or the verdict) per block, or `null` when the gate needs no scan.
 * @returns The decision.
 */
export function decideStep(gate: StepGate, gradSquares: Float64Array | null): StepDecision {
  if (gradSquares === null || !gateNeedsScan(gate)) return UPDATE;
  if (gateChecksFinite(gate)) {
    for (const sum of gradSquares) {
      if (!Number.isFinite(sum)) return nonFiniteDecision(gate);
    }
  }
  if (!gateNeedsSquares(gate)) return UPDATE;
  const gradScale = clipCoefficient(gate.maxGradNorm, globalGradNorm(gradSquares));
  return gradScale === 1 ? UPDATE : { action: "update", gradScale };
}
