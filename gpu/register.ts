/**
 * Registers the gpu.js runtime and its device runner with the engine
 * (`src/engine/edges.ts`): the entry points and the shard worker import
 * this module, so that the core never imports `gpu/`. gpu.js itself, and
 * the device runner, load only when the `gpujs` backend runs.
 *
 * @module
 */

import { registerEngineEdge } from "../src/engine/edges.ts";
import { adapterReport, resolveGpuMode } from "./gpujs_runtime.ts";

registerEngineEdge({
  gpu: {
    resolveGpuMode,
    adapterReport,
    openDeviceRunner: async (mode, scanKernel, memories) =>
      (await import("./device_runner.ts")).openDeviceRunner(mode, scanKernel, memories),
  },
});
