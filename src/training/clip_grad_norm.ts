/**
 * {@linkcode clipGradNorm}: torch's `clip_grad_norm_` for users who clip
 * gradients themselves. The optimizer's `maxGradNorm` does the same inside
 * the step, without a pass of its own over the gradients.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { checkBoolean, checkKnownKeys, checkMaxGradNorm } from "../_internal/validate.ts";
import type { Parameter } from "../store/parameter.ts";
import { clipCoefficient } from "../step/step_decision.ts";

/** Options of {@linkcode clipGradNorm}. */
export interface ClipGradNormOptions {
  /**
   * The norm: 2 (L2) or `Infinity` (the largest |g|).
   *
   * @default {2}
   */
  normType?: 2 | typeof Infinity;
  /**
   * Throw, changing nothing, when the norm is NaN or infinite (torch's
   * `error_if_nonfinite`); otherwise the gradients are multiplied by the
   * coefficient as torch does (0 or NaN).
   *
   * @default {false}
   */
  errorIfNonfinite?: boolean;
}

function checkNormType(normType: unknown): 2 | typeof Infinity {
  if (normType !== 2 && normType !== Infinity) {
    throw new RangeError(
      `Cannot clip gradients as 'normType' must be 2 or Infinity: current value is ${
        formatValue(normType)
      }`,
    );
  }
  return normType;
}

/** The norm of one gradient: √Σg² in float64, or max |g|. */
function normTerm(grad: Float32Array, normType: 2 | typeof Infinity): number {
  // a NaN gradient makes either NaN: Math.max propagates NaN as + does
  let total = 0;
  if (normType === Infinity) {
    for (const g of grad) total = Math.max(total, Math.abs(g));
  } else {
    for (const g of grad) total += g * g;
  }
  return total;
}

/**
 * Scales the gradients of `params` in place so that their global norm is at
 * most `maxNorm`, as torch 1.13's `clip_grad_norm_`: parameters without a
 * gradient are left out, the coefficient `min(1, maxNorm / (norm + 1e-6))`
 * is rounded as torch rounds it, and each gradient is multiplied by it in
 * float32. The norm is taken in float64 and returned rounded to float32
 * (torch sums in float32, so the two may differ in the last bits).
 *
 * @example Clip before stepping
 * ```ts
 * import { clipGradNorm, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2]);
 * w.grad = [3, 4];
 * const norm = clipGradNorm([w], 1);
 * assert.equal(norm, 5); // the norm before clipping
 * assert.ok(Math.abs(w.grad![0]! - 0.6) < 1e-6 && Math.abs(w.grad![1]! - 0.8) < 1e-6);
 * ```
 *
 * @param params The parameters whose gradients are clipped together.
 * @param maxNorm The largest norm allowed; > 0 (`Infinity` only measures).
 * @param options The norm type and the non-finite check.
 * @returns The gradients' norm before clipping, in float32 (0 without gradients).
 * @throws {RangeError} When `maxNorm` is not > 0, `normType` is neither 2
 * nor Infinity, or (with `errorIfNonfinite`) the norm is not finite.
 * @throws {Error} When an optimizer's step over these parameters is in flight.
 */
export function clipGradNorm(
  params: Iterable<Parameter>,
  maxNorm: number,
  options: ClipGradNormOptions = {},
): number {
  const action = "Cannot clip gradients";
  checkMaxGradNorm(action, "maxNorm", maxNorm);
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${action} as 'options' must be an object: current value is ${formatValue(options)}`,
    );
  }
  checkKnownKeys(action, "options", options, ["normType", "errorIfNonfinite"]);
  const errorIfNonfinite = checkBoolean(
    action,
    "errorIfNonfinite",
    options.errorIfNonfinite ?? false,
  );
  const normType = checkNormType(options.normType ?? 2);
  const withGrad = [...params].filter((param) => param.grad !== null);
  if (withGrad.length === 0) return 0;
  // ensureGrad() refuses while a step that reads these gradients is in flight
  const grads = withGrad.map((param) => param.ensureGrad());
  const terms = grads.map((grad) => normTerm(grad, normType));
  const total = Math.fround(
    normType === Infinity
      ? terms.reduce((max, term) => Math.max(max, term), 0)
      : Math.sqrt(terms.reduce((sum, term) => sum + term, 0)),
  );
  if (errorIfNonfinite && !Number.isFinite(total)) {
    throw new RangeError(
      `${action} as the total norm of order ${normType} is ${total}: the gradients are unchanged`,
    );
  }
  const coefficient = clipCoefficient(maxNorm, total);
  for (const grad of grads) {
    for (let i = 0; i < grad.length; i++) grad[i] = Math.fround(grad[i]! * coefficient);
  }
  return total;
}
