/**
 * How exp_avg is stored: float32, or bfloat16 (16 instead of 20 bytes of
 * memory traffic per element and step; half the state in a store made with
 * `momentumDtype: "bfloat16"`). Element `i` of a bfloat16 moment lies at
 * byte `2i` of its slot: a bfloat16-sized slot, or the first half of a
 * float32 one.
 *
 * @module
 */

import { bfloat16Bits, fromBfloat16 } from "../_internal/float32.ts";

/**
 * The storage type of exp_avg (`momentumDtype`): `"float32"`, or
 * `"bfloat16"`, read as the float32 it widens to, the update computed in
 * float32, and the new moment rounded to nearest even, as torch's
 * `exp_avg.copy_(m.float().lerp(g, 1 - β2).to(torch.bfloat16))`.
 */
export type MomentumDtype = "float32" | "bfloat16";

/** The storage types, in the order error messages list them. */
export const MOMENTUM_DTYPES: readonly MomentumDtype[] = ["float32", "bfloat16"];

/**
 * bfloat16 words widened to float32 values (exact).
 *
 * @param words The words.
 * @returns A float32 copy.
 */
export function widenBfloat16(words: Uint16Array): Float32Array {
  return Float32Array.from(words, fromBfloat16);
}

/**
 * Values rounded to bfloat16 words (nearest even; exact for values that
 * came from bfloat16).
 *
 * @param values The values.
 * @returns The words.
 */
export function roundToBfloat16(values: ArrayLike<number>): Uint16Array {
  return Uint16Array.from(values, bfloat16Bits);
}

/** The `size` bfloat16 moments of a slot, as 16-bit words. */
function bfloat16Words(slot: Float32Array, size: number): Uint16Array {
  return new Uint16Array(slot.buffer, slot.byteOffset, size);
}

/**
 * The moments of a slot as float32 values: the slot itself (a live view)
 * for float32, an exact widened copy for bfloat16.
 *
 * @param slot The exp_avg slot.
 * @param dtype How it is stored.
 * @param size The parameter's elements.
 * @returns The values.
 */
export function readMoments(slot: Float32Array, dtype: MomentumDtype, size: number): Float32Array {
  if (dtype === "float32") return slot;
  return widenBfloat16(bfloat16Words(slot, size));
}

/**
 * Writes float32 values into a slot, rounded to nearest even for bfloat16
 * (exact for values that came from a bfloat16 moment).
 *
 * @param slot The exp_avg slot.
 * @param values One value per element of the parameter.
 * @param dtype How it is stored.
 */
export function writeMoments(
  slot: Float32Array,
  values: ArrayLike<number>,
  dtype: MomentumDtype,
): void {
  if (dtype === "float32") {
    slot.set(values);
    return;
  }
  bfloat16Words(slot, values.length).set(roundToBfloat16(values));
}
