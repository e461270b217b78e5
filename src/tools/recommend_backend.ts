/**
 * {@linkcode recommendBackend}: whether the `gpujs` backend would be faster
 * than the CPU kernel here, measured.
 *
 * @module
 */

import { DecoupledLionW } from "../optimizer/decoupled_lionw.ts";
import { ParameterStore } from "../store/parameter_store.ts";
import { wasmKernelAvailable } from "../kernels/wasm_kernel.ts";
import type { BackendChoice, BackendName } from "../engine/backends.ts";
import { recommendFromCalibration } from "./backend_choice.ts";
import { gpuEdge } from "../engine/edges.ts";

/**
 * Options of {@linkcode recommendBackend}.
 *
 * @example Calibrate for a model of 10^8 parameters on 2 workers
 * ```ts
 * import type { RecommendBackendOptions } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const options: RecommendBackendOptions = { elements: 1e8, workers: 2 };
 * assert.equal(options.workers, 2);
 * ```
 */
export interface RecommendBackendOptions {
  /** The model's number of parameters (the calibration uses at most 2^24 of them). */
  elements: number;
  /**
   * Shard workers to calibrate with, as the optimizer's `workers` option.
   *
   * @default {"auto"}
   */
  workers?: number | "auto";
}

/**
 * Recommends a backend for a model of `elements` parameters: `gpujs` only on
 * a hardware WebGPU adapter (not a software one such as Mesa's llvmpipe),
 * and only when a calibration measured it faster than the CPU kernel (the
 * median of 5 steps after 2 warm-ups of each, on a scratch store of the
 * model's size, at most 2^24 elements, 192 MiB). Otherwise the CPU kernel
 * that `backend: "auto"` takes. The reason, the adapter and the timings come
 * with it.
 *
 * `backend: "auto"` never takes `gpujs` by itself: its state lives on the
 * device between steps (pull it with `pullState()`, announce host writes with
 * `markWritten()`). Ask for it by name where this recommends it and your code
 * follows those rules.
 *
 * @example Ask before choosing
 * ```ts
 * import { DecoupledLionW, ParameterStore, recommendBackend } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("w", [4096]);
 * const choice = await recommendBackend({ elements: w.size });
 * assert.ok(choice.reason.length > 0);
 * await using opt = new DecoupledLionW([w], { backend: choice.backend, logger: null });
 * assert.equal(opt.backend, choice.backend);
 * ```
 *
 * @param options The model's size and the worker count.
 * @returns The recommendation.
 * @throws {RangeError} When `elements` is not a positive integer.
 */
export async function recommendBackend(options: RecommendBackendOptions): Promise<BackendChoice> {
  const { elements, workers = "auto" } = options;
  if (!Number.isInteger(elements) || elements < 1) {
    throw new RangeError(
      `Cannot recommend a backend as 'elements' must be a positive integer: current value is ${elements}`,
    );
  }
  const cpu = wasmKernelAvailable() ? "wasm" : "js";
  try {
    return await recommendFromCalibration(
      cpu,
      await gpuEdge("recommend a backend").adapterReport(),
      elements,
      (backend, size) => measureStep(backend, size, workers),
    );
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { backend: cpu, reason: `the calibration failed (${message})` };
  }
}

/** The median of 5 timed steps (after 2 warm-ups) of `backend` on a scratch store. */
async function measureStep(
  backend: BackendName,
  elements: number,
  workers: number | "auto",
): Promise<number> {
  const w = new ParameterStore().add("calibration", [elements]);
  const opt = new DecoupledLionW([w], { backend, gpuMode: "webgpu", workers, logger: null });
  try {
    const grad = w.ensureGrad();
    for (let i = 0; i < elements; i++) grad[i] = i % 3 - 1;
    const times: number[] = [];
    for (let step = 0; step < 7; step++) {
      const start = performance.now();
      await opt.step();
      if (step >= 2) times.push(performance.now() - start);
    }
    return times.sort((a, b) => a - b)[2]!;
  } finally {
    await opt.close();
  }
}
