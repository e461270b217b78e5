/**
 * The `wasm` kernel: WebAssembly SIMD (f32x4) over the store's memory, in
 * place, bit-exact with the scalar kernel. Source: src/wasm/lion.wat.
 *
 * @module
 */

import { isShared } from "./arena.ts";
import type { GroupConstants, LionKernel } from "./kernel.ts";
import { PARTIAL_COUNT } from "./kernel.ts";
import { LION_WASM_PLAIN, LION_WASM_SHARED } from "./wasm/lion_wasm.ts";
import { cautiousUpdate, jsKernel } from "./js_kernel.ts";

/** How the kernel computes torch's fused multiply-add. */
export type FmaMode = "relaxed" | "exact";

/**
 * An update export: byte offsets of p, g and m, the element count, then
 * lr, lerp coefficient and base of the direction (c1, g1) and of the moment
 * (c2, g2), the decay multiplier and the gradient scale.
 */
type UpdateExport = (
  p: number,
  g: number,
  m: number,
  n: number,
  lr: number,
  c1: number,
  g1: number,
  c2: number,
  g2: number,
  decay: number,
  gradScale: number,
) => void;

/** The same with the step tensor's decay coefficient; returns the six sums. */
type UpdateMetricsExport = (...args: [...Parameters<UpdateExport>, sd: number]) => number[];

interface LionExports {
  relaxed_madd_is_fused(): number;
  update: UpdateExport;
  update_exact: UpdateExport;
  update_metrics: UpdateMetricsExport;
  update_metrics_exact: UpdateMetricsExport;
  sum_squares(g: number, n: number): number;
}

function decode(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

const modules = new Map<boolean, WebAssembly.Module>();

function moduleFor(shared: boolean): WebAssembly.Module {
  let module = modules.get(shared);
  if (module === undefined) {
    module = new WebAssembly.Module(decode(shared ? LION_WASM_SHARED : LION_WASM_PLAIN));
    modules.set(shared, module);
  }
  return module;
}

/**
 * Whether this runtime runs the kernel: WebAssembly with SIMD and relaxed
 * SIMD (V8 11.4+, Deno 1.34+, Node 20+... with the flag in older Nodes).
 *
 * @returns `true` when the module validates.
 */
export function wasmKernelAvailable(): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(decode(LION_WASM_PLAIN));
  } catch {
    return false;
  }
}

let probedFused: boolean | undefined;

/**
 * Whether `f32x4.relaxed_madd` rounds once here (it does on x86 with FMA
 * and on ARM64); probed once per thread.
 */
export function relaxedMaddIsFused(): boolean {
  if (probedFused === undefined) {
    const memory = new WebAssembly.Memory({ initial: 0, maximum: 1 });
    const instance = new WebAssembly.Instance(moduleFor(false), { env: { memory } });
    probedFused = (instance.exports as unknown as LionExports).relaxed_madd_is_fused() === 1;
  }
  return probedFused;
}

/** lerp's branch resolved once: coefficient, and 1 when the base is g. */
function lerpTerms(weight: number): [number, number] {
  return weight < 0.5 ? [weight, 0] : [weight - 1, 1];
}

/** The wasm kernel, with its fma mode. */
export interface WasmKernel extends LionKernel {
  /** `"relaxed"`: hardware fma through relaxed_madd; `"exact"`: the f64x2 path. */
  readonly fma: FmaMode;
}

/**
 * Makes a wasm kernel. Each memory it is given gets its own instance.
 *
 * @param fma `"auto"` probes relaxed_madd and takes the exact path where it
 * is not fused; the others force a path (tests use `"exact"`).
 * @returns The kernel.
 * @throws {RangeError} When `"relaxed"` is forced where it is not fused.
 */
export function createWasmKernel(fma: FmaMode | "auto" = "auto"): WasmKernel {
  const fused = relaxedMaddIsFused();
  if (fma === "relaxed" && !fused) {
    throw new RangeError(
      "Cannot use fma 'relaxed' as f32x4.relaxed_madd is not fused on this machine",
    );
  }
  const mode: FmaMode = fma === "auto" ? (fused ? "relaxed" : "exact") : fma;
  const instances = new Map<WebAssembly.Memory, LionExports>();
  const exportsFor = (memory: WebAssembly.Memory): LionExports => {
    let exports = instances.get(memory);
    if (exports === undefined) {
      const shared = isShared(memory.buffer);
      const instance = new WebAssembly.Instance(moduleFor(shared), { env: { memory } });
      exports = instance.exports as unknown as LionExports;
      instances.set(memory, exports);
    }
    return exports;
  };

  return {
    name: "wasm",
    fma: mode,

    sumSquaredGradients(arena, segments, out) {
      const wasm = exportsFor(arena);
      for (const segment of segments) {
        out[segment.block] = wasm.sum_squares(segment.grad * 4, segment.length);
      }
    },

    // cautious groups run the scalar kernel's code (bit-exact, not SIMD)
    countAgreement(arena, segments, groups, out) {
      jsKernel.countAgreement(arena, segments, groups, out);
    },

    update(arena, segments, groups, partials, caution) {
      const wasm = exportsFor(arena);
      let f32: Float32Array | undefined;
      const update = mode === "exact" ? wasm.update_exact : wasm.update;
      const updateMetrics = mode === "exact" ? wasm.update_metrics_exact : wasm.update_metrics;
      const terms = groups.map(groupTerms);
      for (const segment of segments) {
        const factor = caution?.[segment.block] ?? 0;
        if (factor !== 0) {
          f32 ??= new Float32Array(arena.buffer);
          cautiousUpdate(f32, segment, groups[segment.group]!, factor, partials);
          continue;
        }
        const [lr, c1, g1, c2, g2, decay, gs, sd] = terms[segment.group]!;
        const { data, grad, expAvg, length } = segment;
        if (partials === null) {
          update(data * 4, grad * 4, expAvg * 4, length, lr, c1, g1, c2, g2, decay, gs);
        } else {
          const sums = updateMetrics(
            data * 4,
            grad * 4,
            expAvg * 4,
            length,
            lr,
            c1,
            g1,
            c2,
            g2,
            decay,
            gs,
            sd,
          );
          partials.set(sums, segment.block * PARTIAL_COUNT);
        }
      }
    },
  };
}

type Terms = [number, number, number, number, number, number, number, number];

function groupTerms(k: GroupConstants): Terms {
  const [c1, g1] = lerpTerms(k.directionWeight);
  const [c2, g2] = lerpTerms(k.momentWeight);
  return [k.lr, c1, g1, c2, g2, k.decayMultiplier, k.gradScale, k.stepDecay];
}
