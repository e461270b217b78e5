/**
 * Float32 arithmetic exactly as PyTorch's CPU kernels do it, for the scalar
 * kernel (the oracle of every faster backend).
 *
 * JavaScript numbers are float64, so each float32 operation is a float64
 * operation followed by `Math.fround`. That is exact for one `+`, `-`, `*`
 * of float32 operands (float64 has more than 2·24 + 2 bits), but not for a
 * fused multiply-add, whose float64 sum can round onto a float32 midpoint and
 * then round again the wrong way. {@linkcode fmaF32} repairs that case.
 *
 * @module
 */

/**
 * `Math.fround(w * d + a)` rounded once, like a float32 fused multiply-add.
 *
 * The product of two float32 values is exact in float64. The float64 sum
 * `s` and its exact error `e` (TwoSum) hold `w·d + a` exactly. Rounding `s`
 * to float32 is then correct unless `s` is exactly halfway between two
 * float32 values while `e` is not 0: then the sign of `e` picks the side.
 *
 * @param w A float32 value.
 * @param d A float32 value.
 * @param a A float32 value.
 * @returns The float32 nearest to the exact `w·d + a` (ties to even).
 */
export function fmaF32(w: number, d: number, a: number): number {
  const product = w * d;
  const sum = product + a;
  const rounded = Math.fround(sum);
  if (rounded === sum || !Number.isFinite(sum)) return rounded;
  const away = sum - rounded; // exact: the two are within one float32 ulp
  const other = rounded + 2 * away;
  if (Math.fround(other) !== other) return rounded; // `sum` is no midpoint
  // `sum` is a midpoint: the rounding error of `sum` decides (TwoSum).
  const productPart = sum - a;
  const error = (product - productPart) + (a - (sum - productPart));
  if (error === 0) return rounded;
  return (error > 0) === (away > 0) ? other : rounded;
}

/**
 * torch's CPU `lerp(a, b, w)` for float32: it branches on the weight and
 * fuses the multiply-add, with `b - a` rounded to float32 first.
 *
 * @param a The start (float32).
 * @param b The end (float32).
 * @param w The weight (float32).
 * @returns The float32 interpolation.
 */
export function lerpF32(a: number, b: number, w: number): number {
  const d = Math.fround(b - a);
  // `w - 1` is exact for w in [0.5, 1] (Sterbenz), as in torch.
  return w < 0.5 ? fmaF32(w, d, a) : fmaF32(w - 1, d, b);
}

/**
 * torch 1.13's CPU `sign`: `(0 < x) - (x < 0)`, so 0 for ±0 and for NaN.
 *
 * @param x Any number.
 * @returns -1, 0 or 1.
 */
export function signF32(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : 0;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/**
 * The bfloat16 bits of a value rounded to float32 then to bfloat16, to
 * nearest even, NaN as `0x7FC0`: c10's `round_to_nearest_even`, what
 * `tensor.to(torch.bfloat16)` does.
 *
 * @example Rounding to nearest even
 * ```ts
 * import { bfloat16Bits } from "./float32.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bfloat16Bits(1), 0x3f80);
 * assert.equal(bfloat16Bits(1 + 2 ** -8), 0x3f80); // a tie: to the even 1
 * assert.equal(bfloat16Bits(1 + 3 * 2 ** -8), 0x3f82); // a tie: up to the even
 * assert.equal(bfloat16Bits(NaN), 0x7fc0);
 * ```
 *
 * @param x The value.
 * @returns Its 16 bits.
 */
export function bfloat16Bits(x: number): number {
  scratch[0] = x;
  const bits = scratchBits[0]!;
  if (Number.isNaN(scratch[0])) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The value of bfloat16 bits (exact: a bfloat16 is a float32's high half).
 *
 * @example
 * ```ts
 * import { fromBfloat16 } from "./float32.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fromBfloat16(0x3f80), 1);
 * assert.equal(fromBfloat16(0xc000), -2);
 * ```
 *
 * @param bits The 16 bits.
 * @returns The value.
 */
export function fromBfloat16(bits: number): number {
  scratchBits[0] = bits << 16;
  return scratch[0]!;
}
