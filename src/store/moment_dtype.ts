/**
 * How exp_avg is stored: float32; bfloat16 (16 instead of 20 bytes of
 * memory traffic per element and step; half the state in a store made with
 * `momentumDtype: "bfloat16"`); or uint8, bitsandbytes' blockwise 8-bit
 * state (a code a parameter and an absmax a block of 256: about a quarter
 * of the state in a store made with `momentumDtype: "uint8"`). Element `i`
 * of a bfloat16 moment lies at byte `2i` of its slot: a bfloat16-sized
 * slot, or the first half of a float32 one. An 8-bit moment's blocks lie
 * from the slot's start, {@linkcode UINT8_BLOCK_WORDS} words apiece.
 *
 * @module
 */

import { bfloat16Bits, fromBfloat16 } from "../_internal/float32.ts";
import {
  isUint8Tensor,
  readUint8Codes,
  readUint8Run,
  UINT8_BLOCK_WORDS,
  type Uint8Moments,
  uint8SlotWords,
  writeUint8Codes,
  writeUint8Run,
} from "./uint8_moments.ts";

export { UINT8_BLOCK_WORDS };

/**
 * The storage type of exp_avg (`momentumDtype`): `"float32"`;
 * `"bfloat16"`, read as the float32 it widens to, the update computed in
 * float32, and the new moment rounded to nearest even, as torch's
 * `exp_avg.copy_(m.float().lerp(g, 1 - β2).to(torch.bfloat16))`; or
 * `"uint8"`, bitsandbytes' `Lion8bit` state and rule for tensors of 4,096
 * elements or more (smaller ones keep float32, as bitsandbytes').
 */
export type MomentumDtype = "float32" | "bfloat16" | "uint8";

/** The storage types, in the order error messages list them. */
export const MOMENTUM_DTYPES: readonly MomentumDtype[] = ["float32", "bfloat16", "uint8"];

/**
 * Whether a tensor's exp_avg is 8-bit: an 8-bit type, and a tensor of at
 * least 4,096 elements.
 *
 * @param dtype The moment type.
 * @param size The tensor's elements.
 * @returns Whether its moments are codes and scales.
 */
export function isUint8Moment(dtype: MomentumDtype, size: number): boolean {
  return dtype === "uint8" && isUint8Tensor(size);
}

/**
 * The float32 words an exp_avg slot of this type needs.
 *
 * @param dtype The moment type.
 * @param size The tensor's elements.
 * @returns The slot's words.
 */
export function momentSlotWords(dtype: MomentumDtype, size: number): number {
  if (dtype === "bfloat16") return Math.ceil(size / 2);
  return isUint8Moment(dtype, size) ? uint8SlotWords(size) : size;
}

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
 * for float32, an exact widened copy for bfloat16, a dequantized copy for
 * 8-bit moments.
 *
 * @param slot The exp_avg slot.
 * @param dtype How it is stored.
 * @param size The parameter's elements.
 * @returns The values.
 */
export function readMoments(slot: Float32Array, dtype: MomentumDtype, size: number): Float32Array {
  if (isUint8Moment(dtype, size)) return readUint8Run(slot.buffer, slot.byteOffset, size);
  if (dtype !== "bfloat16") return slot;
  return widenBfloat16(bfloat16Words(slot, size));
}

/**
 * Writes float32 values into a slot, rounded to nearest even for bfloat16
 * (exact for values that came from a bfloat16 moment), quantized for 8-bit
 * moments (not always exact for dequantized 8-bit moments: a block whose
 * largest moment is negative dequantizes it to code 0, −0.993·absmax).
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
  if (isUint8Moment(dtype, values.length)) {
    writeUint8Run(slot.buffer, slot.byteOffset, Float32Array.from(values));
    return;
  }
  if (dtype !== "bfloat16") {
    slot.set(values);
    return;
  }
  bfloat16Words(slot, values.length).set(roundToBfloat16(values));
}

/**
 * A copy of a slot's 8-bit moments as they are kept, or `undefined` where
 * the tensor's moments are not 8-bit.
 *
 * @param slot The exp_avg slot.
 * @param dtype How it is stored.
 * @param size The parameter's elements.
 * @returns The codes and scales.
 */
export function readQuantized(
  slot: Float32Array,
  dtype: MomentumDtype,
  size: number,
): Uint8Moments | undefined {
  if (!isUint8Moment(dtype, size)) return undefined;
  return readUint8Codes(slot.buffer, slot.byteOffset, size);
}

/**
 * Writes 8-bit moments into a slot as they are.
 *
 * @param slot The exp_avg slot of an 8-bit tensor.
 * @param moments Its codes and scales.
 */
export function writeQuantized(slot: Float32Array, moments: Uint8Moments): void {
  writeUint8Codes(slot.buffer, slot.byteOffset, moments);
}
