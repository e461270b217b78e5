/**
 * The kernel backends and what each one can do: a row per backend. Every
 * rule that depends on the backend (which options combine with it, whether a
 * step can be synchronous, where exp_avg lives, which runner a shard opens)
 * reads its row here; no module outside the engine tests a backend's name.
 * A new backend is a row here and a runner (engine/runner_spec.ts).
 *
 * @module
 */

import { namesOf } from "../_internal/names_of.ts";

/**
 * Kernel backends: `wasm` (WebAssembly SIMD, the default), `gpujs` (gpu.js
 * kernels: WebGPU on a GPU, or gpu.js's webasm/cpu modes) and `js` (the
 * scalar oracle).
 *
 * @example Ask for the scalar backend
 * ```ts
 * import { type BackendName, DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const backend: BackendName = "js";
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [1])], { backend });
 * assert.equal(opt.backend, "js");
 * ```
 */
export type BackendName = "js" | "wasm" | "gpujs";

/** The kernel backends, in the order messages list them. */
export const BACKEND_NAMES: readonly BackendName[] = namesOf({ js: 0, wasm: 0, gpujs: 0 });

/**
 * The gpu.js modes this package drives: `webgpu` (WGSL compute shaders on a
 * WebGPU adapter), `webasm` (gpu.js's SIMD WebAssembly) and `cpu` (gpu.js's
 * JavaScript).
 *
 * @example Run the gpujs kernels without a GPU
 * ```ts
 * import { DecoupledLionW, type GpuJsMode, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const gpuMode: GpuJsMode = "webasm";
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { backend: "gpujs", gpuMode, workers: 0, lr: 0.5 });
 * w.grad = [1, -1];
 * await opt.step();
 * assert.deepEqual([...w.data], [0.5, 1.5]);
 * assert.equal((await opt.ready()).gpuMode, "webasm");
 * ```
 */
export type GpuJsMode = "webgpu" | "webasm" | "cpu";

/** The gpu.js modes. */
export const GPU_JS_MODES: readonly GpuJsMode[] = namesOf({ webgpu: 0, webasm: 0, cpu: 0 });

/**
 * The `gpuMode` option: a gpu.js mode, or `"auto"` (`webgpu` on a hardware
 * adapter, `webasm` otherwise).
 *
 * @example Let the adapter decide
 * ```ts
 * import { DecoupledLionW, type GpuModeOption, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const gpuMode: GpuModeOption = "auto";
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [4])], { backend: "gpujs", gpuMode });
 * const { gpuMode: mode } = await opt.ready();
 * assert.ok(mode === "webgpu" || mode === "webasm");
 * ```
 */
export type GpuModeOption = GpuJsMode | "auto";

/**
 * What `probeGpuAdapter()` found (a WebGPU adapter, and whether it is a software one).
 *
 * @example A software adapter, as Mesa's llvmpipe reports itself
 * ```ts
 * import { type GpuAdapterReport, probeGpuAdapter } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const gpu = { requestAdapter: () => Promise.resolve({ info: { description: "llvmpipe (LLVM 15.0.6, 256 bits)" } }) };
 * const report: GpuAdapterReport = await probeGpuAdapter(gpu);
 * assert.deepEqual(report, { available: true, fallback: true, description: "llvmpipe (LLVM 15.0.6, 256 bits)" });
 * ```
 */
export interface GpuAdapterReport {
  /** Whether a WebGPU adapter was granted. */
  readonly available: boolean;
  /** Whether it is a software (fallback) adapter. */
  readonly fallback: boolean;
  /** The adapter's own description (vendor, device, driver), or why there is none. */
  readonly description: string;
}

/** A mode and why it was taken. */
export interface ResolvedGpuMode {
  /** The mode. */
  readonly mode: GpuJsMode;
  /** Why. */
  readonly reason: string;
  /** What the WebGPU probe found. */
  readonly adapter: GpuAdapterReport;
}

/**
 * What a calibration measured: the median step of each backend on a scratch
 * store of `elements` elements, with the optimizer's worker count.
 *
 * @example A calibration that favours the GPU
 * ```ts
 * import type { Calibration } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const calibration: Calibration = { elements: 2 ** 24, cpuMs: 9.8, gpujsMs: 4.1 };
 * assert.ok(calibration.gpujsMs < calibration.cpuMs);
 * ```
 */
export interface Calibration {
  /** Elements of the scratch store (the store's size, at most 2^24). */
  readonly elements: number;
  /** Median step of the CPU backend (`wasm`, or `js` without WebAssembly SIMD), ms. */
  readonly cpuMs: number;
  /** Median step of `gpujs` in `webgpu` mode, ms. */
  readonly gpujsMs: number;
}

/**
 * The backend an optimizer runs (or `recommendBackend()` recommends) and why.
 *
 * @example Read the choice after start-up
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [8])], { logger: null });
 * const choice = await opt.ready();
 * assert.equal(choice.backend, opt.backend);
 * assert.ok(choice.reason.length > 0);
 * ```
 */
export interface BackendChoice {
  /** The backend. */
  readonly backend: BackendName;
  /** Why it was chosen. */
  readonly reason: string;
  /** The gpu.js mode, under `gpujs` (once started). */
  readonly gpuMode?: GpuJsMode;
  /** The WebGPU adapter, where one was probed. */
  readonly adapter?: string;
  /** The measurements behind a recommendation, where there were any. */
  readonly calibration?: Calibration;
}

/**
 * Where a backend keeps exp_avg (and a copy of the parameters) between
 * steps: `"host"` when its kernels update the store in place, `"device"`
 * when the state lives on a device and the store's copy is stale until the
 * engine pulls it (and the host must announce its writes).
 */
export type StateResidence = "host" | "device";

/** What a backend supports: the rules about combining options read these. */
export interface BackendCapabilities {
  /** Where exp_avg lives between steps. */
  readonly state: StateResidence;
  /** Steps that return before the caller goes on (`stepSync`, the tfjs adapter). */
  readonly syncSteps: boolean;
  /** exp_avg stored as bfloat16 (`momentumDtype: "bfloat16"`). */
  readonly bfloat16Moments: boolean;
  /** 8-bit exp_avg (`momentumDtype: "uint8"`). */
  readonly uint8Moments: boolean;
  /** Cautious groups (the caution factor reads exp_avg on the host before the update). */
  readonly cautious: boolean;
  /** Sharded state (ZeRO-1: a rank scans and updates its part of the store in place). */
  readonly shardedState: boolean;
  /** `backend: "auto"` may take it: it updates the store in place, so code behaves the same everywhere. */
  readonly auto: boolean;
  /**
   * The runner a shard opens (engine/runner_spec.ts): `"in-place"` updates
   * the store over the backend's CPU kernel; `"gpujs-device"` keeps the state
   * on a device and runs gpu.js kernels there, in a gpu.js mode resolved at
   * start-up.
   */
  readonly runner: ShardRunnerKind;
}

/** The runners a backend's shards open: see {@linkcode BackendCapabilities.runner}. */
export type ShardRunnerKind = "in-place" | "gpujs-device";

const CPU_KERNEL: BackendCapabilities = Object.freeze({
  state: "host",
  syncSteps: true,
  bfloat16Moments: true,
  uint8Moments: true,
  cautious: true,
  shardedState: true,
  auto: true,
  runner: "in-place",
});

/** The capability table: one row per backend. */
export const BACKENDS: { readonly [B in BackendName]: BackendCapabilities } = Object.freeze({
  js: CPU_KERNEL,
  wasm: CPU_KERNEL,
  gpujs: Object.freeze({
    state: "device",
    syncSteps: false,
    bfloat16Moments: false,
    uint8Moments: false,
    cautious: false,
    shardedState: false,
    auto: false,
    runner: "gpujs-device",
  }),
});

/** The names of the backends that have `capability`, for messages. */
export function backendsWith(capability: keyof BackendCapabilities): BackendName[] {
  return BACKEND_NAMES.filter((name) => BACKENDS[name][capability] === true);
}
