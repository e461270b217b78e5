import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import "@tensorflow/tfjs-layers"; // the ops' gradients
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { lionw } from "../tfjs/mod.ts";

// the adapter reads gradients from the wasm heap and hands values back as views: check the numbers
tf.env().set("PROD", true);
setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
await tf.setBackend("wasm");

Deno.test("on tfjs's wasm backend the adapter matches the plain API bit for bit, on workers too", async () => {
  for (const workers of [0, 2]) {
    const w = tf.variable(tf.randomNormal([300, 7], 0, 1, "float32", 5), true, `wasm${workers}.w`);
    const start = Float32Array.from(w.dataSync());
    const x = tf.randomNormal([16, 300], 0, 1, "float32", 6);
    const optimizer = lionw({ lr: 1e-2, weightDecay: 1e-4, workers });
    const grads: Float32Array[] = [];
    for (let i = 0; i < 5; i++) {
      const { value, grads: g } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(x, w))), [w]);
      grads.push(Float32Array.from(g[w.name]!.dataSync()));
      optimizer.applyGradients(g);
      tf.dispose([value, ...Object.values(g)]);
    }
    const store = new ParameterStore();
    const p = store.add("w", [300, 7], start);
    await using plain = new DecoupledLionW([p], { lr: 1e-2, weightDecay: 1e-4, workers: 0 });
    for (const g of grads) {
      p.grad = g;
      await plain.step();
    }
    assert.deepEqual(Float32Array.from(w.dataSync()), p.data.slice());
    // a variable written from outside is read back from the heap
    w.assign(tf.fill([300, 7], 0.5));
    optimizer.applyGradients({ [w.name]: tf.ones([300, 7]) });
    assert.equal(w.dataSync()[0], optimizer.store!.parameters[0]!.data[0]);
    assert.ok(Math.abs(w.dataSync()[0]! - 0.5) < 0.011);
    await optimizer.close();
    tf.dispose([w, x]);
  }
});
