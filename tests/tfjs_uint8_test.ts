/**
 * 8-bit moments in the tfjs adapter: on the cpu backend (the host path)
 * `getWeights()` saves them as they are kept (int32 codes, float32 scales)
 * and `setWeights()` continues bit for bit; a float32 optimizer loads them
 * dequantized; bad codes are refused, naming the tensor; a tfjs-layers
 * model trains on the cpu and wasm backends, and a saved one goes on.
 */

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { DecoupledLionWOptimizer } from "../tfjs/mod.ts";
import { DYNAMIC_MAP } from "../src/store/dynamic_map.ts";
import { seededValues } from "./_util.ts";
import { assertSameWeights, memorySink } from "./_tfjs_models.ts";

tf.env().set("PROD", true);
await tf.setBackend("cpu");

const SIZE = 5000; // 8-bit: 19 blocks of 256, the last partial

function optimizer(momentumDtype: "uint8" | "float32" = "uint8") {
  return new DecoupledLionWOptimizer({
    workers: 0,
    logger: null,
    lr: 1e-2,
    weightDecay: 0.1,
    momentumDtype,
  });
}

async function train(opt: DecoupledLionWOptimizer, w: tf.Variable, steps: number[]) {
  for (const s of steps) {
    opt.applyGradients({ [w.name]: tf.tensor1d(seededValues(SIZE, 50 + s, 0.1)) });
  }
  await opt.pullState();
}

Deno.test("tfjs: 8-bit moments are saved as codes and scales, and a reload continues bit for bit", async (t) => {
  const variable = (name: string) => tf.variable(tf.tensor1d(seededValues(SIZE, 1)), true, name);
  const [w, v] = [variable("u8.w"), variable("u8.v")];
  const whole = optimizer();
  await train(whole, w, [0, 1, 2, 3]);
  const first = optimizer();
  await train(first, v, [0, 1]);
  const weights = await first.getWeights();
  await t.step("the weights: iter, then the codes (int32) and the scales", async () => {
    assert.deepEqual(weights.map(({ name, tensor }) => [name, tensor.dtype, tensor.shape]), [
      ["iter", "int32", []],
      ["u8.v/exp_avg_codes", "int32", [SIZE]],
      ["u8.v/exp_avg_absmax", "float32", [20]],
    ]);
    const codes = await weights[1]!.tensor.data();
    const absmax = await weights[2]!.tensor.data();
    const state = first.optimizer.stateDict().state["u8.v"]!;
    assert.deepEqual(Uint8Array.from(codes), state.quantized!.codes);
    assert.equal(Math.fround(DYNAMIC_MAP[codes[300]!]! * absmax[1]!), state.expAvg[300]);
  });
  await t.step("a new optimizer continues from them", async () => {
    const resumed = optimizer();
    await resumed.setWeights(weights);
    await train(resumed, v, [2, 3]);
    assert.deepEqual(await v.data(), await w.data());
    assert.deepEqual(
      resumed.optimizer.stateDict().state["u8.v"],
      whole.optimizer.stateDict().state["u8.w"],
    );
    await resumed.close();
  });
  await t.step("a float32 optimizer loads them dequantized", async () => {
    const float32 = optimizer("float32");
    const x = variable("u8.x");
    float32.applyGradients({ [x.name]: tf.zerosLike(x) });
    await float32.setWeights(await first.getWeights());
    await float32.pullState();
    assert.deepEqual(
      float32.optimizer.stateDict().state["u8.x"]!.expAvg,
      first.optimizer.stateDict().state["u8.v"]!.expAvg,
    );
    await float32.close();
    x.dispose();
  });
  await t.step("codes out of [0, 255], or without their scales, are refused", async () => {
    const [iter, codes, absmax] = weights;
    const bad = tf.tensor1d(
      Int32Array.from({ length: SIZE }, (_, i) => (i === 7 ? 256 : 0)),
      "int32",
    );
    await assert.rejects(
      optimizer().setWeights([iter!, { name: codes!.name, tensor: bad }, absmax!]),
      /"u8\.v\/exp_avg_codes"\[7\] must be a code in \[0, 255\]: current value is 256/,
    );
    await assert.rejects(
      optimizer().setWeights([iter!, codes!]),
      /needs u8\.v\/exp_avg_absmax of 20 values/,
    );
  });
  for (const opt of [whole, first]) await opt.close();
  for (const x of [w, v]) x.dispose();
});

for (const backend of ["cpu", "wasm"]) {
  Deno.test(`tfjs-layers on ${backend}: a model with 8-bit moments trains, predicts with its new weights, and a saved model goes on bit for bit`, async () => {
    if (backend === "wasm") {
      setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
    }
    await tf.setBackend(backend);
    // a 64×80 kernel (5,120 elements: 8-bit moments, a partial last block) and an 80-element bias
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({
          units: 80,
          inputShape: [64],
          activation: "tanh",
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
        }),
        tfl.layers.dense({
          units: 1,
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }),
        }),
      ],
    });
    const x = tf.tensor2d(Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i)), [64, 64]);
    const y = tf.tensor2d(Array.from({ length: 64 }, (_, i) => Math.cos(i / 3)), [64, 1]);
    const optimizer = new DecoupledLionWOptimizer({
      lr: 1e-2,
      momentumDtype: "uint8",
      workers: 0,
      logger: null,
    });
    model.compile({ optimizer, loss: "meanSquaredError" });
    const history = await model.fit(x, y, { epochs: 8, batchSize: 16, shuffle: false, verbose: 0 });
    const loss = history.history.loss as number[];
    assert.ok(loss.at(-1)! < loss[0]!, `loss ${loss[0]} → ${loss.at(-1)}`);
    // the inner optimizer keeps the first kernel's moments as codes
    assert.ok(
      optimizer.optimizer.stateDict()
        .state[(model.trainableWeights[0]!.read() as tf.Variable).name]!
        .quantized,
    );
    // the model's own forward pass sees the trained weights: the loss it evaluates is the last one's
    const evaluated = (model.evaluate(x, y) as tf.Scalar).dataSync()[0]!;
    assert.ok(evaluated < loss[0]!, `evaluated ${evaluated} against the first epoch's ${loss[0]}`);
    const sink = memorySink();
    await model.save(sink.handler, { includeOptimizer: true });
    const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(sink.artifacts));
    const restored = reloaded.optimizer as DecoupledLionWOptimizer;
    await model.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
    await reloaded.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
    assert.equal(restored.optimizer.momentumDtype, "uint8");
    assertSameWeights(reloaded, model);
    await optimizer.close();
    await restored.close();
    model.dispose();
    reloaded.dispose();
    tf.dispose([x, y]);
    await tf.setBackend("cpu");
  });
}
