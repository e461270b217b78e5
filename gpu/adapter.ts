/**
 * WebGPU adapter probing: is there a GPU, and is it a real one? Software
 * adapters (Mesa's llvmpipe and lavapipe, SwiftShader, WARP) run WebGPU on
 * the CPU: fine for correctness, never faster than the wasm kernel.
 *
 * @module
 */

import type { GpuAdapterReport } from "../src/engine/backends.ts";

/** Descriptions of adapters that run on the CPU. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|warp/i;

/** The parts of a `GPUAdapter` this probe reads (typed here: Deno's lib types vary by version). */
interface AdapterLike {
  readonly info?: {
    readonly vendor?: string;
    readonly architecture?: string;
    readonly device?: string;
    readonly description?: string;
    readonly isFallbackAdapter?: boolean;
  };
  readonly isFallbackAdapter?: boolean;
}

/**
 * Asks for a WebGPU adapter and tells a real GPU from a software one, by
 * `adapter.info.isFallbackAdapter` (or the older `adapter.isFallbackAdapter`)
 * and by the names software adapters give themselves.
 *
 * @param gpu The WebGPU entry point; `navigator.gpu` by default.
 * @returns The report; `available: false` with the reason where there is no
 * WebGPU or no adapter.
 *
 * @example Report what this machine has
 * ```ts
 * import { probeGpuAdapter } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const report = await probeGpuAdapter();
 * assert.equal(typeof report.available, "boolean");
 * assert.ok(report.description.length > 0);
 * if (!report.available) assert.equal(report.fallback, false);
 * ```
 */
export async function probeGpuAdapter(
  gpu: { requestAdapter(): Promise<unknown> } | undefined = (globalThis.navigator as
    | { gpu?: { requestAdapter(): Promise<unknown> } }
    | undefined)?.gpu,
): Promise<GpuAdapterReport> {
  if (gpu === undefined) {
    return { available: false, fallback: false, description: "no WebGPU in this runtime" };
  }
  let adapter: AdapterLike | null;
  try {
    adapter = (await gpu.requestAdapter()) as AdapterLike | null;
  } catch (error) {
    return {
      available: false,
      fallback: false,
      description: `the adapter request failed: ${
        error instanceof Error ? error.message : String(error)
      }`,
    };
  }
  if (adapter === null || adapter === undefined) {
    return { available: false, fallback: false, description: "no WebGPU adapter was granted" };
  }
  const info = adapter.info ?? {};
  const description = [info.vendor, info.architecture, info.device, info.description]
    .filter((part) => part !== undefined && part !== "")
    .join(" / ") || "unnamed adapter";
  const fallback = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true ||
    SOFTWARE_ADAPTER.test(description);
  return { available: true, fallback, description };
}
