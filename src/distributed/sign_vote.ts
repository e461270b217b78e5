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
 * A sign takes one bit (set: `c > 0`). An element whose `c` is 0 abstains
 * from the vote (as does one whose gradient is not finite, where the
 * `nonFinite` policy lets it through): that needs a second bit, so a rank
 * also packs where it votes, and the second bitmap is exchanged only for
 * the runs where some rank abstains (a frozen embedding row, say).
 *
 * Either way the ranks' bits are counted by the engine's kernel where the
 * all-gathers leave them ({@linkcode BallotBox.tally}). Two ways to the
 * same bits and votes: the scalar one reads `m` and `g` and writes nothing
 * until the vote ({@linkcode packUpdateSigns}, then {@linkcode applyVote}
 * with the momentum), which the metrics need, as they read the step's `g`;
 * the fast one has the kernel (wasm SIMD) move the momentum and pack the
 * signs in one pass ({@linkcode packVotesOnKernel}), and apply the vote to
 * the parameters alone ({@linkcode applyVoteOnKernel}).
 *
 * @module
 */

import { lerpF32 } from "../_internal/float32.ts";
import type { BallotBox } from "./ballot_box.ts";
import {
  addPartialTerms,
  type GroupConstants,
  type KernelSegment,
  type LionKernel,
  PARTIAL_COUNT,
} from "../kernels/kernel.ts";

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
      // a non-finite g abstains (x − x is 0 for every finite x)
      const c = g - g === 0 ? lerpF32(f32[block.expAvg + i]!, g, k.directionWeight) : NaN;
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

/**
 * Applies the vote to one block, `v` from the run's counted masks (up:
 * +1, down: −1, a tie in neither; {@linkcode BallotBox.tally}), then
 * `p = f32(f32(p · decay) − lr · v)` and this rank's `m = lerp(m, g, 1 − β2)`,
 * rounded as the update kernels round them; with `partials`, the block's
 * six metric sums, with the applied step `u = lr·v − wd·decay·p` (post-step
 * `p`) as the update and this rank's own `m` and `g`.
 *
 * @param f32 The arena as float32.
 * @param block The block.
 * @param k Its group's constants.
 * @param masks The run's masks: word `w`'s up and down at `2w` and `2w + 1`.
 * @param word The block's first word.
 * @param partials Where the block's sums go (at `block.block`), or `null`.
 */
export function applyVote(
  f32: Float32Array,
  block: KernelSegment,
  k: GroupConstants,
  masks: Int32Array,
  word: number,
  partials: Float64Array | null,
): void {
  const sums = partials === null ? null : new Float64Array(PARTIAL_COUNT);
  for (let start = 0; start < block.length; start += VOTE_BITS) {
    const end = Math.min(start + VOTE_BITS, block.length);
    const at = 2 * (word + start / VOTE_BITS);
    const [up, down] = [masks[at]!, masks[at + 1]!];
    for (let i = start, bit = 0; i < end; i++, bit++) {
      const vote = ((up >>> bit) & 1) - ((down >>> bit) & 1);
      const decayed = Math.fround(f32[block.data + i]! * k.decayMultiplier);
      const p = Math.fround(decayed - k.lr * vote);
      f32[block.data + i] = p;
      const g = Math.fround(f32[block.grad + i]! * k.gradScale);
      const m = lerpF32(f32[block.expAvg + i]!, g, k.momentWeight);
      f32[block.expAvg + i] = m;
      if (sums !== null) {
        addPartialTerms(sums, m, p, Math.fround(k.lr * vote + k.stepDecay * p), g);
      }
    }
  }
  if (sums !== null) partials!.set(sums, block.block * PARTIAL_COUNT);
}

/**
 * The fast way's first pass: the engine's kernel moves this rank's
 * momentum and packs its signs into pairs of words at the start of the
 * block's gradient slot ({@linkcode LionKernel.signVotes}), which are
 * copied into this rank's part of the run's ballots.
 *
 * @param kernel The engine's kernel on the host.
 * @param arena The block's arena.
 * @param block The block.
 * @param k Its group's constants.
 * @param box The run's ballots.
 * @param word The block's first word in this rank's part.
 * @returns How many elements abstain.
 */
export function packVotesOnKernel(
  kernel: LionKernel,
  arena: WebAssembly.Memory,
  block: KernelSegment,
  k: GroupConstants,
  box: BallotBox,
  word: number,
): number {
  const abstaining = kernel.signVotes(arena, block, k);
  const pairs = new Uint32Array(arena.buffer, block.grad * 4, 2 * voteWords(block.length));
  const { signs, voting } = box;
  for (let j = 0; j < pairs.length / 2; j++) {
    signs[word + j] = pairs[2 * j]!;
    voting[word + j] = pairs[2 * j + 1]!;
  }
  return abstaining;
}

/**
 * The fast way's vote: the block's masks, counted for the whole run
 * ({@linkcode BallotBox.tally}), copied to the start of its gradient slot,
 * then the parameters updated by the kernel, `p = p·(1 − lr·wd) − lr·v`.
 *
 * @param kernel The engine's kernel on the host.
 * @param arena The block's arena.
 * @param block The block.
 * @param k Its group's constants.
 * @param box The run's ballots, counted.
 * @param word The block's first word in a rank's part.
 */
export function applyVoteOnKernel(
  kernel: LionKernel,
  arena: WebAssembly.Memory,
  block: KernelSegment,
  k: GroupConstants,
  box: BallotBox,
  word: number,
): void {
  const words = voteWords(block.length);
  const pairs = new Int32Array(arena.buffer, block.grad * 4, 2 * words);
  pairs.set(box.masks.subarray(2 * word, 2 * (word + words)));
  // past the block's end no rank votes, but where the voting bits do not travel every bit
  // counts (a 0 as −1): those bits are cleared, as the kernel needs
  const rest = block.length % VOTE_BITS;
  if (rest !== 0) {
    pairs[2 * words - 2]! &= (1 << rest) - 1;
    pairs[2 * words - 1]! &= (1 << rest) - 1;
  }
  kernel.applyVotes(arena, block, k.lr, k.decayMultiplier);
}
