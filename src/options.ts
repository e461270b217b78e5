/**
 * The public types of {@linkcode DecoupledLionW}'s API that are not a class:
 * the engine options it takes, the backend and gpu.js mode names, and the
 * reports it gives back (what a step did, which backend runs and why).
 *
 * Each union is written once, as a type; the name lists that checks and
 * messages use (`BACKEND_NAMES`, …) are derived from a record that the
 * compiler holds to exactly the union's members.
 *
 * @module
 */

import type { GroupHyperparameters } from "./hyperparameters.ts";
import type { Collective } from "./collective.ts";
import type { Logger } from "./logger.ts";
import type { MomentumDtype } from "./moment_dtype.ts";

/** The keys of a record with one entry per member of `T` (the compiler checks there are no more, no fewer). */
function namesOf<T extends string>(members: Record<T, 0>): readonly T[] {
  return Object.freeze(Object.keys(members) as T[]);
}

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
 * What a step does when a gradient holds NaN or ±Infinity:
 * - `"error"`: throw a `RangeError` naming the parameters, changing nothing;
 * - `"skip"`: skip the whole step, report it in `lastStep` and the logger;
 * - `"ignore"`: apply it as torch does (the moment becomes NaN).
 *
 * @example Skip steps with bad gradients instead of throwing
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { nonFinite: "skip", logger: null });
 * w.grad = [NaN, 1];
 * await opt.step();
 * assert.deepEqual(opt.lastStep.nonFinite, ["w"]);
 * assert.deepEqual([...w.data], [1, 1]);
 * ```
 */
export type NonFinitePolicy = "error" | "skip" | "ignore";

/** The non-finite policies (their indices are the control block's codes). */
export const NON_FINITE_POLICIES: readonly NonFinitePolicy[] = namesOf({
  error: 0,
  skip: 0,
  ignore: 0,
});

/**
 * Options of {@linkcode DecoupledLionW}: group defaults and engine choices.
 *
 * @example Defaults for every group, a silent logger
 * ```ts
 * import { DecoupledLionW, type DecoupledLionWOptions, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const options: DecoupledLionWOptions = { lr: 3e-4, betas: [0.95, 0.98], weightDecay: 0.1, logger: null };
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [4])], options);
 * assert.equal(opt.paramGroups[0]!.weightDecay, 0.1);
 * assert.equal(opt.workers, 0);
 * ```
 */
export interface DecoupledLionWOptions extends GroupHyperparameters {
  /**
   * Shard workers: Web Workers that each update a contiguous share of the
   * elements in place. `0` runs the kernels on the calling thread. `"auto"`
   * takes one worker per 2^18 elements (below that, dispatch costs more than
   * it saves), at most `navigator.hardwareConcurrency`, and `0` where there
   * is no `Worker` or no shared memory (Node, Deno Deploy, a page that is not
   * cross-origin isolated). Asking for workers there logs a warning and runs
   * inline, with the same results.
   *
   * @default {"auto"}
   */
  workers?: number | "auto";
  /**
   * The kernel backend: `"wasm"` (WebAssembly SIMD), `"gpujs"` (gpu.js
   * kernels, see `gpuMode`) or `"js"` (the scalar oracle). `"auto"` takes
   * `"wasm"` where WebAssembly SIMD runs, else `"js"`: only backends
   * that update the store in place, so a program behaves the same on every
   * machine. `"gpujs"` keeps state on a device (pull it, announce host
   * writes), so it is used only when named; `recommendBackend()` measures
   * whether it would be faster here. `backendChoice` says what was taken
   * and why.
   *
   * @default {"auto"}
   */
  backend?: BackendName | "auto";
  /**
   * The gpu.js mode of the `gpujs` backend: `"webgpu"` (WGSL compute
   * shaders; needs a WebGPU adapter), `"webasm"` (gpu.js's WebAssembly) or
   * `"cpu"` (gpu.js's JavaScript). `"auto"` takes `"webgpu"` on a hardware
   * adapter and `"webasm"` otherwise.
   *
   * @default {"auto"}
   */
  gpuMode?: GpuModeOption;
  /**
   * How the `wasm` kernel computes torch's fused multiply-add: `"auto"` uses
   * `f32x4.relaxed_madd` where a start-up probe shows it is fused (x86 with
   * FMA, ARM64) and an exact float64 path elsewhere; `"exact"` always takes
   * the float64 path (slower; both are bit-exact).
   *
   * @default {"auto"}
   */
  fma?: "auto" | "exact";
  /**
   * What to do with NaN or infinite gradients.
   *
   * @default {"error"}
   */
  nonFinite?: NonFinitePolicy;
  /**
   * Clip the gradients to this global L2 norm before every step, as torch's
   * `clip_grad_norm_(params, maxGradNorm)` would: the norm over every
   * parameter with a gradient in the step, from the gradient scan, and the
   * factor `min(1, maxGradNorm / (norm + 1e-6))` applied inside the update
   * kernel (no extra pass over memory; the gradients themselves are left as
   * they are). `Infinity` does not clip. A step's own `maxGradNorm` overrides it.
   *
   * @default {Infinity}
   */
  maxGradNorm?: number;
  /**
   * Where the shard worker's module is, for bundled code: a bundler leaves
   * the library's own `workers/shard_worker.ts` behind, so a page that
   * bundles the library also bundles that module
   * (`deno bundle jsr:@decoupled/lionw/shard-worker`) and names it here.
   *
   * @default {the module beside the library's worker pool}
   */
  workerUrl?: string | URL;
  /**
   * Data-parallel training: the ranks that step this same optimizer, each
   * on its own batch (`MpiCollective` from `@decoupled/lionw/mpi`, or a
   * {@linkcode Collective} of your own). Each step first sums the
   * gradients over the ranks and divides them by the world size, in
   * float32, so every rank takes the same decisions and updates to the
   * same parameters, state and metrics, bit for bit. A rank without a
   * gradient for a parameter adds zeros. Every rank must build the same
   * optimizer over the same initial values (checked at the first step).
   *
   * @default {undefined (one process)}
   */
  collective?: Collective;
  /**
   * Sharded optimizer state (ZeRO-1), with a `collective`: each rank keeps
   * exp_avg for about 1/worldSize of the elements and updates only those;
   * the gradients are reduce-scattered and the parameters all-gathered.
   * Parameters stay bit-identical to the unsharded run, metrics equal
   * within float64 rounding. `stateDict()` and `state()` need
   * `await pullState()` on every rank first (it gathers exp_avg). Not for
   * the `gpujs` backend or cautious groups.
   *
   * @default {false}
   */
  shardState?: boolean;
  /**
   * With a `collective`, every this many applied steps, compare a checksum
   * of every parameter (and, unsharded, of exp_avg) across the ranks, and
   * throw on every rank, naming the ranks and parameters that drifted from
   * rank 0. `0` never checks.
   *
   * @default {0}
   */
  checkRanksEvery?: number;
  /**
   * How exp_avg is stored: `"float32"`, or `"bfloat16"`, which halves what
   * the state reads and writes (16 instead of 20 bytes per element and
   * step) and what checkpoints hold. The moment is read as the float32 it
   * widens to, the update computed in float32, and the new moment rounded
   * to nearest even (torch: `m.float().lerp(g, 1 - β2).to(torch.bfloat16)`).
   * `state()` and `stateDict()` then give float32 copies, exact. Not for
   * the `gpujs` backend or `shardState`. A store made with
   * `momentumDtype: "bfloat16"` holds half-size exp_avg slots (the memory
   * halves too) and needs it.
   *
   * @default {the store's: "float32" unless it was made for bfloat16}
   */
  momentumDtype?: MomentumDtype;
  /**
   * Where warnings go; `null` silences them.
   *
   * @default {console}
   */
  logger?: Logger | null;
}

/** The engine options of {@linkcode DecoupledLionWOptions} (the rest are group defaults). */
export const ENGINE_OPTION_KEYS: readonly string[] = [
  "workers",
  "backend",
  "gpuMode",
  "fma",
  "nonFinite",
  "maxGradNorm",
  "workerUrl",
  "collective",
  "shardState",
  "checkRanksEvery",
  "momentumDtype",
  "logger",
];

/**
 * Options of one {@linkcode DecoupledLionW.step}.
 *
 * @example Metrics and a closure in one step
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [1], [2]);
 * await using opt = new DecoupledLionW([w]);
 * const loss = await opt.step({
 *   metrics: true,
 *   closure: () => {
 *     w.grad = [2 * w.data[0]!]; // ∂(w²)/∂w
 *     return w.data[0]! ** 2;
 *   },
 * });
 * assert.equal(loss, 4);
 * assert.equal(opt.getMetrics()["l2_norm/grad/w"], 4);
 * ```
 */
export interface StepOptions<T> extends SyncStepOptions {
  /** Called (and awaited) before the update, like torch's closure; its result is returned. */
  closure?: () => T | Promise<T>;
}

/**
 * Options of {@linkcode DecoupledLionW.stepSync} (and of `step()`, which
 * also takes a closure).
 *
 * @example A synchronous step with metrics and clipping
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2]);
 * await using opt = new DecoupledLionW([w], { lr: 0.1 });
 * w.grad = [3, 4];
 * opt.stepSync({ metrics: true, maxGradNorm: 1 });
 * assert.equal(opt.lastStep.gradNorm, 5); // before clipping
 * assert.ok("cosine/update_grad/w" in opt.getMetrics());
 * ```
 */
export interface SyncStepOptions {
  /**
   * Compute the per-parameter metrics in the same pass as the update.
   *
   * @default {false}
   */
  metrics?: boolean;
  /**
   * This step's gradient clipping norm (see `DecoupledLionWOptions.maxGradNorm`);
   * `Infinity` turns the optimizer's off for this step.
   *
   * @default {the optimizer's maxGradNorm}
   */
  maxGradNorm?: number;
}

/**
 * What the last {@linkcode DecoupledLionW.step} did.
 *
 * @example After an applied step
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [1]);
 * await using opt = new DecoupledLionW([w]);
 * w.grad = [1];
 * await opt.step();
 * assert.deepEqual(opt.lastStep, {
 *   applied: true,
 *   nonFinite: [],
 *   metrics: false,
 *   gradNorm: null, // no clipping: the scan only looked for NaN and Infinity
 *   gradScale: 1,
 * });
 * ```
 */
export interface StepReport {
  /**
   * Whether the update was applied: `false` for a skipped step, a step in
   * which no parameter had a gradient, or before any step.
   */
  readonly applied: boolean;
  /** Parameters whose gradient held NaN or ±Infinity (empty under `"ignore"`). */
  readonly nonFinite: readonly string[];
  /** Whether metrics were computed. */
  readonly metrics: boolean;
  /**
   * The global L2 norm of the step's gradients before clipping (torch's
   * `clip_grad_norm_` return value, in float32; NaN or Infinity where a
   * gradient is), when the step clipped (`maxGradNorm` set); `null`
   * otherwise: the `nonFinite` scan alone tests for NaN and Infinity and
   * sums no squares (with metrics on, `l2_norm/grad/global` is the norm).
   */
  readonly gradNorm: number | null;
  /** The factor the gradients were multiplied by: the clipping coefficient, or 1. */
  readonly gradScale: number;
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
