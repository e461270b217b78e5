/**
 * The backend choice and its reason, and the rule behind
 * `recommendBackend()`: `gpujs` only on a hardware GPU adapter, and only
 * when a short calibration measured it faster than the CPU kernel for the
 * model's size; the CPU kernel otherwise. (`backend: "auto"` never takes
 * `gpujs`: its state lives on the device, with rules of its own.)
 *
 * @module
 */

import type { GpuAdapterReport } from "./adapter.ts";
import type { GpuJsMode } from "./gpujs_kernels.ts";

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
  /** Median step of the CPU backend (`wasm`, or `js` without relaxed SIMD), ms. */
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
  readonly backend: "js" | "wasm" | "gpujs";
  /** Why it was chosen. */
  readonly reason: string;
  /** The gpu.js mode, under `gpujs` (once started). */
  readonly gpuMode?: GpuJsMode;
  /** The WebGPU adapter, where one was probed. */
  readonly adapter?: string;
  /** The measurements behind a recommendation, where there were any. */
  readonly calibration?: Calibration;
}

/** Elements of the largest calibration store (192 MiB of scratch memory). */
export const CALIBRATION_ELEMENTS = 2 ** 24;

/**
 * Recommends a backend from an adapter probe and, on a hardware adapter, a
 * calibration.
 *
 * @param cpu The CPU backend available here.
 * @param adapter What the WebGPU probe found.
 * @param elements The store's size.
 * @param measure Median step in ms of a backend on a scratch store of `elements` elements.
 * @returns The choice.
 */
export async function recommendFromCalibration(
  cpu: "js" | "wasm",
  adapter: GpuAdapterReport,
  elements: number,
  measure: (backend: "js" | "wasm" | "gpujs", elements: number) => Promise<number>,
): Promise<BackendChoice> {
  if (!adapter.available) {
    return { backend: cpu, reason: `no GPU (${adapter.description})` };
  }
  const described = { adapter: adapter.description };
  if (adapter.fallback) {
    return {
      backend: cpu,
      reason: `the WebGPU adapter is a software one, slower than the CPU kernel`,
      ...described,
    };
  }
  const size = Math.max(1, Math.min(elements, CALIBRATION_ELEMENTS));
  let gpujsMs: number;
  try {
    gpujsMs = await measure("gpujs", size);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { backend: cpu, reason: `gpujs failed to run here (${message})`, ...described };
  }
  const cpuMs = await measure(cpu, size);
  const calibration = { elements: size, cpuMs, gpujsMs };
  const timing = `${gpujsMs.toFixed(2)} ms vs ${cpuMs.toFixed(2)} ms a step at ${size} elements`;
  return gpujsMs < cpuMs
    ? {
      backend: "gpujs",
      gpuMode: "webgpu",
      reason: `gpujs measured faster than ${cpu} (${timing})`,
      ...described,
      calibration,
    }
    : {
      backend: cpu,
      reason: `${cpu} measured faster than gpujs (${timing})`,
      ...described,
      calibration,
    };
}
