/**
 * Loading gpu.js (only when the `gpujs` backend is used: nothing else
 * imports it) and choosing its mode.
 *
 * @module
 */

import { probeGpuAdapter } from "./adapter.ts";
import type {
  GpuAdapterReport,
  GpuJsMode,
  GpuModeOption,
  ResolvedGpuMode,
} from "../src/engine/backends.ts";
import type { GpuJs } from "./gpujs_kernels.ts";

let probe: Promise<GpuAdapterReport> | undefined;

/**
 * The WebGPU adapter of this thread, probed once.
 *
 * @returns The probe's report.
 */
export function adapterReport(): Promise<GpuAdapterReport> {
  probe ??= probeGpuAdapter();
  return probe;
}

/**
 * Resolves `"auto"`: `webgpu` on a real (hardware) adapter, else `webasm`
 * (a software adapter runs WGSL on the CPU, slower than gpu.js's own SIMD
 * WebAssembly). An explicit `webgpu` needs an adapter, software or not.
 *
 * @param requested The option.
 * @param probed What the adapter probe found (this thread's, by default).
 * @returns The mode.
 * @throws {RangeError} When `webgpu` is asked for and there is no adapter.
 */
export async function resolveGpuMode(
  requested: GpuModeOption,
  probed?: GpuAdapterReport,
): Promise<ResolvedGpuMode> {
  const adapter = probed ?? await adapterReport();
  if (requested === "webgpu" && !adapter.available) {
    throw new RangeError(
      `Cannot use gpu.js mode "webgpu" as ${adapter.description}: use gpuMode "webasm", "cpu" or "auto"`,
    );
  }
  if (requested !== "auto") return { mode: requested, reason: "asked for", adapter };
  if (adapter.available && !adapter.fallback) {
    return { mode: "webgpu", reason: `a GPU adapter: ${adapter.description}`, adapter };
  }
  const why = adapter.available
    ? `the only adapter is a software one (${adapter.description})`
    : adapter.description;
  return { mode: "webasm", reason: `no GPU: ${why}`, adapter };
}

/**
 * gpu.js, by its full npm specifier: it resolves from any importer (no
 * import map needed, as for a JSR user), and it is held in a variable so the
 * import is not statically analyzable. Deno fetches a literal dynamic import
 * with the module graph (gpu.js and its native `gl` dependency, for every
 * user); this one is fetched only when the gpujs backend first runs. `deno
 * publish` warns that it cannot analyze it: that is the point.
 */
const GPU_JS_SPECIFIER = "npm:gpu.js@2.24.1";

/** What this package uses of gpu.js's exports. */
interface GpuJsModule {
  GPU: new (settings: { mode: GpuJsMode }) => GpuJs;
  WebGPUContext: { acquire(): Promise<{ device: GPUDevice }>; destroy(): Promise<void> };
}

/**
 * Imports gpu.js (once; later calls share the module).
 *
 * @returns The module.
 */
export async function loadGpuJs(): Promise<GpuJsModule> {
  return (await import(GPU_JS_SPECIFIER)) as GpuJsModule;
}

/** gpu.js instances in webgpu mode open on this thread (they share its one device). */
let webgpuInstances = 0;

/**
 * A gpu.js instance in `mode`, importing gpu.js on first use. Close it with
 * {@linkcode closeGpuJs}.
 *
 * @param mode The mode.
 * @returns The instance.
 */
export async function openGpuJs(mode: GpuJsMode): Promise<GpuJs> {
  const { GPU } = await loadGpuJs();
  const gpu = new GPU({ mode });
  if (mode === "webgpu") webgpuInstances++;
  return gpu;
}

/**
 * Frees a gpu.js instance and, with the thread's last webgpu instance, the
 * WebGPU device. gpu.js keeps one device per thread past `gpu.destroy()`;
 * a thread that ends with it alive (a terminated shard worker above all)
 * crashed Deno 2.9.6 at exit in 1 of 15 runs on llvmpipe (heap corruption).
 *
 * @param gpu An instance from {@linkcode openGpuJs}.
 * @param mode Its mode.
 */
export async function closeGpuJs(gpu: GpuJs, mode: GpuJsMode): Promise<void> {
  await gpu.destroy();
  if (mode !== "webgpu" || --webgpuInstances > 0) return;
  const { WebGPUContext } = await loadGpuJs();
  await WebGPUContext.destroy();
}
