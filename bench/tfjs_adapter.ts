/**
 * `deno task bench:tfjs`: what the tfjs adapter costs on top of the
 * optimizer step. Per step, `applyGradients` copies every gradient out of
 * tfjs into the parameter store and assigns every new value back; this times
 * that against the inner `stepSync()` alone (gradients already in the
 * store), on tfjs's cpu and wasm backends, for the demo's model and for
 * larger ones, with tfjs's own Adam on the same variables for scale.
 * Prints a table and writes `bench/.build/tfjs_adapter.json`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { parseCommandLine } from "../scripts/cli.ts";
import { DecoupledLionWOptimizer } from "@decoupled/lionw/tfjs";
import { median, timeSteps, warmUp } from "./_timing.ts";

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

if (import.meta.main) {
  const values = parseCommandLine(
    "bench:tfjs",
    "deno task bench:tfjs [--quick]\n\nTimes the tfjs adapter's copies against the optimizer step (--quick: the demo model only).",
    { quick: { type: "boolean" } },
  );
  tf.env().set("PROD", true);
  setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
  const rows: Row[] = [];
  const models = values.quick ? Object.entries(MODELS).slice(0, 1) : Object.entries(MODELS);
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend);
    await tf.ready();
    for (const [model, shapes] of models) rows.push(await measure(backend, model, shapes));
  }
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
  await Deno.mkdir(new URL(".build/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(
    new URL(".build/tfjs_adapter.json", import.meta.url),
    JSON.stringify({ tfjs: tf.version_core, rows }, null, 1),
  );
}
