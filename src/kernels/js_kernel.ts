/**
 * The scalar `js` kernel: the update rule written out element by element in
 * float32, exactly as torch's CPU kernels compute it. It is readable first
 * and fast second, and it is the oracle the faster kernels are tested on.
 *
 * @module
 */

import { bfloat16Bits, fmaF32, fromBfloat16, lerpF32, signF32 } from "../_internal/float32.ts";
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

/** Reads and writes a segment's exp_avg, in float32 or in bfloat16. */
interface Moments {
  /** Element `i`'s value. */
  read(i: number): number;
  /** Stores `value` (bfloat16: rounded to nearest even) at element `i`. */
  write(i: number, value: number): void;
}

/**
 * The exp_avg of `segment` in the arena whose float32 view is `f32`: a
 * float32 run at `expAvg`, or under `momentBfloat16` a bfloat16 run from
 * the same byte.
 */
function momentsOf(f32: Float32Array, segment: KernelSegment, k: GroupConstants): Moments {
  const start = segment.expAvg;
  if (!k.momentBfloat16) {
    return { read: (i) => f32[start + i]!, write: (i, v) => (f32[start + i] = v) };
  }
  const u16 = new Uint16Array(f32.buffer, f32.byteOffset);
  return {
    read: (i) => fromBfloat16(u16[2 * start + i]!),
    write: (i, v) => (u16[2 * start + i] = bfloat16Bits(v)),
  };
}

/**
 * The reference's `lionw` on one element run, the gradient first scaled:
 * `g *= gradScale; p *= 1 - decay·wd; p -= lr · sign(lerp(m, g, 1 - β1)); m = lerp(m, g, 1 - β2)`.
 */
function updateSegment(f32: Float32Array, segment: KernelSegment, k: GroupConstants): void {
  const moments = momentsOf(f32, segment, k);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    const m = moments.read(i);
    const decayed = Math.fround(f32[segment.data + i]! * k.decayMultiplier);
    f32[segment.data + i] = Math.fround(decayed - k.lr * signF32(lerpF32(m, g, k.directionWeight)));
    moments.write(i, lerpF32(m, g, k.momentWeight));
  }
}

/**
 * The same update, plus the partial sums of the reference's metrics over the
 * post-step `m` and `p`, the step's `g`, and the reference's step tensor
 * `u = lr · sign(lerp(m, g, 1 - β1)) - wd · decay · p` (post-step `m`, `p`).
 */
function updateSegmentWithPartials(
  f32: Float32Array,
  segment: KernelSegment,
  k: GroupConstants,
  partials: Float64Array,
): void {
  const sums = new Float64Array(PARTIAL_COUNT);
  const moments = momentsOf(f32, segment, k);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    const m = moments.read(i);
    const decayed = Math.fround(f32[segment.data + i]! * k.decayMultiplier);
    const p = Math.fround(decayed - k.lr * signF32(lerpF32(m, g, k.directionWeight)));
    f32[segment.data + i] = p;
    moments.write(i, lerpF32(m, g, k.momentWeight));
    addPartials(sums, k, moments.read(i), p, g); // the stored (rounded) moment
  }
  partials.set(sums, segment.block * PARTIAL_COUNT);
}

/**
 * Adds one element's terms to the six sums, in {@linkcode Partial} order,
 * with the reference's step tensor `u` from the post-step `m` and `p`.
 */
function addPartials(
  sums: Float64Array,
  k: GroupConstants,
  m: number,
  p: number,
  g: number,
): void {
  const u = Math.fround(k.lr * signF32(lerpF32(m, g, k.directionWeight)) + k.stepDecay * p);
  addPartialTerms(sums, m, p, u, g);
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
    if (agrees(lerpF32(moments.read(i), g, k.directionWeight), g)) count++;
  }
  return count;
}

/**
 * The cautious update (timm's Lion `caution`, on the reference's rule) of a
 * segment, with its partial sums when `partials` is given:
 * `u = sign(c) · (agrees(c, g) ? factor : 0)` with `c = lerp(m, g, 1 − β1)`,
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
  const sums = partials === null ? null : new Float64Array(PARTIAL_COUNT);
  const moments = momentsOf(f32, segment, k);
  for (let i = 0; i < segment.length; i++) {
    const g = Math.fround(f32[segment.grad + i]! * k.gradScale);
    const m = moments.read(i);
    const decayed = Math.fround(f32[segment.data + i]! * k.decayMultiplier);
    const c = lerpF32(m, g, k.directionWeight);
    const u = signF32(c) * (agrees(c, g) ? factor : 0);
    const p = fmaF32(-k.lr, u, decayed);
    f32[segment.data + i] = p;
    moments.write(i, lerpF32(m, g, k.momentWeight));
    if (sums !== null) addPartials(sums, k, moments.read(i), p, g);
  }
  if (sums !== null) partials!.set(sums, segment.block * PARTIAL_COUNT);
}
