/**
 * The public types of {@linkcode DecoupledLionW}'s API that are not a class:
 * the options it takes and the reports it gives back (what a step did). The
 * backend names and the backend choice are in engine/backends.ts, the
 * non-finite policies in step/step_decision.ts.
 *
 * @module
 */

import type { GroupHyperparameters } from "./hyperparameters.ts";
import type { Collective } from "../distributed/collective.ts";
import type { Exchange } from "../distributed/exchange.ts";
import type { Logger } from "../_internal/logger.ts";
import type { MomentumDtype } from "../store/moment_dtype.ts";
import type { BackendName, GpuModeOption } from "../engine/backends.ts";
import type { NonFinitePolicy } from "../step/step_decision.ts";

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
   * With a `collective`, what the ranks exchange each step: `"float32"`
   * gradients (the exact average), `"bfloat16"` gradients (half the bytes;
   * every rank still steps the same average, bit for bit), or
   * `"sign-vote"`, Distributed Lion's majority vote: each rank keeps its
   * own momentum and sends its update's sign (one bit an element), and
   * every rank applies the voted sign (a tie gives 0) with the decoupled
   * decay, so the parameters stay bit-identical across the ranks.
   * `"sign-vote"` refuses `maxGradNorm`, `shardState`, cautious groups,
   * `momentumDtype: "bfloat16"` and the `gpujs` backend. See
   * {@linkcode Exchange}.
   *
   * @default {"float32"}
   */
  exchange?: Exchange;
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
  "exchange",
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
