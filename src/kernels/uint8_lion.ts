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
 * requantize each block                                     (store/uint8_moments.ts)
 * ```
 *
 * It is the oracle the faster kernels are held to; fixtures from torch
 * ops (tests/fixtures/generate_uint8.py) hold it to bitsandbytes' rule.
 *
 * @module
 */

import { DYNAMIC_MAP } from "../store/dynamic_map.ts";
import { quantizeUint8Block, UINT8_BLOCK, type Uint8Moments } from "../store/uint8_moments.ts";
import { fmaF32, signF32 } from "../_internal/float32.ts";

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
