/**
 * 8-bit moments in the tfjs adapter: on the cpu backend (the host path)
 * `getWeights()` saves them as they are kept (int32 codes, float32 scales)
 * and `setWeights()` continues bit for bit; a float32 optimizer loads them
 * dequantized; bad codes are refused, naming the tensor.
 */

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { DecoupledLionWOptimizer } from "../tfjs/mod.ts";
import { DYNAMIC_MAP } from "../src/store/dynamic_map.ts";
import { seededValues } from "./_util.ts";

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
