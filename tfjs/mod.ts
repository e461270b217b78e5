/**
 * DecoupledLionW as a TensorFlow.js optimizer: `model.compile({ optimizer:
 * lionw(...) })`, `optimizer.minimize(f)`, save and load with
 * `includeOptimizer`. A separate entry point, so that the core never
 * depends on tfjs; it uses `npm:@tensorflow/tfjs-core@4.22.0`, the
 * instance tfjs-layers 4.22 uses too.
 *
 * @example Train a tfjs-layers model
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { layers, sequential } from "@tensorflow/tfjs-layers";
 * import { lionw } from "@decoupled/lionw/tfjs";
 * import assert from "node:assert/strict";
 *
 * tf.env().set("PROD", true); // tfjs takes Deno for Node: no "use tfjs-node" banner
 * await tf.setBackend("cpu");
 * const model = sequential({ layers: [layers.dense({ units: 1, inputShape: [2] })] });
 * const optimizer = lionw({ lr: 0.01, weightDecay: 0 });
 * model.compile({ optimizer, loss: "meanSquaredError" });
 * const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 8]]);
 * const y = tf.tensor2d([[3], [7], [11], [15]]);
 * const history = await model.fit(x, y, { epochs: 20, batchSize: 4, verbose: 0 });
 * const loss = history.history.loss as number[];
 * assert.ok(loss.at(-1)! < loss[0]!);
 * assert.equal(optimizer.iterations, 20);
 * await optimizer.close();
 * ```
 *
 * @module
 */

// the engine's worker pool, registered with the core as the root entry point does (the adapter
// refuses gpujs, so it needs no gpu.js runtime)
import "../workers/register.ts";

export { DecoupledLionWOptimizer, lionw } from "./decoupled_lionw_optimizer.ts";
export { EXP_AVG_SUFFIX } from "./optimizer_weights.ts";
export type { NamedTensor } from "./optimizer_weights.ts";
export type { DecoupledLionWOptimizerOptions, DeviceUpdate } from "./optimizer_options.ts";
export type { SavedGroup, SavedGroups } from "./_saved_groups.ts";
export { threadMayBlock } from "./thread_may_block.ts";
