/**
 * The tolerance the gpujs backend is held to, element by element, for one
 * step from a known state.
 *
 * torch computes `m + w·(g − m)` with one fused multiply-add and
 * `p·decay − lr·s` with two roundings. A shader compiler may or may not
 * contract either into an fma, gpu.js's cpu mode computes in float64 and
 * rounds once, and GPUs may flush subnormals to zero. So each result may be
 * off by the rounding of one extra (or one fewer) operation on its operands:
 * - moment: `|Δ| ≤ 2^-22 · max(|m|, |g|) + 2^-126` (two roundings of terms no
 *   larger than twice the larger operand, plus a flushed subnormal);
 * - parameter: `|Δ| ≤ 2^-23 · (|p| + |p'|) + 2^-126` (one rounding of
 *   `p·decay` more or less, and the final rounding going the other way);
 * - except where `lerp(m, g, 1 − β1)` is itself within the moment tolerance
 *   of 0: there the sign is decided by an exact tie, and the parameter may
 *   take any of the three signs' results.
 *
 * @module
 */

import { lerpF32 } from "../src/_internal/float32.ts";
import type { GroupConstants } from "../src/kernels/kernel.ts";

const TINY = 2 ** -126;

/** Largest error allowed in a moment computed from `m` and `g`. */
export function momentTolerance(m: number, g: number): number {
  return 2 ** -22 * Math.max(Math.abs(m), Math.abs(g)) + TINY;
}

/** Largest error allowed in a parameter `next` computed from `p`. */
export function paramTolerance(p: number, next: number): number {
  return 2 ** -23 * (Math.abs(p) + Math.abs(next)) + TINY;
}

/** One element before the step and the expected and actual results. */
export interface ElementCase {
  readonly p: number;
  readonly m: number;
  readonly g: number;
  readonly expectedP: number;
  readonly expectedM: number;
  readonly actualP: number;
  readonly actualM: number;
}

/**
 * Why an element is out of tolerance, or `null` when it is within.
 *
 * @param k The group's constants.
 * @param e The element.
 * @returns A description of the mismatch, or `null`.
 */
export function deviceMismatch(k: GroupConstants, e: ElementCase): string | null {
  if (!(Math.abs(e.actualM - e.expectedM) <= momentTolerance(e.m, e.g))) {
    return `exp_avg ${e.actualM}, expected ${e.expectedM} (m ${e.m}, g ${e.g})`;
  }
  if (Math.abs(e.actualP - e.expectedP) <= paramTolerance(e.p, e.expectedP)) return null;
  const direction = lerpF32(e.m, e.g, k.directionWeight);
  if (Math.abs(direction) <= momentTolerance(e.m, e.g)) {
    const decayed = Math.fround(e.p * k.decayMultiplier);
    for (const sign of [-1, 0, 1]) {
      const candidate = Math.fround(decayed - k.lr * sign);
      if (Math.abs(e.actualP - candidate) <= paramTolerance(e.p, candidate)) return null;
    }
  }
  return `param ${e.actualP}, expected ${e.expectedP} (p ${e.p}, m ${e.m}, g ${e.g})`;
}
