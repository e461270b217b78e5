/**
 * The one kernel interface every backend implements: the scalar `js` kernel
 * here, the WebAssembly SIMD and gpu.js kernels in the shard workers.
 *
 * A kernel works on one arena (a `WebAssembly.Memory`) and a list of
 * segments. For each segment it updates params and exp_avg in place and, in
 * the same pass over memory, writes the segment's float64 partial sums. It
 * never produces a norm: norms and cosines are finalized on the calling
 * thread from summed partials only (the pre-reduce scheme), so a tensor
 * split across segments, shards or machines gets the same metrics.
 *
 * @module
 */

/**
 * One group's hyperparameters, derived once per step into the float32
 * constants the update rule uses (so every backend rounds them alike).
 */
export interface GroupConstants {
  /** `f32(lr)`. */
  readonly lr: number;
  /** `f32(1 - beta1)`: interpolation weight of the update direction. */
  readonly directionWeight: number;
  /** `f32(1 - beta2)`: interpolation weight of the moment. */
  readonly momentWeight: number;
  /** `f32(1 - (lr / initialLr) * weightDecay)`; exactly 1 without decay
   * (multiplying by 1 is bit-exact, so no branch is needed). */
  readonly decayMultiplier: number;
  /** `f32(-weightDecay * lr / initialLr)`: the coefficient of `p` in the
   * reference's step tensor, used by the metrics only. */
  readonly stepDecay: number;
  /**
   * The float32 factor every gradient is multiplied by before the update
   * and the metrics: the step's clipping coefficient, negated where the
   * group maximizes. Exactly 1 when neither (bit-exact, so no branch).
   */
  readonly gradScale: number;
  /**
   * 1 where the group is cautious (timm's Lion `caution`): the update keeps
   * only the elements whose sign agrees with the gradient, scaled by the
   * parameter's caution factor; 0 otherwise.
   */
  readonly cautious: number;
  /**
   * 1 where exp_avg is stored as bfloat16 (the optimizer's
   * `momentumDtype: "bfloat16"`): read as the float32 it widens to, the
   * update computed in float32, then rounded to nearest even; 0 for
   * float32.
   */
  readonly momentBfloat16: number;
  /**
   * 1 where exp_avg is 8-bit (the optimizer's `momentumDtype: "uint8"`, a
   * tensor of 4,096 elements or more): bitsandbytes' rule, its moments
   * dequantized, updated in float32 and requantized block by block
   * (store/uint8_moments.ts); 0 otherwise.
   */
  readonly momentUint8: number;
  /** `f32(beta1)`: the 8-bit rule weighs the moment by it (`s·β1 + g·(1 − β1)`). */
  readonly beta1: number;
  /** `f32(beta2)`: the 8-bit rule's moment decay (`s·β2`, then `+ (1 − β2)·g`). */
  readonly beta2: number;
}

/**
 * Derives a group's float32 constants the way the reference does: Python
 * computes `1 - decay * wd` in float64 and torch rounds the scalar to the
 * tensor's float32.
 *
 * @param lr The group's current learning rate.
 * @param initialLr The learning rate at construction.
 * @param beta1 The update direction's beta.
 * @param beta2 The moment's beta.
 * @param weightDecay The decoupled weight decay.
 * @returns The constants.
 */
export function groupConstants(
  lr: number,
  initialLr: number,
  beta1: number,
  beta2: number,
  weightDecay: number,
): GroupConstants {
  const decay = initialLr ? lr / initialLr : 1;
  return {
    lr: Math.fround(lr),
    directionWeight: Math.fround(1 - beta1),
    momentWeight: Math.fround(1 - beta2),
    decayMultiplier: weightDecay !== 0 ? Math.fround(1 - decay * weightDecay) : 1,
    stepDecay: Math.fround(-weightDecay * decay),
    gradScale: 1,
    cautious: 0,
    momentBfloat16: 0,
    momentUint8: 0,
    beta1: Math.fround(beta1),
    beta2: Math.fround(beta2),
  };
}

/**
 * The constants with the gradients scaled by a step's decision: `g·scale`
 * rounded once to float32, as torch's `clip_grad_norm_` rewrites `p.grad`
 * in place before the step (a negation for `maximize` is exact either way).
 *
 * @param groups Each group's constants.
 * @param scale The decision's float32 gradient scale.
 * @returns The same constants when `scale` is 1, else copies with `gradScale` multiplied.
 */
export function scaleGradients(
  groups: readonly GroupConstants[],
  scale: number,
): readonly GroupConstants[] {
  if (scale === 1) return groups;
  return groups.map((k) => ({ ...k, gradScale: Math.fround(k.gradScale * scale) }));
}

/**
 * The order of the constants where they are packed into a float32 array
 * (the workers' control block, the gpujs kernels' argument): packing,
 * unpacking and the gpujs kernels' offsets all read this list.
 */
export const GROUP_CONSTANT_NAMES: readonly (keyof GroupConstants)[] = [
  "lr",
  "directionWeight",
  "momentWeight",
  "decayMultiplier",
  "stepDecay",
  "gradScale",
  "cautious",
  "momentBfloat16",
  "momentUint8",
  "beta1",
  "beta2",
];

/** Float32 values per group where constants are packed (the packing's stride). */
export const GROUP_CONSTANT_FIELDS: number = GROUP_CONSTANT_NAMES.length;

/**
 * Packs each group's constants into `out`, {@linkcode GROUP_CONSTANT_FIELDS}
 * apiece, in {@linkcode GROUP_CONSTANT_NAMES} order.
 *
 * @param groups The constants.
 * @param out Where they go (at least `groups.length * GROUP_CONSTANT_FIELDS` long).
 */
export function packGroupConstants(groups: readonly GroupConstants[], out: Float32Array): void {
  groups.forEach((k, g) => {
    GROUP_CONSTANT_NAMES.forEach((name, i) => (out[g * GROUP_CONSTANT_FIELDS + i] = k[name]));
  });
}

/**
 * Reads `count` groups' constants back from what {@linkcode packGroupConstants} wrote.
 *
 * @param packed The packed constants.
 * @param count Number of groups.
 * @returns The constants.
 */
export function unpackGroupConstants(packed: Float32Array, count: number): GroupConstants[] {
  return Array.from({ length: count }, (_, g) => {
    const entries = GROUP_CONSTANT_NAMES.map((name, i) => [
      name,
      packed[g * GROUP_CONSTANT_FIELDS + i]!,
    ]);
    return Object.fromEntries(entries) as unknown as GroupConstants;
  });
}

/**
 * A contiguous run of one parameter's elements. Offsets are float32 element
 * indices into the arena (byte offset / 4).
 */
export interface KernelSegment {
  /** Element offset of the segment's first parameter value. */
  readonly data: number;
  /** Element offset of its first gradient value. */
  readonly grad: number;
  /** Element offset of its first exp_avg value. */
  readonly expAvg: number;
  /** Number of elements. */
  readonly length: number;
  /** Index of the segment's {@linkcode GroupConstants}. */
  readonly group: number;
  /** The segment's block: its results go to `out[block]` for the gradient
   * scan, `partials[block * PARTIAL_COUNT + k]` for the update. */
  // (exp_avg in bfloat16 starts at the same byte, `expAvg * 4`, two bytes an element)
  readonly block: number;
}

/** Partial sums per segment, in this order. */
export const PARTIAL_COUNT = 6;
/** Offsets of the partial sums within a segment's record. */
export const Partial = {
  /** Σ m², m the post-step exp_avg. */
  moment: 0,
  /** Σ p², p the post-step parameter. */
  param: 1,
  /** Σ u², u the reference's step tensor. */
  update: 2,
  /** Σ g². */
  grad: 3,
  /** Σ u·g. */
  updateGrad: 4,
  /** Σ m·g. */
  momentGrad: 5,
} as const;

/**
 * The caution factor of a parameter, as timm computes it in float32: the
 * mask's mean `f32(agreeing / elements)` clamped at `f32(1e-3)`, and the
 * kept updates multiplied by `f32(1 / mean)`.
 *
 * @param agreeing Elements whose update sign agrees with the gradient's.
 * @param elements The parameter's elements.
 * @returns The factor.
 */
export function cautionFactor(agreeing: number, elements: number): number {
  return Math.fround(1 / Math.max(Math.fround(agreeing / elements), Math.fround(1e-3)));
}

/**
 * Adds one element's terms to the six metric sums, in {@linkcode Partial}
 * order: `m²`, `p²`, `u²`, `g²`, `u·g`, `m·g`.
 *
 * @param sums The sums.
 * @param m The post-step moment.
 * @param p The post-step parameter.
 * @param u The step tensor.
 * @param g The step's gradient.
 */
export function addPartialTerms(
  sums: Float64Array,
  m: number,
  p: number,
  u: number,
  g: number,
): void {
  sums[Partial.moment]! += m * m;
  sums[Partial.param]! += p * p;
  sums[Partial.update]! += u * u;
  sums[Partial.grad]! += g * g;
  sums[Partial.updateGrad]! += u * g;
  sums[Partial.momentGrad]! += m * g;
}

/**
 * Where the ranks' bits of a sign vote lie in a memory, in bytes, for
 * {@linkcode LionKernel.tallyVotes}: rank `r`'s sign words from
 * `signs + r·stride`, its voting words likewise from `voting`.
 */
export interface VoteTally {
  /** Rank 0's sign words. */
  readonly signs: number;
  /** Rank 0's voting words, or `null` where every element votes. */
  readonly voting: number | null;
  /** Bytes from one rank's words to the next's: a multiple of 16. */
  readonly stride: number;
  /** The ranks. */
  readonly worldSize: number;
  /** The words to count: a multiple of 4. */
  readonly words: number;
  /** Where the pairs of masks go (8 bytes a word). */
  readonly out: number;
  /** {@linkcode TALLY_SCRATCH_BYTES} the count may use. */
  readonly scratch: number;
}

/** The scratch bytes of a {@linkcode VoteTally}: the counts' bit planes, 32 bytes each for up to 31. */
export const TALLY_SCRATCH_BYTES = 992;

/** A kernel: the update and the gradient scan, on one arena. */
export interface LionKernel {
  /** The backend name, as reported by the optimizer. */
  readonly name: string;
  /**
   * The gradient scan: writes to `out[segment.block]`, when `squares`,
   * `Σ g²` of each segment's gradient in float64 (a non-finite sum means a
   * NaN or infinite gradient: the square of a finite float32 cannot
   * overflow float64); otherwise the verdict alone, NaN where the segment
   * holds a NaN or infinite gradient and 0 where it does not (a gate that
   * uses no norm needs no squares). That is how the optimizer's `nonFinite`
   * policy finds them before anything is written.
   */
  scanGradients(
    arena: WebAssembly.Memory,
    segments: readonly KernelSegment[],
    out: Float64Array,
    squares: boolean,
  ): void;
  /**
   * The data-parallel average: divides each segment's gradient by `divisor`
   * (the world size) in place, the float32 quotient, and then, where `out`
   * is given, scans it as {@linkcode LionKernel.scanGradients} would, while
   * it is still in cache. The step then decides from these sums and skips
   * its own scan.
   */
  averageGradients(
    arena: WebAssembly.Memory,
    segments: readonly KernelSegment[],
    divisor: number,
    out: Float64Array | null,
    squares: boolean,
  ): void;
  /**
   * Writes to `out[segment.block]` how many elements of each segment of a
   * cautious group have an update direction `lerp(m, g, 1 - β1)` whose sign
   * agrees with the (scaled) gradient's: the count behind timm's caution
   * mask. Segments of other groups are left alone.
   */
  countAgreement(
    arena: WebAssembly.Memory,
    segments: readonly KernelSegment[],
    groups: readonly GroupConstants[],
    out: Float64Array,
  ): void;
  /**
   * Applies the update in place to every segment and, when `partials` is
   * given, writes each segment's {@linkcode PARTIAL_COUNT} sums there.
   * `caution[segment.block]`, when `caution` is given and that value is not
   * 0, is the segment's caution factor: the cautious update applies.
   */
  update(
    arena: WebAssembly.Memory,
    segments: readonly KernelSegment[],
    groups: readonly GroupConstants[],
    partials: Float64Array | null,
    caution: Float32Array | null,
  ): void;
  /**
   * The sign-vote exchange's first pass: moves this rank's momentum,
   * `m = lerp(m, g·gs, 1 − β2)`, rounded as {@linkcode LionKernel.update}
   * rounds it, and writes, for each 32 elements, a pair of words from the
   * start of the segment's gradient slot: the signs (bit set where
   * `c = lerp(m, g·gs, 1 − β1) > 0`) and the votes (bit set where `c` is
   * neither ±0 nor NaN). Bits past the segment's end are 0. The slot's
   * gradients are spent.
   *
   * @returns How many elements abstain.
   */
  signVotes(arena: WebAssembly.Memory, segment: KernelSegment, group: GroupConstants): number;
  /**
   * The sign-vote exchange's count: for each word of the ranks' gathered
   * bits (see {@linkcode VoteTally}), a pair of masks, up (bit set where
   * more ranks vote +1 than −1) and down (more vote −1); a tie is in
   * neither.
   */
  tallyVotes(memory: WebAssembly.Memory, tally: VoteTally): void;
  /**
   * The sign-vote exchange's update of the segment's parameters,
   * `p = p·decay − lr·v`, rounded as {@linkcode LionKernel.update} rounds
   * `p`, with `v` from the pairs of words at the start of its gradient slot
   * (up: bit set where `v` is +1; down: where it is −1; a tie in neither).
   * Bits past the segment's end must be 0.
   */
  applyVotes(
    arena: WebAssembly.Memory,
    segment: KernelSegment,
    lr: number,
    decayMultiplier: number,
  ): void;
}
