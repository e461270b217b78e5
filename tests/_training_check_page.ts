/**
 * The page that runs the support matrix's check (tests/_training_check.mjs)
 * in a browser, on the tfjs backend named by `?backend=` (cpu, wasm, webgl or
 * webgpu), on the page's main thread; its row goes to
 * `globalThis.trainingCheck` for tests/tfjs_support_matrix_test.ts to read.
 * The test serves tfjs-backend-wasm's `.wasm` files beside the page.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-webgl";
import "@tensorflow/tfjs-backend-webgpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { lionw } from "../tfjs/mod.ts";
import { trainingCheck } from "./_training_check.mjs";

/** What the page reports. */
export interface TrainingCheckReport {
  /** The check's row, or why it did not run. */
  row: Record<string, unknown> | null;
  error: string | null;
  done: boolean;
}

const report: TrainingCheckReport = { row: null, error: null, done: false };
(globalThis as unknown as { trainingCheck: TrainingCheckReport }).trainingCheck = report;

const backend = new URLSearchParams(location.search).get("backend") ?? "cpu";
tf.env().set("PROD", true);
setWasmPaths(new URL("./", location.href).href);
try {
  if (!(await tf.setBackend(backend).catch(() => false))) {
    throw new Error(`tfjs could not start its ${backend} backend in this browser`);
  }
  report.row = await trainingCheck({ tf, tfl, lionw }, {
    runtime: "Chromium",
    exact: backend === "cpu" || backend === "wasm",
  });
} catch (error) {
  report.error = String((error as Error)?.stack ?? error);
}
report.done = true;
