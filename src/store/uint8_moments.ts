/**
 * The 8-bit moments' storage format: bitsandbytes' blockwise quantization
 * (its signed dynamic map, {@linkcode DYNAMIC_MAP}, and a float32 absmax a
 * block of {@linkcode UINT8_BLOCK}) as its pure-PyTorch path computes it,
 * and the way a slot lays a tensor's blocks out. The update rule that reads
 * and writes them is in the kernels (js_kernel.ts, uint8_blocks.ts and
 * the wasm kernel's `update_u8`).
 *
 * ```text
 * dequantize:    s = code[q]·absmax[block]
 * a full block:  absmax = max|s|,  x = s·(1 / max(absmax, 1e-38))
 * the tail:      absmax = max(max|s|, 1e-38),  x = s / absmax
 * quantize:      q = bucketize(clamp(x, −1, 1), midpoints)   (on a midpoint: the lower code)
 * ```
 *
 * @module
 */

import { DYNAMIC_MAP, DYNAMIC_MAP_MIDPOINTS } from "./dynamic_map.ts";

/** Elements per block of the 8-bit state: each block has its own absmax. */
export const UINT8_BLOCK = 256;

/** The smallest tensor whose exp_avg is 8-bit (bitsandbytes' `min_8bit_size`): smaller ones keep float32. */
export const UINT8_MIN_ELEMENTS = 4096;

/**
 * Words of one block in an exp_avg slot: its {@linkcode UINT8_BLOCK} codes,
 * then its float32 absmax. A tensor's blocks follow one another (1.016
 * bytes a parameter, as bitsandbytes), so a run of whole blocks, and the
 * step blocks cut from a tensor's start, each carry their own scales.
 */
export const UINT8_BLOCK_WORDS: number = UINT8_BLOCK / 4 + 1;

/**
 * Whether a tensor of `size` elements keeps 8-bit moments (else float32).
 *
 * @param size The tensor's elements.
 * @returns `size >= UINT8_MIN_ELEMENTS`.
 */
export function isUint8Tensor(size: number): boolean {
  return size >= UINT8_MIN_ELEMENTS;
}

/**
 * The float32 words of a tensor's 8-bit exp_avg slot.
 *
 * @param size The tensor's elements.
 * @returns {@linkcode UINT8_BLOCK_WORDS} a block.
 */
export function uint8SlotWords(size: number): number {
  return UINT8_BLOCK_WORDS * Math.ceil(size / UINT8_BLOCK);
}

/** A float32 and its bits, for {@linkcode uint8CodeOfBits}. */
const SCALED = new Float32Array(1);
const SCALED_BITS = new Uint32Array(SCALED.buffer);

/** The floor of a scale divided by, `max(absmax, 1e-38)`, as torch's float32 clamp takes it. */
export const ABSMAX_FLOOR: number = Math.fround(1e-38);

/** One tensor's 8-bit exp_avg. */
export interface Uint8Moments {
  /** One code a parameter. */
  readonly codes: Uint8Array;
  /** One float32 scale a block of {@linkcode UINT8_BLOCK} (the last block may be partial). */
  readonly absmax: Float32Array;
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

/** The positive midpoints (between codes 127…255), and +Infinity past the last. */
const POSITIVE_MIDPOINTS: Float32Array = Float32Array.of(
  ...DYNAMIC_MAP_MIDPOINTS.subarray(127),
  Infinity,
);

/** {@linkcode POSITIVE_MIDPOINTS}' bits: non-negative floats order as their bits do. */
const POSITIVE_MIDPOINT_BITS: Uint32Array = new Uint32Array(POSITIVE_MIDPOINTS.buffer);

/**
 * Bits of a float32 shifted right by this many give its bucket: its
 * exponent and the top 6 bits of its fraction (a relative width of 2^-6).
 * No bucket of |x| <= 1 holds two positive midpoints (checked as
 * {@linkcode BUCKET_WORDS} is built), so one comparison of bits within the
 * bucket places |x| among them.
 */
export const BUCKET_SHIFT = 17;

/** The bits of a float32 below its bucket's. */
export const WITHIN_BUCKET: number = (1 << BUCKET_SHIFT) - 1;

/**
 * Per bucket of |x| <= 1, one word, so that a code takes one lookup (the
 * wasm kernel loads it from memory: wasm has no gather): the count of
 * positive midpoints wholly below the bucket, shifted left 18, plus the
 * next midpoint's bits within the bucket where it lies in the bucket, else
 * 2^17, above every `bits & WITHIN_BUCKET`. `low - (bits & WITHIN_BUCKET)`
 * then has the sign of `next - |x|`: see {@linkcode uint8CodeOfBits}.
 */
export const BUCKET_WORDS: Uint32Array = (() => {
  const buckets = (0x3f800000 >>> BUCKET_SHIFT) + 1;
  const words = new Uint32Array(buckets);
  for (let bucket = 0, below = 0; bucket < buckets; bucket++) {
    while ((POSITIVE_MIDPOINT_BITS[below]! >>> BUCKET_SHIFT) < bucket) below++;
    const next = POSITIVE_MIDPOINT_BITS[below]!;
    const inBucket = next >>> BUCKET_SHIFT === bucket;
    if (inBucket && POSITIVE_MIDPOINT_BITS[below + 1]! >>> BUCKET_SHIFT === bucket) {
      throw new Error(`bucket ${bucket} holds two midpoints: BUCKET_SHIFT is too large`);
    }
    words[bucket] = below * 2 ** 18 + (inBucket ? next & WITHIN_BUCKET : WITHIN_BUCKET + 1);
  }
  return words;
})();

/**
 * {@linkcode uint8Code} by the map's structure, for the kernels: the
 * bucket of `|x|` gives the positive midpoints below it, and one comparison
 * with the next decides. The negative codes mirror the positive ones (a
 * negative midpoint is a positive one negated), but for the top code, 1,
 * which has no negative twin.
 *
 * @param x A moment divided by its block's absmax, clamped to [−1, 1]
 * (not NaN).
 * @param bits The float32 bits of `|x|`.
 * @returns Its code.
 */
export function uint8CodeOfBits(x: number, bits: number): number {
  const word = BUCKET_WORDS[bits >>> BUCKET_SHIFT]!;
  const below = word >>> 18;
  // the sign of next − |x|, both in one bucket (or next above it)
  const gap = (word & (2 * WITHIN_BUCKET + 1)) - (bits & WITHIN_BUCKET);
  // x > 0: the 127 negative midpoints and the positive ones below x;
  // x <= 0: the negative midpoints below x, which are those whose twin exceeds |x|
  if (x > 0) return 127 + below + (gap < 0 ? 1 : 0);
  return 127 - Math.min(127, below + (gap <= 0 ? 1 : 0));
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
  const absmax = full ? largest : Math.max(largest, ABSMAX_FLOOR);
  const inverse = Math.fround(1 / Math.max(absmax, ABSMAX_FLOOR));
  for (let i = 0; i < moments.length; i++) {
    const x = full ? Math.fround(moments[i]! * inverse) : Math.fround(moments[i]! / absmax);
    const clamped = Math.min(1, Math.max(-1, x));
    SCALED[0] = Math.abs(clamped);
    codes[i] = uint8CodeOfBits(clamped, SCALED_BITS[0]!);
  }
  return absmax;
}

/**
 * Dequantizes a run of blocks as a slot lays them out (`code[q]·absmax`,
 * rounded to float32).
 *
 * @param buffer The memory.
 * @param byteOffset Where the run's first block starts (a multiple of 4).
 * @param length Its elements; only the last block may be partial.
 * @returns The moments.
 */
export function readUint8Run(
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
): Float32Array {
  return dequantizeUint8(readUint8Codes(buffer, byteOffset, length));
}

/**
 * The values of 8-bit moments: `codebook[codes[i]]·absmax[⌊i / 256⌋]`,
 * rounded to float32.
 *
 * @param moments The codes and scales.
 * @param codebook The map they were made with (a file may bring its own).
 * @returns The moments.
 */
export function dequantizeUint8(
  moments: Uint8Moments,
  codebook: Float32Array = DYNAMIC_MAP,
): Float32Array {
  const { codes, absmax } = moments;
  return Float32Array.from(
    codes,
    (q, i) => Math.fround(codebook[q]! * absmax[Math.floor(i / UINT8_BLOCK)]!),
  );
}

/**
 * Quantizes moments into a run of blocks as a slot lays them out: each
 * full block by {@linkcode quantizeUint8Block}'s reciprocal, a partial last
 * block (a tensor's tail) by its division.
 *
 * @param buffer The memory.
 * @param byteOffset Where the run's first block starts (a multiple of 4).
 * @param values The moments, finite.
 */
export function writeUint8Run(
  buffer: ArrayBufferLike,
  byteOffset: number,
  values: Float32Array,
): void {
  const { bytes: codes, scales } = runViews(buffer, byteOffset, values.length);
  for (let b = 0, start = 0; start < values.length; b++, start += UINT8_BLOCK) {
    const block = values.subarray(start, start + UINT8_BLOCK);
    const at = b * 4 * UINT8_BLOCK_WORDS;
    scales[b * UINT8_BLOCK_WORDS + UINT8_BLOCK / 4] = quantizeUint8Block(
      block,
      codes.subarray(at, at + block.length),
      block.length === UINT8_BLOCK,
    );
  }
}

/** Where a run's codes and scales lie in memory. */
function runViews(buffer: ArrayBufferLike, byteOffset: number, length: number) {
  const words = uint8SlotWords(length);
  return {
    bytes: new Uint8Array(buffer, byteOffset, words * 4),
    scales: new Float32Array(buffer, byteOffset, words),
  };
}

/**
 * Copies a run's codes and scales out, as bitsandbytes keeps them (a code a
 * parameter; an absmax a block).
 *
 * @param buffer The memory.
 * @param byteOffset Where the run's first block starts (a multiple of 4).
 * @param length Its elements.
 * @returns The codes and the absmax of each block.
 */
export function readUint8Codes(
  buffer: ArrayBufferLike,
  byteOffset: number,
  length: number,
): Uint8Moments {
  const { bytes, scales } = runViews(buffer, byteOffset, length);
  const codes = new Uint8Array(length);
  const absmax = new Float32Array(Math.ceil(length / UINT8_BLOCK));
  for (let b = 0; b < absmax.length; b++) {
    const start = b * UINT8_BLOCK;
    const at = b * 4 * UINT8_BLOCK_WORDS;
    codes.set(bytes.subarray(at, at + Math.min(UINT8_BLOCK, length - start)), start);
    absmax[b] = scales[b * UINT8_BLOCK_WORDS + UINT8_BLOCK / 4]!;
  }
  return { codes, absmax };
}

/**
 * Writes codes and scales into a run, as they are (the inverse of
 * {@linkcode readUint8Codes}).
 *
 * @param buffer The memory.
 * @param byteOffset Where the run's first block starts (a multiple of 4).
 * @param moments The codes, and an absmax a block.
 */
export function writeUint8Codes(
  buffer: ArrayBufferLike,
  byteOffset: number,
  moments: Uint8Moments,
): void {
  const { bytes, scales } = runViews(buffer, byteOffset, moments.codes.length);
  for (let b = 0; b < moments.absmax.length; b++) {
    const start = b * UINT8_BLOCK;
    bytes.set(moments.codes.subarray(start, start + UINT8_BLOCK), b * 4 * UINT8_BLOCK_WORDS);
    scales[b * UINT8_BLOCK_WORDS + UINT8_BLOCK / 4] = moments.absmax[b]!;
  }
}

/**
 * Where the wasm kernel finds the tables of the 8-bit rule in an arena's
 * memory (wasm has no gather: its lookups load from memory): the map's
 * values, the positive midpoints' bits, and the buckets' counts, from byte
 * 0 of every arena, which holds them before any slot.
 */
export const KERNEL_TABLES = {
  /** The map's 256 float32 values. */
  map: 0,
  /** {@linkcode BUCKET_WORDS}, a word a bucket. */
  buckets: 1024,
  /** The bytes they take, a multiple of 64. */
  bytes: 1024 + Math.ceil((BUCKET_WORDS.length * 4) / 64) * 64,
} as const;

/**
 * Writes the kernel's tables at the start of a new arena's memory.
 *
 * @param buffer The memory, with at least `KERNEL_TABLES.bytes` bytes.
 */
export function writeKernelTables(buffer: ArrayBufferLike): void {
  new Float32Array(buffer, KERNEL_TABLES.map, 256).set(DYNAMIC_MAP);
  new Uint32Array(buffer, KERNEL_TABLES.buckets, BUCKET_WORDS.length).set(BUCKET_WORDS);
}
