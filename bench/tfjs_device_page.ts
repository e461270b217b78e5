/// <reference lib="dom" />
/**
 * The bench page: times the tfjs adapter in a browser on the backend named
 * by `?backend=` (webgl or webgpu), with bench/_device_timing.ts, and leaves
 * the rows in `globalThis.deviceBench` for bench/tfjs_adapter.ts to read.
 *
 * @module
 */

import "@tensorflow/tfjs-backend-webgl";
import "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import { DEVICE_MODELS, type DeviceRow, measureOnDevice } from "./_device_timing.ts";

/** What the page reports. */
export interface DeviceBenchReport {
  readonly rows: DeviceRow[];
  readonly skipped: string | null;
  readonly error: string | null;
  readonly done: boolean;
}

const query = new URLSearchParams(location.search);
const backend = query.get("backend") ?? "webgl";
const models = Object.entries(DEVICE_MODELS).slice(0, Number(query.get("models") ?? 3));
const report: DeviceBenchReport = { rows: [], skipped: null, error: null, done: false };
(globalThis as unknown as { deviceBench: DeviceBenchReport }).deviceBench = report;

/** The renderer (WebGL) or adapter (WebGPU) as it names itself. */
async function adapterName(): Promise<string> {
  if (backend === "webgpu") {
    const adapter = await navigator.gpu?.requestAdapter();
    const info = adapter?.info;
    return [info?.vendor, info?.architecture, info?.device, info?.description]
      .filter((part) => part).join(" ") || "unknown adapter";
  }
  const gl = document.createElement("canvas").getContext("webgl2");
  const debug = gl?.getExtension("WEBGL_debug_renderer_info");
  return String(gl?.getParameter(debug?.UNMASKED_RENDERER_WEBGL ?? 0x1F01) ?? "unknown renderer");
}

tf.env().set("PROD", true);
try {
  if (!(await tf.setBackend(backend).catch(() => false))) {
    Object.assign(report, { skipped: `tfjs could not start its ${backend} backend here` });
  } else {
    const adapter = await adapterName();
    for (const [model, shapes] of models) {
      report.rows.push(await measureOnDevice(`Chromium ${backend}`, adapter, model, shapes));
    }
  }
} catch (error) {
  Object.assign(report, { error: String((error as Error)?.stack ?? error) });
}
Object.assign(report, { done: true });
