/**
 * The step gate: the one decision every engine takes between the gradient
 * scan and the update, from the sums of the whole step (every block, every
 * shard). Engines scan, meet, call {@linkcode decideStep}, then update as it
 * says, so a new gate (a gradient scale from the global norm, a loss-scale
 * skip, agreement across processes) is written here and nowhere else.
 *
 * @module
 */

import type { NonFinitePolicy } from "./options.ts";

/** What the gate is configured with, per step. */
export interface StepGate {
  /** What a NaN or infinite gradient does to the step. */
  readonly nonFinite: NonFinitePolicy;
}

/**
 * What a step does after its scan:
 * - `update`: apply the update, the gradients multiplied by `gradScale`
 *   (1 until a gate scales them: the kernels do not yet take another);
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
 * Whether the gate needs the gradient scan (`Σg²` per block) before it can
 * decide. Without it, engines go straight to the update.
 *
 * @param gate The step's gate.
 * @returns `true` when a scan must run first.
 */
export function gateNeedsScan(gate: StepGate): boolean {
  return gate.nonFinite !== "ignore";
}

/**
 * The step's decision, from the scan's `Σg²` of every block of the step (a
 * non-finite sum means a NaN or infinite gradient: squares of finite
 * float32 values cannot overflow float64).
 *
 * @param gate The step's gate.
 * @param gradSquares `Σg²` per block, or `null` when the gate needs no scan.
 * @returns The decision.
 */
export function decideStep(gate: StepGate, gradSquares: Float64Array | null): StepDecision {
  if (gradSquares === null || !gateNeedsScan(gate)) return UPDATE;
  for (const sum of gradSquares) {
    if (!Number.isFinite(sum)) return gate.nonFinite === "skip" ? SKIP : ABORT;
  }
  return UPDATE;
}
