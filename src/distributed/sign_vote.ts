/**
 * The kernels of the sign-vote exchange (Distributed Lion, Liu et al. 2024):
 * each rank packs the sign of its own update direction
 * `c = lerp(m, g, 1 − β1)` into bits, the ranks exchange the bits, and every
 * rank applies the majority vote `v = sign(Σ_r sign(c_r))` (a tie gives 0)
 * with the decoupled decay, `p = p·(1 − lr·wd) − lr·v`, and moves its own
 * momentum, `m = lerp(m, g, 1 − β2)`. Every rank applies the same `v` to
 * the same `p`, so parameters stay bit-identical; each momentum is its
 * rank's own.
 *
 * A sign takes one bit (set: `c > 0`). An element whose `c` is 0 (or NaN)
 * abstains from the vote: that needs a second bit, so a rank also packs
 * where `c ≠ 0`, and the second bitmap is exchanged only for the runs
 * where some rank has such an element (a frozen embedding row, say).
 *
 * @module
 */

import { lerpF32 } from "../_internal/float32.ts";
import {
  type GroupConstants,
  type KernelSegment,
  Partial,
  PARTIAL_COUNT,
} from "./../kernels/kernel.ts";

/** 32 elements a word. */
export const VOTE_BITS = 32;

/** The words a run of `length` elements packs into. */
export function voteWords(length: number): number {
  return Math.ceil(length / VOTE_BITS);
}

/**
 * Packs one block's update signs: bit `i` of `signs` (from word `word`) is
 * set where `c_i > 0`, and of `voting` where `c_i ≠ 0` (NaN abstains too).
 *
 * @param f32 The arena as float32.
 * @param block The block.
 * @param k Its group's constants.
 * @param signs Where the sign bits go.
 * @param voting Where the voting bits go.
 * @param word The block's first word.
 * @returns How many elements abstain (`c` is 0 or NaN).
 */
export function packUpdateSigns(
  f32: Float32Array,
  block: KernelSegment,
  k: GroupConstants,
  signs: Uint32Array,
  voting: Uint32Array,
  word: number,
): number {
  let abstaining = 0;
  for (let start = 0; start < block.length; start += VOTE_BITS) {
    const end = Math.min(start + VOTE_BITS, block.length);
    let signWord = 0;
    let votingWord = 0;
    for (let i = start; i < end; i++) {
      const g = Math.fround(f32[block.grad + i]! * k.gradScale);
      const c = lerpF32(f32[block.expAvg + i]!, g, k.directionWeight);
      const bit = 1 << (i - start);
      if (c > 0) {
        signWord |= bit;
        votingWord |= bit;
      } else if (c < 0) {
        votingWord |= bit;
      } else {
        abstaining++;
      }
    }
    signs[word + start / VOTE_BITS] = signWord;
    voting[word + start / VOTE_BITS] = votingWord;
  }
  return abstaining;
}

/** Where the ranks' bits of one run are: rank `r`'s words start at `r · stride`. */
export interface VoteBallots {
  /** Every rank's sign bits. */
  readonly signs: Uint32Array;
  /** Every rank's voting bits, or `null` where every element of the run votes. */
  readonly voting: Uint32Array | null;
  /** Words per rank. */
  readonly stride: number;
  /** The ranks. */
  readonly worldSize: number;
}

/**
 * Applies the vote to one block: `v = sign(Σ votes)` per element, then
 * `p = f32(f32(p · decay) − lr · v)` and this rank's `m = lerp(m, g, 1 − β2)`,
 * rounded as the update kernels round them; with `partials`, the block's
 * six metric sums, with the applied step `u = lr·v − wd·decay·p` (post-step
 * `p`) as the update and this rank's own `m` and `g`.
 *
 * @param f32 The arena as float32.
 * @param block The block.
 * @param k Its group's constants.
 * @param ballots The ranks' bits.
 * @param word The block's first word.
 * @param partials Where the block's sums go (at `block.block`), or `null`.
 */
export function applyVote(
  f32: Float32Array,
  block: KernelSegment,
  k: GroupConstants,
  ballots: VoteBallots,
  word: number,
  partials: Float64Array | null,
): void {
  const { signs, voting, stride, worldSize } = ballots;
  const sums = partials === null ? null : new Float64Array(PARTIAL_COUNT);
  for (let start = 0; start < block.length; start += VOTE_BITS) {
    const end = Math.min(start + VOTE_BITS, block.length);
    const w = word + start / VOTE_BITS;
    for (let i = start; i < end; i++) {
      const bit = i - start;
      let tally = 0;
      for (let r = 0, at = w; r < worldSize; r++, at += stride) {
        const votes = voting === null ? 1 : (voting[at]! >>> bit) & 1;
        tally += votes === 0 ? 0 : ((signs[at]! >>> bit) & 1) === 1 ? 1 : -1;
      }
      const vote = tally > 0 ? 1 : tally < 0 ? -1 : 0;
      const g = Math.fround(f32[block.grad + i]! * k.gradScale);
      const decayed = Math.fround(f32[block.data + i]! * k.decayMultiplier);
      const p = Math.fround(decayed - k.lr * vote);
      f32[block.data + i] = p;
      const m = lerpF32(f32[block.expAvg + i]!, g, k.momentWeight);
      f32[block.expAvg + i] = m;
      if (sums !== null) {
        const u = Math.fround(k.lr * vote + k.stepDecay * p);
        sums[Partial.moment]! += m * m;
        sums[Partial.param]! += p * p;
        sums[Partial.update]! += u * u;
        sums[Partial.grad]! += g * g;
        sums[Partial.updateGrad]! += u * g;
        sums[Partial.momentGrad]! += m * g;
      }
    }
  }
  if (sums !== null) partials!.set(sums, block.block * PARTIAL_COUNT);
}
