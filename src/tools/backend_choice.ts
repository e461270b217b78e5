/**
 * The rule behind `recommendBackend()`: `gpujs` only on a hardware GPU adapter, and only
 * when a short calibration measured it faster than the CPU kernel for the
 * model's size; the CPU kernel otherwise. (`backend: "auto"` never takes
 * `gpujs`: its state lives on the device, with rules of its own.)
 *
 * @module
 */

import type { GpuAdapterReport } from "../engine/backends.ts";
import type { BackendChoice, BackendName } from "../engine/backends.ts";

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
  measure: (backend: BackendName, elements: number) => Promise<number>,
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
