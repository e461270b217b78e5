/**
 * What a shard runner is made from, and opening one: the same on the calling
 * thread (the inline engine) and in a shard worker. This is all a worker
 * needs of the engine, so `workers/` imports it and never the factory; the
 * gpu.js device runner is loaded only by a runner that runs gpu.js.
 *
 * @module
 */

import { type BackendName, BACKENDS, type GpuJsMode } from "./backends.ts";
import { jsKernel } from "../kernels/js_kernel.ts";
import type { LionKernel } from "../kernels/kernel.ts";
import { createWasmKernel, wasmKernelAvailable } from "../kernels/wasm_kernel.ts";
import { inPlaceRunner, type ShardRunner } from "./shard_runner.ts";

/** What a shard runner is made from: the same on the calling thread and in a worker. */
export interface RunnerSpec {
  /** The backend. */
  readonly backend: BackendName;
  /** The wasm kernel's fma mode. */
  readonly fma: "auto" | "exact";
  /** The gpu.js mode, for a backend that runs gpu.js. */
  readonly gpuMode: GpuJsMode | undefined;
}

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

/**
 * Opens the runner of `spec` over the store's memories: in place over the
 * host kernel, or on a gpu.js device for a backend that keeps state there.
 *
 * @param spec Backend, fma mode, gpu.js mode.
 * @param memories The store's memories, by arena.
 * @returns The runner.
 */
export async function openShardRunner(
  spec: RunnerSpec,
  memories: readonly WebAssembly.Memory[],
): Promise<ShardRunner> {
  const kernel = hostKernel(spec.backend, spec.fma);
  if (BACKENDS[spec.backend].runner === "in-place") return inPlaceRunner(kernel, memories);
  const { openDeviceRunner } = await import("../../gpu/device_runner.ts");
  return openDeviceRunner(spec.gpuMode ?? "cpu", kernel, memories);
}
