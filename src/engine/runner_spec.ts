/**
 * What a shard runner is made from, and opening one: the same on the calling
 * thread (the inline engine) and in a shard worker. This is all a worker
 * needs of the engine, so `workers/` imports it and never the factory; the
 * gpu.js device runner is loaded only by a runner that runs gpu.js.
 *
 * @module
 */

import { type BackendName, BACKENDS, type GpuJsMode } from "./backends.ts";
import type { RunnerSpec } from "./engine.ts";
import { jsKernel } from "../kernels/js_kernel.ts";
import type { LionKernel } from "../kernels/kernel.ts";
import { createWasmKernel, wasmKernelAvailable } from "../kernels/wasm_kernel.ts";
import { inPlaceRunner, type ShardRunner } from "./shard_runner.ts";

export type { RunnerSpec } from "./engine.ts";

/**
 * The CPU kernel of a backend: `js`, or `wasm` where WebAssembly SIMD runs
 * (a device backend scans gradients on the host with it).
 *
 * @param backend The backend.
 * @param fma The wasm kernel's fma mode.
 * @returns The kernel.
 */
export function hostKernel(backend: BackendName, fma: "auto" | "exact"): LionKernel {
  return backend === "js" || !wasmKernelAvailable() ? jsKernel : createWasmKernel(fma);
}

/** Opens a runner that keeps a shard's state on a gpu.js device (`gpu/device_runner.ts`). */
export type DeviceRunnerOpener = (
  mode: GpuJsMode,
  scanKernel: LionKernel,
  memories: readonly WebAssembly.Memory[],
) => Promise<ShardRunner>;

/**
 * Opens the runner of `spec` over the store's memories: in place over the
 * host kernel, or on a gpu.js device for a backend that keeps state there.
 *
 * @param spec Backend, fma mode, gpu.js mode.
 * @param memories The store's memories, by arena.
 * @param openDevice How a device runner opens, where the backend's runner is one (given by the
 * caller: the engine takes the registered gpu edge's, the shard worker imports its own).
 * @returns The runner.
 */
export async function openShardRunner(
  spec: RunnerSpec,
  memories: readonly WebAssembly.Memory[],
  openDevice?: DeviceRunnerOpener,
): Promise<ShardRunner> {
  const kernel = hostKernel(spec.backend, spec.fma);
  if (BACKENDS[spec.backend].runner === "in-place") return inPlaceRunner(kernel, memories);
  if (openDevice === undefined) {
    throw new Error(`Cannot open a ${spec.backend} shard runner as no device runner was given`);
  }
  return await openDevice(spec.gpuMode ?? "cpu", kernel, memories);
}
