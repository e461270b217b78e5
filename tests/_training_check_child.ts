/**
 * The support matrix's check in Deno, on the tfjs backend named by the first
 * argument (cpu, wasm or webgpu), in a process of its own (tfjs's backend is
 * global); prints the row as JSON. Run by tests/tfjs_support_matrix_test.ts.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-backend-webgpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { lionw } from "../tfjs/mod.ts";
import { trainingCheck } from "./_training_check.mjs";

const backend = Deno.args[0] ?? "cpu";
tf.env().set("PROD", true);
setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
if (!(await tf.setBackend(backend).catch(() => false))) {
  console.log(JSON.stringify({ runtime: "Deno", backend, skipped: "tfjs could not start it" }));
} else {
  const row = await trainingCheck({ tf, tfl, lionw }, {
    runtime: "Deno",
    exact: backend === "cpu" || backend === "wasm",
  });
  console.log(JSON.stringify(row));
}
