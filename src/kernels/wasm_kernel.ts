/**
 * The `wasm` kernel: WebAssembly SIMD (f32x4) over the store's memory, in
 * place, bit-exact with the scalar kernel. Source: src/kernels/wasm/lion.wat, built
 * with relaxed SIMD (a hardware fused multiply-add where it rounds once)
 * and without it (the "strict" module, for runtimes where a relaxed opcode
 * does not validate: Node 20, older browsers), both bit-exact.
 *
 * @module
 */

import { isShared } from "../store/arena.ts";
import type { GroupConstants, KernelSegment, LionKernel } from "./kernel.ts";
import { PARTIAL_COUNT } from "./kernel.ts";
import {
  LION_WASM_PLAIN,
  LION_WASM_SHARED,
  LION_WASM_STRICT_PLAIN,
  LION_WASM_STRICT_SHARED,
} from "./wasm/lion_wasm.ts";
import { cautiousUpdate, jsKernel } from "./js_kernel.ts";
import { uint8SegmentSums, updateUint8Segment } from "./uint8_blocks.ts";
import { KERNEL_TABLES, UINT8_BLOCK, UINT8_BLOCK_WORDS } from "../store/uint8_moments.ts";
import { DYNAMIC_MAP } from "../store/dynamic_map.ts";

/** How the kernel computes torch's fused multiply-add. */
export type FmaMode = "relaxed" | "exact";

/** Where a segment lies: byte offsets of p, g and m, and its element count. */
type SegmentArgs = [p: number, g: number, m: number, n: number];

/**
 * An update export: the segment, then lr, lerp coefficient and base of the
 * direction (c1, g1) and of the moment (c2, g2), the decay multiplier and
 * the gradient scale.
 */
type UpdateExport = (
  ...args: [
    ...SegmentArgs,
    lr: number,
    c1: number,
    g1: number,
    c2: number,
    g2: number,
    decay: number,
    gradScale: number,
  ]
) => void;

/** The same with the step tensor's decay coefficient; returns the six sums. */
type UpdateMetricsExport = (...args: [...Parameters<UpdateExport>, sd: number]) => number[];

/** The six sums of a segment after its update, exactly in float64. */
type MetricSumsExport = (
  ...args: [...SegmentArgs, lr: number, c1: number, g1: number, gs: number, sd: number]
) => number[];

/**
 * A sign-vote pass export: the gradient's and moment's byte offsets, the
 * element count, the lerp coefficients and bases, the gradient scale;
 * returns how many elements abstain.
 */
type VoteSignsExport = (
  g: number,
  m: number,
  n: number,
  c1: number,
  g1: number,
  c2: number,
  g2: number,
  gradScale: number,
) => number;

/** The exports of one moment type (float32, or bfloat16 with names ending in `_bf16`). */
interface MomentExports {
  /** Relaxed module only. */
  update: UpdateExport | undefined;
  /** Relaxed module only. */
  update_metrics: UpdateMetricsExport | undefined;
  update_exact: UpdateExport;
  update_metrics_exact: UpdateMetricsExport;
  metric_sums: MetricSumsExport;
  /** Relaxed module only. */
  vote_signs: VoteSignsExport | undefined;
  vote_signs_exact: VoteSignsExport;
}

/**
 * Where an 8-bit export's whole blocks lie and its direction's terms:
 * parameters, gradients and blocks at byte offsets, the block count, the
 * tables' offset, then lr, β1 and 1 − β1.
 */
type Uint8BlockArgs = [
  p: number,
  g: number,
  m: number,
  blocks: number,
  tables: number,
  lr: number,
  beta1: number,
  directionWeight: number,
];

/** The 8-bit update: then β2, 1 − β2, the decay multiplier and the gradient scale. */
type Uint8UpdateExport = (
  ...args: [
    ...Uint8BlockArgs,
    beta2: number,
    momentWeight: number,
    decay: number,
    gradScale: number,
  ]
) => void;

/**
 * The metrics' six sums over the blocks after their update: then the
 * gradient scale and the step tensor's decay coefficient.
 */
type Uint8SumsExport = (
  ...args: [...Uint8BlockArgs, gradScale: number, stepDecay: number]
) => number[];

interface LionExports {
  /** Relaxed module only. */
  relaxed_madd_is_fused?(): number;
  /** Relaxed module only. */
  update_u8?: Uint8UpdateExport;
  update_u8_exact: Uint8UpdateExport;
  /** Relaxed module only. */
  sums_u8?: Uint8SumsExport;
  sums_u8_exact: Uint8SumsExport;
  find_non_finite(g: number, n: number): number;
  sum_squares(g: number, n: number): number;
  scale(g: number, n: number, s: number): void;
  divide(g: number, n: number, d: number): void;
  vote_tally(
    signs: number,
    voting: number,
    allVote: number,
    stride: number,
    world: number,
    vectors: number,
    out: number,
    scratch: number,
  ): void;
  vote_apply(p: number, masks: number, n: number, lr: number, decay: number): void;
  [name: string]: unknown;
}

/**
 * The exports of `exports` for one moment type and lerp bases: `baseM`
 * takes the kernels specialized for groups whose two lerps both start from
 * m (names with `_mm`: no base masks).
 */
function momentExports(exports: LionExports, bfloat16: boolean, baseM: boolean): MomentExports {
  const moment = bfloat16 ? "_bf16" : "";
  const bases = baseM ? "_mm" : "";
  const pick = <T>(name: string) => exports[name + bases + moment] as T;
  return {
    update: pick<UpdateExport | undefined>("update"),
    update_metrics: pick<UpdateMetricsExport | undefined>("update_metrics"),
    update_exact: pick<UpdateExport>("update_exact"),
    update_metrics_exact: pick<UpdateMetricsExport>("update_metrics_exact"),
    metric_sums: exports[`metric_sums${moment}`] as MetricSumsExport,
    vote_signs: pick<VoteSignsExport | undefined>("vote_signs"),
    vote_signs_exact: pick<VoteSignsExport>("vote_signs_exact"),
  };
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Which build of the module: with relaxed SIMD, or without a relaxed opcode. */
export type WasmSimd = "relaxed" | "strict";

const SOURCES: Record<WasmSimd, Record<"shared" | "plain", string>> = {
  relaxed: { shared: LION_WASM_SHARED, plain: LION_WASM_PLAIN },
  strict: { shared: LION_WASM_STRICT_SHARED, plain: LION_WASM_STRICT_PLAIN },
};

const modules = new Map<string, WebAssembly.Module>();

function moduleFor(simd: WasmSimd, shared: boolean): WebAssembly.Module {
  const key = `${simd}/${shared}`;
  let module = modules.get(key);
  if (module === undefined) {
    module = new WebAssembly.Module(decode(SOURCES[simd][shared ? "shared" : "plain"]));
    modules.set(key, module);
  }
  return module;
}

function validates(base64: string): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(decode(base64));
  } catch {
    return false;
  }
}

let probedSimd: WasmSimd | null | undefined;

/**
 * Which build of the kernel this runtime runs: `"relaxed"` where relaxed
 * SIMD validates (V8 11.4+: Deno, Chrome 114+, Node 22+), `"strict"` where
 * only SIMD does (Node 20, older browsers), `null` without WebAssembly SIMD.
 *
 * @returns The build, probed once per thread.
 */
export function wasmSimdSupport(): WasmSimd | null {
  if (probedSimd === undefined) {
    probedSimd = validates(LION_WASM_PLAIN)
      ? "relaxed"
      : validates(LION_WASM_STRICT_PLAIN)
      ? "strict"
      : null;
  }
  return probedSimd;
}

/**
 * Whether this runtime runs the kernel: WebAssembly with SIMD (relaxed SIMD
 * or not: both builds are bit-exact).
 *
 * @returns `true` when one of the modules validates.
 */
export function wasmKernelAvailable(): boolean {
  return wasmSimdSupport() !== null;
}

let probedFused: boolean | undefined;

/**
 * Whether `f32x4.relaxed_madd` rounds once here (it does on x86 with FMA
 * and on ARM64); probed once per thread. `false` where relaxed SIMD does
 * not validate.
 */
export function relaxedMaddIsFused(): boolean {
  if (probedFused === undefined) {
    if (wasmSimdSupport() !== "relaxed") return (probedFused = false);
    const memory = new WebAssembly.Memory({ initial: 0, maximum: 1 });
    const instance = new WebAssembly.Instance(moduleFor("relaxed", false), { env: { memory } });
    probedFused = (instance.exports as unknown as LionExports).relaxed_madd_is_fused!() === 1;
  }
  return probedFused;
}

/**
 * The smallest float64 sum of squares the float32 runs are trusted with:
 * below it, products may have lost digits to float32's subnormal range.
 */
const TRUSTED_SUM_MIN = 2 ** -60;

/** Whether the float32-run sums can stand: no overflow (finite), no lost digits (not tiny). */
function runSumsTrusted(sums: readonly number[]): boolean {
  // Σm², Σp², Σu², Σg² (the dot products are bounded by them: Cauchy–Schwarz); NaN fails each
  // comparison, and an infinite one makes the total infinite. Unrolled: it runs once per segment.
  const [mm, pp, uu, gg] = sums as [number, number, number, number];
  return mm >= TRUSTED_SUM_MIN && pp >= TRUSTED_SUM_MIN && uu >= TRUSTED_SUM_MIN &&
    gg >= TRUSTED_SUM_MIN && mm + pp + uu + gg < Infinity;
}

/** The first arguments of an 8-bit export: a segment's first `blocks` whole blocks. */
function uint8BlockArgs(segment: KernelSegment, blocks: number, k: GroupConstants): Uint8BlockArgs {
  return [
    segment.data * 4,
    segment.grad * 4,
    segment.expAvg * 4,
    blocks,
    KERNEL_TABLES.map,
    k.lr,
    k.beta1,
    k.directionWeight,
  ];
}

/** A partial last 8-bit block's sums. */
const tailSums = new Float64Array(PARTIAL_COUNT);

/**
 * An 8-bit segment's sums: its whole blocks in wasm's float32 runs (as
 * float32 moments' sums are taken), its partial last block in the scalar
 * code; the whole segment in the scalar code's float64 where the runs are
 * not trusted.
 */
function uint8Sums(
  sumsU8: Uint8SumsExport,
  f32: Float32Array,
  parts: { segment: KernelSegment; blocks: number; tail: KernelSegment },
  k: GroupConstants,
  partials: Float64Array,
): void {
  const { segment, blocks, tail } = parts;
  const sums = sumsU8(...uint8BlockArgs(segment, blocks, k), k.gradScale, k.stepDecay);
  if (!runSumsTrusted(sums)) return uint8SegmentSums(f32, segment, k, partials);
  tailSums.fill(0);
  if (tail.length > 0) uint8SegmentSums(f32, { ...tail, block: 0 }, k, tailSums);
  const at = segment.block * PARTIAL_COUNT;
  for (let i = 0; i < PARTIAL_COUNT; i++) partials[at + i] = sums[i]! + tailSums[i]!;
}

/** lerp's branch resolved once: coefficient, and 1 when the base is g. */
function lerpTerms(weight: number): [number, number] {
  return weight < 0.5 ? [weight, 0] : [weight - 1, 1];
}

/** The wasm kernel, with its fma mode and module build. */
export interface WasmKernel extends LionKernel {
  /** `"relaxed"`: hardware fma through relaxed_madd; `"exact"`: the f64x2 path. */
  readonly fma: FmaMode;
  /** The module it runs: with relaxed SIMD, or without (`"exact"` fma then). */
  readonly simd: WasmSimd;
}

/**
 * Makes a wasm kernel. Each memory it is given gets its own instance.
 *
 * @param fma `"auto"` probes relaxed_madd and takes the exact path where it
 * is not fused; the others force a path (tests use `"exact"`).
 * @param simd `"auto"` takes the relaxed module where it validates, else the
 * strict one; `"strict"` forces the module without relaxed opcodes (tests,
 * the Node bench rows).
 * @returns The kernel.
 * @throws {RangeError} When `"relaxed"` is forced where it is not fused or
 * does not validate, or when this runtime has no WebAssembly SIMD.
 */
export function createWasmKernel(
  fma: FmaMode | "auto" = "auto",
  simd: WasmSimd | "auto" = "auto",
): WasmKernel {
  const support = wasmSimdSupport();
  if (support === null) {
    throw new RangeError("Cannot make the wasm kernel as this runtime has no WebAssembly SIMD");
  }
  const build: WasmSimd = simd === "auto" ? support : simd;
  if (build === "relaxed" && support !== "relaxed") {
    throw new RangeError("Cannot use simd 'relaxed' as relaxed SIMD does not validate here");
  }
  const fused = build === "relaxed" && relaxedMaddIsFused();
  if (fma === "relaxed" && !fused) {
    throw new RangeError(
      build === "relaxed"
        ? "Cannot use fma 'relaxed' as f32x4.relaxed_madd is not fused on this machine"
        : "Cannot use fma 'relaxed' with the strict module, which has no relaxed_madd",
    );
  }
  const mode: FmaMode = fma === "auto" ? (fused ? "relaxed" : "exact") : fma;
  /** Per memory: the instance's exports, and its kernels by [moment bfloat16][both bases m]. */
  const instances = new WeakMap<WebAssembly.Memory, [LionExports, MomentExports[][]]>();
  const instanceFor = (memory: WebAssembly.Memory): [LionExports, MomentExports[][]] => {
    let instance = instances.get(memory);
    if (instance === undefined) {
      const module = moduleFor(build, isShared(memory.buffer));
      const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as LionExports;
      const variants = [false, true].map((bf16) =>
        [false, true].map((baseM) => momentExports(exports, bf16, baseM))
      );
      instance = [exports, variants];
      instances.set(memory, instance);
    }
    return instance;
  };

  return {
    name: "wasm",
    fma: mode,
    simd: build,

    scanGradients(arena, segments, out, squares) {
      const [wasm] = instanceFor(arena);
      for (const segment of segments) scan(wasm, segment, out, squares);
    },

    averageGradients(arena, segments, divisor, out, squares) {
      const [wasm] = instanceFor(arena);
      // one rank: the sum is the gradient; a power of two: times 1/n, the same quotient
      const divide = divisor === 1
        ? () => {}
        : (divisor & (divisor - 1)) === 0
        ? (g: number, n: number) => wasm.scale(g, n, 1 / divisor)
        : (g: number, n: number) => wasm.divide(g, n, divisor);
      for (const segment of segments) {
        // each segment divided, then scanned while it is in cache
        divide(segment.grad * 4, segment.length);
        if (out !== null) scan(wasm, segment, out, squares);
      }
    },

    signVotes(arena, segment, k) {
      const [, variants] = instanceFor(arena);
      const [, c1, g1, c2, g2, , gs] = groupTerms(k);
      const wasm = variants[k.momentBfloat16]![g1 === 0 && g2 === 0 ? 1 : 0]!;
      const signVotes = mode === "exact" ? wasm.vote_signs_exact : wasm.vote_signs!;
      return signVotes(segment.grad * 4, segment.expAvg * 4, segment.length, c1, g1, c2, g2, gs);
    },

    tallyVotes(memory, tally) {
      const { signs, voting, stride, worldSize, words, out, scratch } = tally;
      // the count reads four words at a time
      if (words % 4 !== 0 || stride % 16 !== 0) {
        throw new RangeError(
          `Cannot tally ${words} words ${stride} bytes apart: both must be whole 16-byte vectors`,
        );
      }
      const [wasm] = instanceFor(memory);
      wasm.vote_tally(
        signs,
        voting ?? 0,
        voting === null ? 1 : 0,
        stride,
        worldSize,
        words / 4,
        out,
        scratch,
      );
    },

    applyVotes(arena, segment, lr, decayMultiplier) {
      const [wasm] = instanceFor(arena);
      wasm.vote_apply(segment.data * 4, segment.grad * 4, segment.length, lr, decayMultiplier);
    },

    // cautious groups run the scalar kernel's code (bit-exact, not SIMD)
    countAgreement(arena, segments, groups, out) {
      jsKernel.countAgreement(arena, segments, groups, out);
    },

    update(arena, segments, groups, partials, caution) {
      const [exports, variants] = instanceFor(arena);
      let f32: Float32Array | undefined;
      const terms = groups.map(groupTerms);
      for (const segment of segments) {
        const k = groups[segment.group]!;
        const factor = caution?.[segment.block] ?? 0;
        if (k.momentUint8) {
          f32 ??= new Float32Array(arena.buffer);
          if (factor !== 0 || !hasKernelTables(f32)) {
            // cautious, or a memory without the tables: the tuned scalar code
            updateUint8Segment(f32, segment, k, factor, partials);
            continue;
          }
          // whole blocks in wasm; a tensor's partial last block in the scalar code
          const blocks = Math.floor(segment.length / UINT8_BLOCK);
          const updateU8 = mode === "exact" ? exports.update_u8_exact : exports.update_u8!;
          updateU8(
            ...uint8BlockArgs(segment, blocks, k),
            k.beta2,
            k.momentWeight,
            k.decayMultiplier,
            k.gradScale,
          );
          const done = blocks * UINT8_BLOCK;
          const tail = {
            ...segment,
            data: segment.data + done,
            grad: segment.grad + done,
            expAvg: segment.expAvg + blocks * UINT8_BLOCK_WORDS,
            length: segment.length - done,
          };
          if (tail.length > 0) updateUint8Segment(f32, tail, k, 0, null);
          if (partials !== null) {
            const sumsU8 = mode === "exact" ? exports.sums_u8_exact : exports.sums_u8!;
            uint8Sums(sumsU8, f32, { segment, blocks, tail }, k, partials);
          }
          continue;
        }
        if (factor !== 0) {
          f32 ??= new Float32Array(arena.buffer);
          cautiousUpdate(f32, segment, k, factor, partials);
          continue;
        }
        const [lr, c1, g1, c2, g2, decay, gs, sd] = terms[segment.group]!;
        const wasm = variants[k.momentBfloat16]![g1 === 0 && g2 === 0 ? 1 : 0]!;
        const [p, g, m, n] = [
          segment.data * 4,
          segment.grad * 4,
          segment.expAvg * 4,
          segment.length,
        ];
        if (partials === null) {
          const update = mode === "exact" ? wasm.update_exact : wasm.update!;
          update(p, g, m, n, lr, c1, g1, c2, g2, decay, gs);
          continue;
        }
        const updateMetrics = mode === "exact" ? wasm.update_metrics_exact : wasm.update_metrics!;
        let sums = updateMetrics(p, g, m, n, lr, c1, g1, c2, g2, decay, gs, sd);
        if (!runSumsTrusted(sums)) sums = wasm.metric_sums(p, g, m, n, lr, c1, g1, gs, sd);
        // element by element: TypedArray#set from a plain array costs ~100 ns a call, per segment
        const at = segment.block * PARTIAL_COUNT;
        for (let i = 0; i < PARTIAL_COUNT; i++) partials[at + i] = sums[i]!;
      }
    },
  };
}

/**
 * Whether a memory starts with the 8-bit rule's tables (every arena of a
 * store does): the map's first and last values where they belong.
 */
function hasKernelTables(f32: Float32Array): boolean {
  const at = KERNEL_TABLES.map / 4;
  return f32.length > KERNEL_TABLES.bytes / 4 && f32[at] === DYNAMIC_MAP[0] &&
    f32[at + 255] === DYNAMIC_MAP[255] && f32[at + 127] === 0;
}

/** The gradient scan of one segment: `Σg²`, or the verdict alone (NaN or 0). */
function scan(
  wasm: LionExports,
  segment: KernelSegment,
  out: Float64Array,
  squares: boolean,
): void {
  const { grad, length } = segment;
  out[segment.block] = squares
    ? wasm.sum_squares(grad * 4, length)
    : wasm.find_non_finite(grad * 4, length) === 1
    ? NaN
    : 0;
}

type Terms = [number, number, number, number, number, number, number, number];

function groupTerms(k: GroupConstants): Terms {
  const [c1, g1] = lerpTerms(k.directionWeight);
  const [c2, g2] = lerpTerms(k.momentWeight);
  return [k.lr, c1, g1, c2, g2, k.decayMultiplier, k.gradScale, k.stepDecay];
}
