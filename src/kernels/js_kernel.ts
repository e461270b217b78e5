/**
 * The scalar `js` kernel: the update rule written out element by element in
 * float32, exactly as torch's CPU kernels compute it. It is readable first
 * and fast second, and it is the oracle the faster kernels are tested on.
 *
 * @module
 */

import { bfloat16Bits, fmaF32, fromBfloat16, lerpF32, signF32 } from "../_internal/float32.ts";
import { readUint8Run, writeUint8Run } from "../store/uint8_moments.ts";
import {
  addPartialTerms,
  type GroupConstants,
  type KernelSegment,
  type LionKernel,
  PARTIAL_COUNT,
} from "./kernel.ts";

/** The scalar kernel. */
export const jsKernel: LionKernel = {
  name: "js",

  scanGradients(arena, segments, out, squares) {
    const f32 = new Float32Array(arena.buffer);
    for (const segment of segments) {
      let sum = 0;
      const end = segment.grad + segment.length;
      if (squares) {
        for (let i = segment.grad; i < end; i++) sum += f32[i]! * f32[i]!;
      } else {
        // x - x is 0 for every finite x, NaN for NaN and ±Infinity
        for (let i = segment.grad; i < end; i++) sum += f32[i]! - f32[i]!;
      }
      out[segment.block] = sum;
    }
  },

  averageGradients(arena, segments, divisor, out, squares) {
    const f32 = new Float32Array(arena.buffer);
    // times 1/n where n is a power of two: the same quotient, a third of a division's time
    const reciprocal = (divisor & (divisor - 1)) === 0 ? 1 / divisor : 0;
    // (one rank: the sum is the gradient)
    for (const { grad, length } of divisor === 1 ? [] : segments) {
      const end = grad + length;
      if (reciprocal !== 0) { for (let i = grad; i < end; i++) f32[i] = f32[i]! * reciprocal; }
      else for (let i = grad; i < end; i++) f32[i] = f32[i]! / divisor;
    }
    if (out !== null) jsKernel.scanGradients(arena, segments, out, squares);
  },

  countAgreement(arena, segments, groups, out) {
    const f32 = new Float32Array(arena.buffer);
    for (const segment of segments) {
      const k = groups[segment.group]!;
      if (k.cautious) out[segment.block] = countAgreement(f32, segment, k);
    }
  },

  signVotes(arena, segment, k) {
    if (k.momentUint8) {
      throw new RangeError("Cannot vote with 8-bit moments: the vote keeps float32 ones");
    }
    const f32 = new Float32Array(arena.buffer);
    const i32 = new Int32Array(arena.buffer);
    const moments = momentsOf(f32, segment, k);
    const { grad, length } = segment;
    let abstaining = 0;
    // pair j (elements 32j..32j+31) lands at word 2j, behind the elements still to be read
    for (let start = 0, out = grad; start < length; start += 32, out += 2) {
      let signs = 0;
      let votes = 0;
      for (let i = start; i < Math.min(start + 32, length); i++) {
        const g = Math.fround(f32[grad + i]! * k.gradScale);
        const m = moments.read(i);
        const c = lerpF32(m, g, k.directionWeight);
        moments.write(i, lerpF32(m, g, k.momentWeight));
        if (c > 0) signs |= 1 << (i - start);
        if (c > 0 || c < 0) votes |= 1 << (i - start);
        else abstaining++; // ±0 or NaN
      }
      i32[out] = signs;
      i32[out + 1] = votes;
    }
    return abstaining;
  },

  tallyVotes(memory, tally) {
    const i32 = new Int32Array(memory.buffer);
    const { signs, voting, stride, worldSize, words, out } = tally;
    for (let w = 0; w < words; w++) {
      let up = 0;
      let down = 0;
      for (let bit = 0; bit < 32; bit++) {
        let count = 0; // votes for, less votes against
        for (let r = 0; r < worldSize; r++) {
          const at = (r * stride) / 4 + w;
          const votes = voting === null ? -1 : i32[voting / 4 + at]!;
          if (((votes >>> bit) & 1) === 0) continue;
          count += ((i32[signs / 4 + at]! >>> bit) & 1) === 1 ? 1 : -1;
        }
        if (count > 0) up |= 1 << bit;
        if (count < 0) down |= 1 << bit;
      }
      i32[out / 4 + 2 * w] = up;
      i32[out / 4 + 2 * w + 1] = down;
    }
  },

  applyVotes(arena, segment, lr, decayMultiplier) {
    const f32 = new Float32Array(arena.buffer);
    const i32 = new Int32Array(arena.buffer);
    const { data, grad, length } = segment;
    for (let i = 0; i < length; i++) {
      const word = grad + 2 * Math.floor(i / 32);
      const bit = 1 << (i % 32);
      const vote = (i32[word]! & bit) !== 0 ? 1 : (i32[word + 1]! & bit) !== 0 ? -1 : 0;
      f32[data + i] = Math.fround(
        Math.fround(f32[data + i]! * decayMultiplier) - lr * signF32(vote),
      );
    }
  },

  update(arena, segments, groups, partials, caution) {
    const f32 = new Float32Array(arena.buffer);
    for (const segment of segments) {
      const constants = groups[segment.group]!;
      const factor = caution?.[segment.block] ?? 0;
      if (factor !== 0) {
        cautiousUpdate(f32, segment, constants, factor, partials);
      } else if (partials === null) {
        updateSegment(f32, segment, constants);
      } else {
        updateSegmentWithPartials(f32, segment, constants, partials);
      }
    }
  },
};

/**
 * A segment's exp_avg and the rule that goes with its type: float32 and
 * bfloat16 interpolate (`lerp`), 8-bit moments take bitsandbytes' products
 * and are requantized once the segment's new moments are all known.
 */
interface Moments {
  /** Element `i`'s value (after {@linkcode flush}, the stored one). */
  read(i: number): number;
  /** Stores `value` (bfloat16: rounded to nearest even; 8-bit: held until `flush`) at element `i`. */
  write(i: number, value: number): void;
  /** The update direction from moment `m` and gradient `g`. */
  direction(m: number, g: number): number;
  /** The new moment from `m` and `g`. */
  next(m: number, g: number): number;
  /** Makes the written moments the stored ones (8-bit: quantizes them, block by block). */
  flush(): void;
}

/**
 * The exp_avg of `segment` in the arena whose float32 view is `f32`: a
 * float32 run at `expAvg`, under `momentBfloat16` a bfloat16 run from the
 * same byte, under `momentUint8` a run of 8-bit blocks from it.
 */
function momentsOf(f32: Float32Array, segment: KernelSegment, k: GroupConstants): Moments {
  if (k.momentUint8) return uint8Moments(f32, segment, k);
  const start = segment.expAvg;
  const lerp = {
    direction: (m: number, g: number) => lerpF32(m, g, k.directionWeight),
    next: (m: number, g: number) => lerpF32(m, g, k.momentWeight),
    flush: () => {},
  };
  if (!k.momentBfloat16) {
    return { ...lerp, read: (i) => f32[start + i]!, write: (i, v) => (f32[start + i] = v) };
  }
  const u16 = new Uint16Array(f32.buffer, f32.byteOffset);
  return {
    ...lerp,
    read: (i) => fromBfloat16(u16[2 * start + i]!),
    write: (i, v) => (u16[2 * start + i] = bfloat16Bits(v)),
  };
}

/** 8-bit moments: dequantized into a copy, updated there, requantized by `flush`. */
function uint8Moments(f32: Float32Array, segment: KernelSegment, k: GroupConstants): Moments {
  const at = f32.byteOffset + segment.expAvg * 4;
  let values = readUint8Run(f32.buffer, at, segment.length);
  return {
    read: (i) => values[i]!,
    write: (i, v) => (values[i] = v),
    // two rounded products, then the sum
    direction: (m, g) => Math.fround(Math.fround(m * k.beta1) + Math.fround(g * k.directionWeight)),
    // torch's mul_(β2), then add_(g, alpha=1 − β2): one rounding, a fused multiply-add
    next: (m, g) => fmaF32(k.momentWeight, g, Math.fround(m * k.beta2)),
    flush: () => {
      writeUint8Run(f32.buffer, at, values);
      values = readUint8Run(f32.buffer, at, segment.length);
    },
  };
}

/**
 * The reference's `lionw` on one element run, the gradient first scaled:
 * `g *= gradScale; p *= 1 - decay·wd; p -= lr · sign(lerp(m, g, 1 - β1)); m = lerp(m, g, 1 - β2)`
 * (8-bit moments: bitsandbytes' direction and moment, see {@linkcode uint8Moments}).
 */
function updateSegment(f32: Float32Array, segment: KernelSegment, k: GroupConstants): Moments {
  const moments = momentsOf(f32, segment, k);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    const m = moments.read(i);
    const decayed = Math.fround(f32[segment.data + i]! * k.decayMultiplier);
    f32[segment.data + i] = Math.fround(decayed - k.lr * signF32(moments.direction(m, g)));
    moments.write(i, moments.next(m, g));
  }
  moments.flush();
  return moments;
}

/**
 * The same update, plus the partial sums of the reference's metrics over the
 * post-step `m` (as stored) and `p`, the step's `g`, and the reference's step
 * tensor `u = lr · sign(direction(m, g)) - wd · decay · p` (post-step `m`, `p`).
 */
function updateSegmentWithPartials(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
  partials: Float64Array,
): void {
  segmentPartials(f32, segment, k, updateSegment(f32, segment, k), partials);
}

/** A segment's six sums after its update, from its stored moments. */
function segmentPartials(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
  moments: Moments,
  partials: Float64Array,
): void {
  const sums = new Float64Array(PARTIAL_COUNT);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    const m = moments.read(i);
    const p = f32[segment.data + i]!;
    const u = Math.fround(k.lr * signF32(moments.direction(m, g)) + k.stepDecay * p);
    addPartialTerms(sums, m, p, u, g);
  }
  partials.set(sums, segment.block * PARTIAL_COUNT);
}

/** Whether the update direction `c` and the gradient `g` have the same sign (timm: `update * grad > 0`). */
function agrees(c: number, g: number): boolean {
  return (c > 0 && g > 0) || (c < 0 && g < 0);
}

/**
 * The agreeing elements of a segment: those where the sign of
 * `lerp(m, g, 1 - β1)` agrees with `g`'s.
 *
 * @param f32 The arena as float32.
 * @param segment The segment.
 * @param k Its group's constants.
 * @returns The count.
 */
export function countAgreement(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
): number {
  let count = 0;
  const moments = momentsOf(f32, segment, k);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    if (agrees(moments.direction(moments.read(i), g), g)) count++;
  }
  return count;
}

/**
 * The cautious update (timm's Lion `caution`, on the reference's rule) of a
 * segment, with its partial sums when `partials` is given:
 * `u = sign(c) · (agrees(c, g) ? factor : 0)` with `c` the update direction,
 * then `p = p·decay + (−lr)·u` in one rounding (torch's `add_` with alpha is
 * a fused multiply-add on the CPU), and the moment as usual. The metrics'
 * step tensor is the reference's, without the caution.
 *
 * @param f32 The arena as float32.
 * @param segment The segment.
 * @param k Its group's constants.
 * @param factor The parameter's caution factor.
 * @param partials Where the sums go, or `null`.
 */
export function cautiousUpdate(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
  factor: number,
  partials: Float64Array | null,
): void {
  const moments = momentsOf(f32, segment, k);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    const m = moments.read(i);
    const decayed = Math.fround(f32[segment.data + i]! * k.decayMultiplier);
    const c = moments.direction(m, g);
    const u = signF32(c) * (agrees(c, g) ? factor : 0);
    f32[segment.data + i] = fmaF32(-k.lr, u, decayed);
    moments.write(i, moments.next(m, g));
  }
  moments.flush();
  if (partials !== null) segmentPartials(f32, segment, k, moments, partials);
}
