/**
 * `deno task bench:tfjs`: what the tfjs adapter costs on top of the
 * optimizer step. Per step, `applyGradients` copies every gradient out of
 * tfjs into the parameter store and assigns every new value back; this times
 * that against the inner `stepSync()` alone (gradients already in the
 * store), on tfjs's cpu and wasm backends, for the demo's model and for
 * larger ones, with tfjs's own Adam on the same variables for scale. On
 * tfjs's GPU backends the step runs on the device instead: those rows
 * (bench/_device_timing.ts) time `applyGradients` against Adam there, in
 * Deno on `webgpu` and in headless Chromium on `webgl` and `webgpu`.
 * Prints the tables and writes `bench/.build/tfjs_adapter.json`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { chromium } from "npm:playwright-core@1.57.0";
import { parseCommandLine, usageError } from "../scripts/cli.ts";
import { bundlePage, CHROMIUM, GPU_CHROMIUM_ARGS, pageReport } from "../scripts/browser_page.ts";
import { servePage } from "../demo/serve.ts";
import { probeGpuAdapter } from "@decoupled/lionw";
import { DecoupledLionWOptimizer } from "@decoupled/lionw/tfjs";
import { median, timeSteps, warmUp } from "./_timing.ts";
import { DEVICE_MODELS, type DeviceRow, measureOnDevice } from "./_device_timing.ts";
import type { DeviceBenchReport } from "./tfjs_device_page.ts";

/** Models to time: tensor shapes. */
const MODELS: Record<string, number[][]> = {
  "demo MLP (15,659)": [[27, 16], [48, 200], [200], [200, 27], [27]],
  "1M (1024×1024)": [[1024, 1024], [1024]],
  "16M (4096×4096)": [[4096, 4096], [4096]],
};

interface Row {
  tfjsBackend: string;
  model: string;
  parameters: number;
  applyGradientsMs: number;
  stepOnlyMs: number;
  copyMs: number;
  copyShare: number;
  /** tfjs's own Adam on the same variables and gradients, for scale. */
  adamMs: number;
}

/** Median ms of `fn` after a warm-up, over up to 200 calls or about 0.5 s (at least 3). */
async function time(fn: () => void): Promise<number> {
  await warmUp(fn, 1, 0);
  return median(await timeSteps(200, fn, 500));
}

async function measure(backend: string, model: string, shapes: number[][]): Promise<Row> {
  const prefix = `${backend}.${model.split(" ")[0]}`;
  const variables = shapes.map((shape, i) =>
    tf.variable(tf.randomNormal(shape, 0, 1, "float32", i), true, `${prefix}.v${i}`)
  );
  const grads: tf.NamedTensorMap = Object.fromEntries(
    variables.map((v, i) => [v.name, tf.randomNormal(v.shape, 0, 1, "float32", 100 + i)]),
  );
  const optimizer = new DecoupledLionWOptimizer({ lr: 1e-4, workers: 0, logger: null });
  optimizer.applyGradients(grads);
  const applyGradientsMs = await time(() => optimizer.applyGradients(grads));
  const inner = optimizer.optimizer;
  const stepOnlyMs = await time(() => inner.stepSync()); // the gradients stay in the store
  await optimizer.close();
  const adam = tf.train.adam(1e-3);
  const adamMs = await time(() =>
    adam.applyGradients(grads as Parameters<typeof adam.applyGradients>[0])
  );
  adam.dispose();
  tf.dispose([...variables, ...Object.values(grads)]);
  const parameters = shapes.reduce((total, s) => total + s.reduce((a, b) => a * b, 1), 0);
  const copyMs = applyGradientsMs - stepOnlyMs;
  return {
    tfjsBackend: backend,
    model,
    parameters,
    applyGradientsMs,
    stepOnlyMs,
    copyMs,
    copyShare: copyMs / applyGradientsMs,
    adamMs,
  };
}

/** Where the device rows run. */
const DEVICE_PLACES = ["all", "deno", "chromium", "none"] as const;

/** The Deno rows: tfjs-backend-webgpu on Deno's WebGPU, or why there are none. */
async function denoDeviceRows(models: [string, number[][]][]): Promise<DeviceRow[] | string> {
  const report = await probeGpuAdapter();
  if (!report.available) return "no WebGPU adapter in Deno here";
  if (!(await tf.setBackend("webgpu").catch(() => false))) return "tfjs could not start webgpu";
  const rows: DeviceRow[] = [];
  for (const [model, shapes] of models) {
    rows.push(await measureOnDevice("Deno webgpu", report.description, model, shapes));
  }
  return rows;
}

/** The Chromium rows: the bench page on webgl and webgpu, or why there are none. */
async function chromiumDeviceRows(modelCount: number): Promise<DeviceRow[] | string> {
  if (!(await Deno.stat(CHROMIUM).then(() => true, () => false))) {
    return `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  }
  const dir = new URL(".build/device_page", import.meta.url).pathname;
  const lock = new URL("../deno.dev.lock", import.meta.url).pathname;
  await bundlePage(new URL("tfjs_device_page.ts", import.meta.url), dir, lock);
  const server = servePage(dir, { port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...GPU_CHROMIUM_ARGS] });
  const rows: DeviceRow[] = [];
  try {
    for (const backend of ["webgl", "webgpu"]) {
      const { report } = await pageReport<DeviceBenchReport>(
        browser,
        `http://127.0.0.1:${server.addr.port}/?backend=${backend}&models=${modelCount}`,
        "deviceBench",
        600_000,
      );
      if (report.error !== null) throw new Error(`Chromium ${backend}: ${report.error}`);
      if (report.skipped !== null) console.log(`Chromium ${backend}: ${report.skipped}`);
      rows.push(...report.rows);
    }
  } finally {
    await browser.close();
    await server.shutdown();
  }
  return rows;
}

function printCopyRows(rows: readonly Row[]): void {
  console.log(
    "tfjs backend | model             | applyGradients | step alone | copies     | share | tfjs Adam",
  );
  for (const r of rows) {
    console.log(
      `${r.tfjsBackend.padEnd(12)} | ${r.model.padEnd(17)} | ${
        r.applyGradientsMs.toFixed(3).padStart(11)
      } ms | ${r.stepOnlyMs.toFixed(3).padStart(7)} ms | ${r.copyMs.toFixed(3).padStart(8)} ms | ${
        (100 * r.copyShare).toFixed(0).padStart(4)
      }% | ${r.adamMs.toFixed(3).padStart(9)} ms`,
    );
  }
}

function printDeviceRows(rows: readonly DeviceRow[]): void {
  console.log(
    "\nOn the device (ms per applyGradients; × = tfjs Adam ÷ LionW fused, higher is faster):",
  );
  console.log(
    "runtime         | model             | fused      | fused, ignore | tfjs ops   | tfjs Adam  |     × | adapter",
  );
  for (const r of rows) {
    const ms = (value: number) => `${value.toFixed(3).padStart(7)} ms`;
    console.log(
      `${r.runtime.padEnd(15)} | ${r.model.padEnd(17)} | ${ms(r.fusedMs)} | ${
        ms(r.fusedIgnoreMs).padStart(13)
      } | ${ms(r.opsMs)} | ${ms(r.adamMs)} | ${(r.adamMs / r.fusedMs).toFixed(2).padStart(5)} | ${
        r.software ? "software: " : ""
      }${r.adapter}`,
    );
  }
}

if (import.meta.main) {
  const usage =
    "deno task bench:tfjs [--quick] [--device all|deno|chromium|none]\n\nTimes the tfjs adapter's copies against the optimizer step on tfjs's cpu and wasm backends,\nand the adapter on the device against tfjs's Adam on webgpu (Deno) and webgl/webgpu (Chromium).\n  --quick   the demo model only\n  --device  where the device rows run (default all; a place that is missing is skipped, saying why)";
  const values = parseCommandLine("bench:tfjs", usage, {
    quick: { type: "boolean" },
    device: { type: "string", default: "all" },
  });
  const device = values.device as string;
  if (!(DEVICE_PLACES as readonly string[]).includes(device)) {
    usageError(
      "bench:tfjs",
      usage,
      `--device must be one of ${DEVICE_PLACES.join(", ")}: got ${device}`,
    );
  }
  tf.env().set("PROD", true);
  setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
  const rows: Row[] = [];
  const models = values.quick ? Object.entries(MODELS).slice(0, 1) : Object.entries(MODELS);
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend);
    await tf.ready();
    for (const [model, shapes] of models) rows.push(await measure(backend, model, shapes));
  }
  printCopyRows(rows);
  const deviceRows: DeviceRow[] = [];
  const deviceModels = Object.entries(DEVICE_MODELS).slice(0, models.length);
  for (
    const [place, rowsOf] of [
      ["deno", () => denoDeviceRows(deviceModels)],
      ["chromium", () => chromiumDeviceRows(deviceModels.length)],
    ] as const
  ) {
    if (device !== "all" && device !== place) continue;
    const result = await rowsOf();
    if (typeof result === "string") console.log(`device rows in ${place} skipped: ${result}`);
    else deviceRows.push(...result);
  }
  if (deviceRows.length > 0) printDeviceRows(deviceRows);
  await Deno.mkdir(new URL(".build/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL(".build/tfjs_adapter.json", import.meta.url),
    JSON.stringify({ tfjs: tf.version_core, rows, deviceRows }, null, 1),
  );
}
