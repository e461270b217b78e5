/**
 * Times the tfjs adapter on a GPU backend (`webgl`, `webgpu`), for Deno and
 * for the bench page in Chromium alike (no Deno API here). A step on a GPU
 * backend returns once its programs are queued, so each timing runs a burst
 * of steps and then waits for the device to finish them (an asynchronous
 * read of one element of the last value written): the time per step is
 * the burst's time over its steps. LionW with the fused programs, LionW as
 * tfjs ops, and tfjs's own Adam run on the same variables and gradients.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { DecoupledLionWOptimizer } from "../tfjs/mod.ts";

/** One model on one GPU backend. */
export interface DeviceRow {
  /** Where: "Deno webgpu", "Chromium webgl", … */
  readonly runtime: string;
  /** The adapter (renderer) as it names itself. */
  readonly adapter: string;
  /** Whether that is a software adapter (timings say nothing of a GPU). */
  readonly software: boolean;
  readonly model: string;
  readonly parameters: number;
  /** ms per `applyGradients`, fused programs, with the default verdict (`nonFinite: "error"`). */
  readonly fusedMs: number;
  /** The same with `nonFinite: "ignore"`: the update alone. */
  readonly fusedIgnoreMs: number;
  /** ms per `applyGradients`, tfjs ops, default verdict. */
  readonly opsMs: number;
  /** ms per tfjs Adam `applyGradients` on the same variables. */
  readonly adamMs: number;
}

/** Models to time: tensor shapes (the demo's MLP, then 1M and 16M parameters). */
export const DEVICE_MODELS: Readonly<Record<string, number[][]>> = {
  "demo MLP (15,659)": [[27, 16], [48, 200], [200], [200, 27], [27]],
  "1M (1024×1024)": [[1024, 1024], [1024]],
  "16M (4096×4096)": [[4096, 4096], [4096]],
};

/** Software adapters by the names they give themselves. */
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|basic render|warp/i;

/**
 * Whether `adapter` (a renderer or adapter description) is a software one.
 *
 * @param adapter The description.
 * @returns Whether it names a software adapter.
 */
export function isSoftwareAdapter(adapter: string): boolean {
  return SOFTWARE.test(adapter);
}

/**
 * ms per step of `step` on the device: bursts of steps, each ended by a
 * read of one element of `probe()` (which the steps wrote), until about
 * `budgetMs` is spent; the fastest burst's time per step.
 */
async function timeOnDevice(
  step: () => void,
  probe: () => tf.Tensor,
  budgetMs: number,
): Promise<number> {
  const settle = async () => {
    const one = tf.slice(tf.reshape(probe(), [-1]), 0, 1);
    await one.data();
    one.dispose();
  };
  step(); // compiles the programs
  await settle();
  let best = Infinity;
  let spent = 0;
  let burst = 1;
  for (let round = 0; round < 3 || (spent < budgetMs && round < 12); round++) {
    const t0 = performance.now();
    for (let i = 0; i < burst; i++) step();
    await settle();
    const ms = performance.now() - t0;
    best = Math.min(best, ms / burst);
    spent += ms;
    if (ms < 50) burst *= 2; // small models: longer bursts, so one read does not dominate
  }
  return best;
}

/**
 * Times one model on the current tfjs backend.
 *
 * @param runtime Where this runs, for the row.
 * @param adapter The adapter's description, for the row.
 * @param model The model's name.
 * @param shapes Its tensors' shapes.
 * @param budgetMs About how long each of the three timings may take.
 * @returns The row.
 */
export async function measureOnDevice(
  runtime: string,
  adapter: string,
  model: string,
  shapes: readonly number[][],
  budgetMs = 1000,
): Promise<DeviceRow> {
  const variables = shapes.map((shape, i) =>
    tf.variable(tf.randomNormal(shape, 0, 1, "float32", i), true)
  );
  const grads: tf.NamedTensorMap = Object.fromEntries(
    variables.map((v, i) => [v.name, tf.randomNormal(v.shape, 0, 1, "float32", 100 + i)]),
  );
  const last = () => variables.at(-1)!;
  const lionw = async (deviceUpdate: "fused" | "ops", nonFinite: "error" | "ignore") => {
    const optimizer = new DecoupledLionWOptimizer({
      lr: 1e-4,
      weightDecay: 0.01,
      nonFinite,
      deviceUpdate,
      logger: null,
    });
    const ms = await timeOnDevice(() => optimizer.applyGradients(grads), last, budgetMs);
    await optimizer.close();
    return ms;
  };
  const fusedMs = await lionw("fused", "error");
  const fusedIgnoreMs = await lionw("fused", "ignore");
  const opsMs = await lionw("ops", "error");
  const adam = tf.train.adam(1e-3);
  const adamMs = await timeOnDevice(
    () => adam.applyGradients(grads as Parameters<typeof adam.applyGradients>[0]),
    last,
    budgetMs,
  );
  adam.dispose();
  tf.dispose([...variables, ...Object.values(grads)]);
  const parameters = shapes.reduce((total, s) => total + s.reduce((a, b) => a * b, 1), 0);
  return {
    runtime,
    adapter,
    software: isSoftwareAdapter(adapter),
    model,
    parameters,
    fusedMs,
    fusedIgnoreMs,
    opsMs,
    adamMs,
  };
}
