/**
 * The 8-bit rule on a segment's blocks, written for speed: one pass per
 * block moves the parameters and collects the new moments and their
 * largest magnitude, a second quantizes them (the code found by the map's
 * structure, as store/uint8_moments.ts's `uint8CodeOfBits`), and, with
 * metrics, a third sums the stored moments. The `wasm` kernel runs here a
 * tensor's partial last block, cautious groups, and the sums its float32
 * runs are not trusted with (its SIMD `update_u8` and `sums_u8` take whole
 * blocks); the `js` kernel's readable code is the
 * rule it is tested against, as the fixtures hold that to bitsandbytes'.
 *
 * @module
 */

import { fmaF32, signF32 } from "../_internal/float32.ts";
import { DYNAMIC_MAP } from "../store/dynamic_map.ts";
import {
  ABSMAX_FLOOR,
  BUCKET_SHIFT,
  BUCKET_WORDS,
  UINT8_BLOCK,
  UINT8_BLOCK_WORDS,
  WITHIN_BUCKET,
} from "../store/uint8_moments.ts";
import { type GroupConstants, type KernelSegment, PARTIAL_COUNT } from "./kernel.ts";

/** One block's new moments, then their scaled values, and the latter's bits. */
const moments = new Float32Array(UINT8_BLOCK);
const scaled = new Float32Array(UINT8_BLOCK);
const scaledBits = new Uint32Array(scaled.buffer);

/**
 * Steps one segment of 8-bit moments in place (whole blocks of 256 from
 * its start; only a tensor's last block may be partial).
 *
 * @param f32 The arena as float32.
 * @param segment The segment; `expAvg` is the word of its first block.
 * @param k Its group's constants.
 * @param factor The parameter's caution factor, or 0 (not cautious).
 * @param partials Where the segment's six sums go, or `null`.
 */
export function updateUint8Segment(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
  factor: number,
  partials: Float64Array | null,
): void {
  const sums = partials === null ? null : new Float64Array(PARTIAL_COUNT);
  for (const block of blocksOf(f32, segment)) {
    const largest = stepBlock(block, k, factor);
    f32[block.absmaxAt] = quantizeBlock(block, largest);
    if (sums !== null) addBlockSums(block, k, sums);
  }
  if (sums !== null) partials!.set(sums, segment.block * PARTIAL_COUNT);
}

/**
 * The six sums of a segment of 8-bit moments after its update, as
 * {@linkcode updateUint8Segment} writes them.
 *
 * @param f32 The arena as float32.
 * @param segment The segment.
 * @param k Its group's constants.
 * @param partials Where the sums go.
 */
export function uint8SegmentSums(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
  partials: Float64Array,
): void {
  const sums = new Float64Array(PARTIAL_COUNT);
  for (const block of blocksOf(f32, segment)) addBlockSums(block, k, sums);
  partials.set(sums, segment.block * PARTIAL_COUNT);
}

/** One block of a segment: its memory, where its parts start, its elements. */
interface Block {
  /** The arena as float32. */
  readonly f32: Float32Array;
  /** The arena as bytes. */
  readonly codes: Uint8Array;
  /** Word of its first parameter. */
  readonly data: number;
  /** Word of its first gradient. */
  readonly grad: number;
  /** Byte of its first code. */
  readonly first: number;
  /** Word of its absmax. */
  readonly absmaxAt: number;
  /** Its elements: 256, or fewer in a tensor's last block. */
  readonly length: number;
}

/** The blocks of a segment, in order. */
function blocksOf(f32: Float32Array, segment: KernelSegment): Block[] {
  const codes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  const blocks: Block[] = [];
  for (let start = 0, word = segment.expAvg; start < segment.length; start += UINT8_BLOCK) {
    blocks.push({
      f32,
      codes,
      data: segment.data + start,
      grad: segment.grad + start,
      first: word * 4,
      absmaxAt: word + UINT8_BLOCK / 4,
      length: Math.min(UINT8_BLOCK, segment.length - start),
    });
    word += UINT8_BLOCK_WORDS;
  }
  return blocks;
}

/**
 * Moves a block's parameters and puts its new moments in `moments`.
 *
 * @returns The largest magnitude among them.
 */
function stepBlock(block: Block, k: GroupConstants, factor: number): number {
  if (factor !== 0) return stepCautiousBlock(block, k, factor);
  // the constants and offsets in locals, and no call in the loop: V8 inlines neither
  // signF32 nor fmaF32, and a call costs the loop half its speed
  const { lr, beta1, directionWeight, decayMultiplier, beta2, momentWeight, gradScale } = k;
  const { f32, codes, data, grad, first, length } = block;
  const absmax = f32[block.absmaxAt]!;
  let largest = 0;
  let doubleRounded = false;
  for (let i = 0; i < length; i++) {
    const g = Math.fround(f32[grad + i]! * gradScale);
    const m = Math.fround(DYNAMIC_MAP[codes[first + i]!]! * absmax);
    const c = Math.fround(Math.fround(m * beta1) + Math.fround(g * directionWeight));
    // signF32 without the branches a random sign mispredicts: Math.sign, and ±0 made +0
    // (torch's sign of ±0 is 0; p − lr·(−0) would turn a −0 parameter into +0)
    f32[data + i] = Math.fround(
      Math.fround(f32[data + i]! * decayMultiplier) - lr * (Math.sign(c) + 0),
    );
    // the fused multiply-add in float64 (the product is exact), rounded once to float32:
    // wrong only where the sum is exactly a float32 midpoint (the other neighbour is float32)
    const sum = momentWeight * g + Math.fround(m * beta2);
    const next = Math.fround(sum);
    const mirror = 2 * sum - next;
    doubleRounded ||= next !== sum && Math.fround(mirror) === mirror;
    moments[i] = next;
    largest = Math.max(largest, Math.abs(next));
  }
  return doubleRounded ? exactMoments(block, k) : largest;
}

/** The cautious step of a block (timm's caution), with the scalar kernel's calls. */
function stepCautiousBlock(block: Block, k: GroupConstants, factor: number): number {
  const { f32, codes, data, grad, first, length } = block;
  const absmax = f32[block.absmaxAt]!;
  for (let i = 0; i < length; i++) {
    const g = Math.fround(f32[grad + i]! * k.gradScale);
    const m = Math.fround(DYNAMIC_MAP[codes[first + i]!]! * absmax);
    const c = Math.fround(Math.fround(m * k.beta1) + Math.fround(g * k.directionWeight));
    const decayed = Math.fround(f32[data + i]! * k.decayMultiplier);
    const kept = (c > 0 && g > 0) || (c < 0 && g < 0) ? factor : 0;
    f32[data + i] = fmaF32(-k.lr, signF32(c) * kept, decayed);
  }
  return exactMoments(block, k);
}

/** A block's new moments into `moments` by {@linkcode fmaF32}; returns their largest magnitude. */
function exactMoments(block: Block, k: GroupConstants): number {
  const { f32, codes, grad, first, length } = block;
  const absmax = f32[block.absmaxAt]!;
  let largest = 0;
  for (let i = 0; i < length; i++) {
    const g = Math.fround(f32[grad + i]! * k.gradScale);
    const m = Math.fround(DYNAMIC_MAP[codes[first + i]!]! * absmax);
    moments[i] = fmaF32(k.momentWeight, g, Math.fround(m * k.beta2));
    largest = Math.max(largest, Math.abs(moments[i]!));
  }
  return largest;
}

/**
 * Writes the codes of `moments` (a full block by the reciprocal of its
 * absmax, a tail by division) and returns the absmax to store.
 */
function quantizeBlock(block: Block, largest: number): number {
  const { codes, first: at, length } = block;
  const full = length === UINT8_BLOCK;
  const absmax = full ? largest : Math.max(largest, ABSMAX_FLOOR);
  const inverse = Math.fround(1 / Math.max(absmax, ABSMAX_FLOOR));
  for (let i = 0; i < length; i++) {
    // clamped, then rounded to float32 on the store: the same as rounded, then clamped
    scaled[i] = Math.min(1, Math.max(-1, full ? moments[i]! * inverse : moments[i]! / absmax));
    // store/uint8_moments.ts's uint8CodeOfBits without a branch (moments' signs are random:
    // a mispredicted branch costs more than the lookup). Non-negative floats compare as their
    // bits: `next < |x|` is the sign bit of their difference within |x|'s bucket (BUCKET_WORDS);
    // the negative codes take min(127, midpoints <= |x|), and ±0 gets 127 either way
    const bits = scaledBits[i]!;
    const magnitude = bits & 0x7fffffff;
    const word = BUCKET_WORDS[magnitude >>> BUCKET_SHIFT]!;
    const below = word >>> 18;
    const gap = (word & (2 * WITHIN_BUCKET + 1)) - (magnitude & WITHIN_BUCKET);
    const atOrBelow = below + ((gap - 1) >>> 31);
    const isNegative = -(bits >>> 31);
    codes[at + i] = ((127 + below + (gap >>> 31)) & ~isNegative) |
      ((127 - (atOrBelow - (atOrBelow >> 7))) & isNegative);
  }
  return absmax;
}

/**
 * Adds a block's terms to the six sums, from its stored moments (the
 * direction: bitsandbytes'), in element order as `addPartialTerms` would,
 * with the constants in locals and no call in the loop.
 */
function addBlockSums(block: Block, k: GroupConstants, sums: Float64Array): void {
  const { lr, beta1, directionWeight, gradScale, stepDecay } = k;
  const { f32, codes, data, grad, first, length } = block;
  const absmax = f32[block.absmaxAt]!;
  let mm = sums[0]!, pp = sums[1]!, uu = sums[2]!, gg = sums[3]!, ug = sums[4]!, mg = sums[5]!;
  for (let i = 0; i < length; i++) {
    const g = Math.fround(f32[grad + i]! * gradScale);
    const m = Math.fround(DYNAMIC_MAP[codes[first + i]!]! * absmax);
    const p = f32[data + i]!;
    const c = Math.fround(Math.fround(m * beta1) + Math.fround(g * directionWeight));
    // signF32 (±0 → +0): Math.sign(c) + 0
    const u = Math.fround(lr * (Math.sign(c) + 0) + stepDecay * p);
    mm += m * m;
    pp += p * p;
    uu += u * u;
    gg += g * g;
    ug += u * g;
    mg += m * g;
  }
  sums[0] = mm;
  sums[1] = pp;
  sums[2] = uu;
  sums[3] = gg;
  sums[4] = ug;
  sums[5] = mg;
}
