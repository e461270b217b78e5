/**
 * The 8-bit momentum's rule, element by element: bitsandbytes' blockwise
 * 8-bit Lion (`Lion8bit`: exp_avg as one code a parameter from its signed
 * dynamic map, {@linkcode DYNAMIC_MAP}, and a float32 absmax per block of
 * {@linkcode UINT8_BLOCK}) as its pure-PyTorch path computes it, with this
 * library's decoupled decay. For one tensor:
 *
 * ```text
 * s = code[q]·absmax[block]                                (dequantize)
 * p = p·decay − lr·sign(s·β1 + g·(1 − β1))                  (two rounded products, then the sum)
 * s = s·β2, then s = s + (1 − β2)·g                         (torch's mul_, then add_ with alpha: fused)
 * a full block:  absmax = max|s|,  x = s·(1 / max(absmax, 1e-38))
 * the tail:      absmax = max(max|s|, 1e-38),  x = s / absmax
 * q = bucketize(clamp(x, −1, 1), midpoints)                 (on a midpoint: the lower code)
 * ```
 *
 * It is the oracle the faster kernels are held to; fixtures from torch
 * ops (tests/fixtures/generate_uint8.py) hold it to bitsandbytes' rule.
 *
 * @module
 */

import { DYNAMIC_MAP, DYNAMIC_MAP_MIDPOINTS } from "./dynamic_map.ts";
import { fmaF32, signF32 } from "../_internal/float32.ts";

/** Elements per block of the 8-bit state: each block has its own absmax. */
export const UINT8_BLOCK = 256;

/** The smallest tensor whose exp_avg is 8-bit (bitsandbytes' `min_8bit_size`): smaller ones keep float32. */
export const UINT8_MIN_ELEMENTS = 4096;

/** `max(absmax, 1e-38)` as torch's float32 clamp takes it. */
const TINY = Math.fround(1e-38);

/** One tensor's 8-bit exp_avg. */
export interface Uint8Moments {
  /** One code a parameter. */
  readonly codes: Uint8Array;
  /** One float32 scale a block of {@linkcode UINT8_BLOCK} (the last block may be partial). */
  readonly absmax: Float32Array;
}

/** The float32 constants of the 8-bit rule. */
export interface Uint8LionConstants {
  /** `f32(lr)`. */
  readonly lr: number;
  /** `f32(β1)`. */
  readonly beta1: number;
  /** `f32(1 − β1)`. */
  readonly directionWeight: number;
  /** `f32(β2)`. */
  readonly beta2: number;
  /** `f32(1 − β2)`. */
  readonly momentWeight: number;
  /** `f32(1 − (lr / initial_lr)·wd)`. */
  readonly decayMultiplier: number;
  /** The gradient's scale (clipping, maximize); 1 leaves it as it is. */
  readonly gradScale: number;
}

/**
 * The code of a scaled moment: how many midpoints lie below `x` (torch's
 * `bucketize`, `right=False`), so a value exactly on a midpoint takes the
 * lower code.
 *
 * @param x A moment divided by its block's absmax, clamped to [−1, 1].
 * @returns Its code.
 */
export function uint8Code(x: number): number {
  let low = 0;
  let high = DYNAMIC_MAP_MIDPOINTS.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (DYNAMIC_MAP_MIDPOINTS[middle]! < x) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Quantizes one block's moments into codes, and returns its absmax: a full
 * block scales by a float32 reciprocal (its absmax stored as it is, 0 for
 * an all-zero block), the tail (`full` false) divides by its absmax, which
 * is stored clamped to 1e-38.
 *
 * @param moments The block's float32 moments.
 * @param codes Where its codes go.
 * @param full Whether it is a full block of {@linkcode UINT8_BLOCK}.
 * @returns The block's absmax.
 */
export function quantizeUint8Block(
  moments: Float32Array,
  codes: Uint8Array,
  full: boolean,
): number {
  let largest = 0;
  for (const s of moments) largest = Math.max(largest, Math.abs(s));
  const absmax = full ? largest : Math.max(largest, TINY);
  const inverse = Math.fround(1 / Math.max(absmax, TINY));
  for (let i = 0; i < moments.length; i++) {
    const x = full ? Math.fround(moments[i]! * inverse) : Math.fround(moments[i]! / absmax);
    codes[i] = uint8Code(Math.min(1, Math.max(-1, x)));
  }
  return absmax;
}

/**
 * One step of the 8-bit rule on a whole tensor, in place: its parameters
 * `p`, its codes and absmax.
 *
 * @param p The parameters.
 * @param g The gradients.
 * @param moments The tensor's 8-bit exp_avg.
 * @param k The constants.
 */
export function lionUint8Step(
  p: Float32Array,
  g: Float32Array,
  moments: Uint8Moments,
  k: Uint8LionConstants,
): void {
  const block = new Float32Array(UINT8_BLOCK);
  for (let b = 0, start = 0; start < p.length; b++, start += UINT8_BLOCK) {
    const length = Math.min(UINT8_BLOCK, p.length - start);
    const absmax = moments.absmax[b]!;
    for (let i = 0; i < length; i++) {
      const at = start + i;
      const grad = Math.fround(g[at]! * k.gradScale);
      const s = Math.fround(DYNAMIC_MAP[moments.codes[at]!]! * absmax);
      const direction = Math.fround(
        Math.fround(s * k.beta1) + Math.fround(grad * k.directionWeight),
      );
      p[at] = Math.fround(Math.fround(p[at]! * k.decayMultiplier) - k.lr * signF32(direction));
      // torch's add_ with alpha rounds once: a fused multiply-add
      block[i] = fmaF32(k.momentWeight, grad, Math.fround(s * k.beta2));
    }
    moments.absmax[b] = quantizeUint8Block(
      block.subarray(0, length),
      moments.codes.subarray(start, start + length),
      length === UINT8_BLOCK,
    );
  }
}
