import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { DecoupledLionW, LocalCollective, ParameterStore } from "../mod.ts";
import {
  DecoupledLionWOptimizer,
  type DecoupledLionWOptimizerOptions,
  lionw,
  type NamedTensor,
} from "../tfjs/mod.ts";
import { recordingLogger } from "./_util.ts";
import { assertSameWeights, memorySink } from "./_tfjs_models.ts";

tf.env().set("PROD", true); // no "use tfjs-node" advice in the test log
await tf.setBackend("cpu");

/** The adapter, recording every gradient it is given (copies, in order). */
class RecordingOptimizer extends DecoupledLionWOptimizer {
  readonly steps: Map<string, Float32Array>[] = [];
  override applyGradients(gradients: tf.NamedTensorMap | NamedTensor[]): void {
    const named = Array.isArray(gradients)
      ? gradients.map(({ name, tensor }) => [name, tensor] as const)
      : Object.entries(gradients);
    this.steps.push(new Map(named.map(([name, t]) => [name, Float32Array.from(t.dataSync())])));
    super.applyGradients(gradients);
  }
}

/** Replays recorded gradients through the plain API from the same start; returns the values. */
async function replay(
  start: Map<string, { shape: number[]; values: Float32Array }>,
  steps: Map<string, Float32Array>[],
  options: DecoupledLionWOptimizerOptions,
): Promise<Map<string, Float32Array>> {
  const store = new ParameterStore();
  const params = [...start].map(([name, { shape, values }]) => store.add(name, shape, values));
  const { groups: _, metrics: __, ...plain } = options;
  await using opt = new DecoupledLionW(params, { ...plain, workers: 0 });
  for (const step of steps) {
    opt.zeroGrad();
    for (const p of params) {
      const grad = step.get(p.name);
      if (grad !== undefined) p.grad = grad;
    }
    await opt.step();
  }
  return new Map(params.map((p) => [p.name, p.data.slice()]));
}

function snapshot(variables: readonly tf.Variable[]) {
  return new Map(
    variables.map((
      v,
    ) => [v.name, { shape: [...v.shape], values: Float32Array.from(v.dataSync()) }]),
  );
}

Deno.test("minimize() matches the plain API bit for bit, inline and on 2 workers, and the loss falls", async () => {
  for (const workers of [0, 2]) {
    const w = tf.variable(tf.randomNormal([64, 8], 0, 1, "float32", 1), true, `min${workers}.w`);
    const b = tf.variable(tf.zeros([8]), true, `min${workers}.b`);
    const x = tf.randomNormal([32, 64], 0, 1, "float32", 2);
    const target = tf.randomNormal([32, 8], 0, 1, "float32", 3);
    const start = snapshot([w, b]);
    const options = {
      lr: 1e-2,
      weightDecay: 1e-4,
      betas: [0.9, 0.99] as [number, number],
      workers,
    };
    const optimizer = new RecordingOptimizer(options);
    const loss = () => tf.losses.meanSquaredError(target, tf.add(tf.matMul(x, w), b)) as tf.Scalar;
    const losses: number[] = [];
    for (let i = 0; i < 40; i++) losses.push(optimizer.minimize(loss, true)!.dataSync()[0]!);
    assert.equal(optimizer.optimizer.workers, workers);
    assert.ok(losses.at(-1)! < losses[0]! * 0.7, `loss ${losses[0]} → ${losses.at(-1)}`);
    const expected = await replay(start, optimizer.steps, options);
    assert.deepEqual(Float32Array.from(w.dataSync()), expected.get(w.name));
    assert.deepEqual(Float32Array.from(b.dataSync()), expected.get(b.name));
    assert.equal(optimizer.iterations, 40);
    await optimizer.close();
    tf.dispose([w, b, x, target]);
  }
});

function denseModel(seed: number) {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: 16,
        inputShape: [4],
        activation: "tanh",
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.dense({
        units: 1,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }),
      }),
    ],
  });
}

const X = tf.tensor2d(Array.from({ length: 64 * 4 }, (_, i) => Math.sin(i)), [64, 4]);
const Y = tf.tensor2d(Array.from({ length: 64 }, (_, i) => Math.cos(i / 3)), [64, 1]);

Deno.test("model.compile() + model.fit() with tfjs-layers match the plain API bit for bit", async () => {
  const model = denseModel(7);
  const start = snapshot(model.trainableWeights.map((w) => w.read() as tf.Variable));
  const options = { lr: 3e-3, weightDecay: 1e-4, workers: 1 };
  const optimizer = new RecordingOptimizer(options);
  model.compile({ optimizer, loss: "meanSquaredError" });
  const history = await model.fit(X, Y, { epochs: 10, batchSize: 16, shuffle: false, verbose: 0 });
  const loss = history.history.loss as number[];
  assert.ok(loss.at(-1)! < loss[0]!, `loss ${loss[0]} → ${loss.at(-1)}`);
  assert.equal(optimizer.iterations, 40);
  const expected = await replay(start, optimizer.steps, options);
  for (const w of model.trainableWeights) {
    const variable = w.read() as tf.Variable;
    assert.deepEqual(Float32Array.from(variable.dataSync()), expected.get(variable.name), w.name);
  }
  await optimizer.close();
  model.dispose();
});

Deno.test("model.save(..., { includeOptimizer: true }) and a reload go on exactly where training was", async () => {
  const model = denseModel(11);
  const optimizer = lionw({ lr: 3e-3, weightDecay: 1e-4, betas: [0.95, 0.98], workers: 0 });
  model.compile({ optimizer, loss: "meanSquaredError" });
  await model.fit(X, Y, { epochs: 3, batchSize: 16, shuffle: false, verbose: 0 });
  const sink = memorySink();
  await model.save(sink.handler, { includeOptimizer: true });
  assert.deepEqual(sink.artifacts.trainingConfig!.optimizer_config, {
    class_name: "DecoupledLionW",
    config: {
      lr: 3e-3,
      betas: [0.95, 0.98],
      weightDecay: 1e-4,
      workers: 0,
      metrics: false,
      savedGroups: {
        variables: 4,
        groups: [{
          params: [0, 1, 2, 3],
          lr: 3e-3,
          initialLr: 3e-3,
          betas: [0.95, 0.98],
          weightDecay: 1e-4,
          maximize: false,
          cautious: false,
        }],
      },
    },
  });

  const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(sink.artifacts));
  const restored = reloaded.optimizer as DecoupledLionWOptimizer;
  assert.ok(restored instanceof DecoupledLionWOptimizer);
  assert.equal(restored.iterations, 12);
  // both go on for 2 epochs: same weights, bit for bit
  await model.fit(X, Y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  await reloaded.fit(X, Y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  assertSameWeights(reloaded, model);
  assert.equal(restored.optimizer.iterations, 20);
  await optimizer.close();
  await restored.close();
  model.dispose();
  reloaded.dispose();
});

Deno.test("getWeights() is iter, then <variable>/exp_avg; setWeights() copies them", async () => {
  const w = tf.variable(tf.tensor1d([1, 2, 3]), true, "weights.w");
  const optimizer = lionw({ lr: 0.1, workers: 0 });
  optimizer.applyGradients({ "weights.w": tf.tensor1d([1, -1, 2]) });
  const weights = await optimizer.getWeights();
  assert.deepEqual(weights.map((t) => t.name), ["iter", "weights.w/exp_avg"]);
  assert.equal(weights[0]!.tensor.dataSync()[0], 1);
  const expAvg = [...weights[1]!.tensor.dataSync()];
  assert.deepEqual(expAvg, [...optimizer.optimizer.state(optimizer.store!.parameters[0]!)!.expAvg]);

  // another optimizer, not yet built, takes them at its first step
  const other = lionw({ lr: 0.1, workers: 0 });
  const given = [{ name: "iter", tensor: tf.scalar(1, "int32") }, {
    name: "weights.w/exp_avg",
    tensor: tf.tensor1d(expAvg),
  }];
  await other.setWeights(given);
  tf.dispose(given.map((g) => g.tensor)); // copied: disposing the source changes nothing
  assert.equal(other.iterations, 1);
  await other.prepare([w]);
  assert.deepEqual([...other.optimizer.stateDict().state["weights.w"]!.expAvg], expAvg);
  assert.equal(other.optimizer.iterations, 1);

  await assert.rejects(
    other.setWeights([{ name: "iter", tensor: tf.scalar(1) }, {
      name: "w/m",
      tensor: tf.scalar(1),
    }]),
    /"w\/m" is not named <variable>\/exp_avg/,
  );
  await assert.rejects(
    other.setWeights([{ name: "step", tensor: tf.scalar(1) }]),
    /the first must be "iter": current value is "step"/,
  );
  await optimizer.close();
  await other.close();
  tf.dispose([...weights.map((t) => t.tensor), w]);
});

Deno.test("bad gradients and new variables are refused with nothing changed", async () => {
  const w = tf.variable(tf.tensor1d([1, 2]), true, "refuse.w");
  const v = tf.variable(tf.tensor1d([5]), true, "refuse.v");
  const optimizer = lionw({ lr: 0.5, weightDecay: 0, workers: 0 });
  optimizer.applyGradients([{ name: "refuse.w", tensor: tf.tensor1d([1, 1]) }]);
  assert.deepEqual([...w.dataSync()], [0.5, 1.5]);
  assert.throws(
    () =>
      optimizer.applyGradients({ "refuse.w": tf.tensor1d([1, 1]), "refuse.v": tf.tensor1d([1]) }),
    /variable "refuse.v" is not among the 1 this optimizer was built with/,
  );
  assert.throws(
    () => optimizer.applyGradients({ "refuse.w": tf.tensor1d([1, 1, 1]) }),
    /the gradient of "refuse.w" must be float32 of shape \[2\]: current value is float32 of shape \[3\]/,
  );
  assert.throws(
    () => optimizer.applyGradients({ "nothing.here": tf.tensor1d([1]) }),
    /"nothing.here" is not a registered variable/,
  );
  assert.throws(
    () => optimizer.applyGradients({ "refuse.w": tf.tensor1d([NaN, 1]) }),
    /holds NaN or Infinity: parameters and state are unchanged/,
  );
  assert.deepEqual([...w.dataSync()], [0.5, 1.5]);
  assert.deepEqual([...v.dataSync()], [5]);
  assert.equal(optimizer.iterations, 1);
  assert.throws(() => new DecoupledLionWOptimizer({ lr: -1 }), /'lr' must be/);
  assert.throws(
    () => new DecoupledLionWOptimizer({ groups: 3 as never }),
    /'groups' must be a function/,
  );
  await optimizer.close();
  tf.dispose([w, v]);
});

Deno.test("a variable assigned from outside is copied in before the next step", async () => {
  const w = tf.variable(tf.tensor1d([1, 2]), true, "outside.w");
  const optimizer = lionw({ lr: 0.5, weightDecay: 0, workers: 0 });
  optimizer.applyGradients({ "outside.w": tf.tensor1d([1, 1]) });
  w.assign(tf.tensor1d([10, 20])); // loaded weights, say
  optimizer.applyGradients({ "outside.w": tf.tensor1d([1, 1]) });
  assert.deepEqual([...w.dataSync()], [9.5, 19.5]);
  await optimizer.close();
  w.dispose();
});

Deno.test("groups come from the variables (decay groups); metrics can be asked per step", async () => {
  const { decayGroups } = await import("../mod.ts");
  const kernel = tf.variable(tf.ones([2, 2]), true, "groups.kernel");
  const bias = tf.variable(tf.ones([2]), true, "groups.bias");
  const optimizer = lionw({
    lr: 0.1,
    groups: (params) => decayGroups(params, { weightDecay: 0.5 }).groups,
    metrics: true,
    logger: null, // a decay this large warns
  });
  optimizer.applyGradients({ "groups.kernel": tf.ones([2, 2]), "groups.bias": tf.ones([2]) });
  assert.deepEqual(optimizer.optimizer.paramGroups.map((g) => g.weightDecay), [0.5, 0]);
  // decay multiplies by 1 − 0.5·1 first (lr/initialLr = 1), then −lr·sign
  assert.deepEqual([...kernel.dataSync()].map((x) => x.toFixed(4)), [
    "0.4000",
    "0.4000",
    "0.4000",
    "0.4000",
  ]);
  assert.deepEqual([...bias.dataSync()].map((x) => x.toFixed(4)), ["0.9000", "0.9000"]);
  assert.equal(optimizer.optimizer.getMetrics()["l2_norm/grad/groups.bias"], Math.SQRT2);
  optimizer.metrics = false;
  optimizer.applyGradients({ "groups.kernel": tf.ones([2, 2]), "groups.bias": tf.ones([2]) });
  assert.deepEqual(optimizer.optimizer.getMetrics(), {});
  await optimizer.close();
  tf.dispose([kernel, bias]);
});

Deno.test("where the thread may not block, workers asked for run inline, with a warning", async () => {
  const original = Atomics.wait;
  Atomics.wait = () => {
    throw new TypeError("Atomics.wait cannot be called in this context");
  };
  const logger = recordingLogger();
  const w = tf.variable(tf.tensor1d([1]), true, "noblock.w");
  const optimizer = lionw({ workers: 2, logger });
  try {
    optimizer.applyGradients({ "noblock.w": tf.tensor1d([1]) });
  } finally {
    Atomics.wait = original;
  }
  assert.equal(optimizer.optimizer.workers, 0);
  assert.match(
    logger.messages.join("\n"),
    /Running inline instead of on 2 workers as this thread may not block/,
  );
  await optimizer.close();
  w.dispose();
});

Deno.test("getConfig() leaves out the collective and the exchange (this run's ranks) and keeps the data-parallel options", () => {
  const optimizer = lionw({
    lr: 0.01,
    collective: new LocalCollective(),
    checkRanksEvery: 10,
    exchange: "sign-vote",
  });
  const config = optimizer.getConfig();
  assert.equal("collective" in config, false);
  // a config restored without the ranks would be refused with an exchange in it
  assert.equal("exchange" in config, false);
  assert.equal(config.checkRanksEvery, 10);
  assert.equal(JSON.parse(JSON.stringify(config)).lr, 0.01);
  optimizer.dispose();
});

Deno.test("a reloaded model saved again before it trains keeps every exp_avg (tfjs-layers' save/load test)", async () => {
  const model = denseModel(21);
  const optimizer = lionw({ lr: 3e-3, weightDecay: 1e-4, workers: 0 });
  model.compile({ optimizer, loss: "meanSquaredError" });
  await model.fit(X, Y, { epochs: 1, batchSize: 16, shuffle: false, verbose: 0 });
  const first = memorySink();
  await model.save(first.handler, { includeOptimizer: true });
  const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(first.artifacts));
  // tfjs-layers' own test: iter and one moment per trainable weight, before any training
  const held = await reloaded.optimizer.getWeights();
  assert.equal(held.length, 1 + model.trainableWeights.length);
  const saved = await optimizer.getWeights();
  assert.deepEqual(held.map((w) => w.tensor.shape), saved.map((w) => w.tensor.shape));
  held.forEach((w, i) => assert.deepEqual(w.tensor.dataSync(), saved[i]!.tensor.dataSync()));
  // load → save: the second file holds the same optimizer weights as the first
  const second = memorySink();
  await reloaded.save(second.handler, { includeOptimizer: true });
  const specs = (artifacts: tf.io.ModelArtifacts) =>
    artifacts.weightSpecs!.filter((spec) => spec.group === "optimizer").length;
  assert.equal(specs(second.artifacts), specs(first.artifacts));
  assert.equal(specs(first.artifacts), 1 + model.trainableWeights.length);
  assert.deepEqual(
    second.artifacts.trainingConfig!.optimizer_config,
    first.artifacts.trainingConfig!.optimizer_config,
  );
  tf.dispose([...held, ...saved].map((w) => w.tensor));
  await optimizer.close();
  await (reloaded.optimizer as DecoupledLionWOptimizer).close();
  model.dispose();
  reloaded.dispose();
});

Deno.test("a model compiled with decay groups and a schedule's lr, saved and reloaded, trains on bit for bit", async () => {
  const { decayGroups } = await import("../mod.ts");
  const model = denseModel(31);
  const optimizer = lionw({
    lr: 3e-3,
    groups: (params) => decayGroups(params, { weightDecay: 0.05 }).groups,
    workers: 0,
    logger: null,
  });
  model.compile({ optimizer, loss: "meanSquaredError" });
  await model.fit(X, Y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  optimizer.optimizer.paramGroups.forEach((group) => (group.lr = 1e-3)); // a schedule's lr
  const sink = memorySink();
  await model.save(sink.handler, { includeOptimizer: true });
  const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(sink.artifacts));
  await model.fit(X, Y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  await reloaded.fit(X, Y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
  const restored = (reloaded.optimizer as DecoupledLionWOptimizer).optimizer;
  // the biases keep no decay; each group keeps its lr and initialLr
  assert.deepEqual(
    restored.paramGroups.map((g) => [g.weightDecay, g.lr, g.initialLr, g.params.length]),
    [[0.05, 1e-3, 3e-3, 2], [0, 1e-3, 3e-3, 2]],
  );
  assertSameWeights(reloaded, model);
  await optimizer.close();
  await (reloaded.optimizer as DecoupledLionWOptimizer).close();
  model.dispose();
  reloaded.dispose();
});

Deno.test("getWeights() lists several variables' moments in the order the optimizer was built with", async () => {
  const names = ["order.c", "order.a", "order.b"];
  const variables = names.map((name, i) => tf.variable(tf.fill([i + 1], i + 1), true, name));
  const optimizer = lionw({ lr: 0.1, workers: 0 });
  optimizer.applyGradients(names.map((name, i) => ({ name, tensor: tf.fill([i + 1], i + 1) })));
  const weights = await optimizer.getWeights();
  assert.deepEqual(weights.map((w) => w.name), ["iter", ...names.map((n) => `${n}/exp_avg`)]);
  // after one step exp_avg = (1 − β2)·g = 0.01·g
  weights.slice(1).forEach((w, i) =>
    assert.deepEqual([...w.tensor.dataSync()], new Array(i + 1).fill(Math.fround(0.01 * (i + 1))))
  );
  // another optimizer set with them and saved again before its first step gives them back
  const other = lionw({ lr: 0.1, workers: 0 });
  await other.setWeights(weights);
  const again = await other.getWeights();
  assert.deepEqual(again.map((w) => w.name), weights.map((w) => w.name));
  again.forEach((w, i) => assert.deepEqual(w.tensor.dataSync(), weights[i]!.tensor.dataSync()));
  tf.dispose([...variables, ...weights.map((w) => w.tensor), ...again.map((w) => w.tensor)]);
  await optimizer.close();
  await other.close();
});

Deno.test("savedGroups from a config are checked, and must cover the variables of the first step", async () => {
  assert.throws(() => lionw({ savedGroups: { variables: 1, grups: [] } as never }), {
    name: "TypeError",
    message: /unknown key "grups": did you mean "groups"\?/,
  });
  // a position equal to the count is one past the end; negative and fractional ones are no positions
  for (const bad of [3, 2, -1, 0.5]) {
    assert.throws(
      () => lionw({ savedGroups: { variables: 2, groups: [{ params: [0, bad] }] } as never }),
      /'savedGroups.groups\[0\].params' must be positions below 'savedGroups.variables'/,
      `position ${bad}`,
    );
  }
  const w = tf.variable(tf.tensor1d([1, 2]), true, "saved.w");
  const optimizer = lionw({
    workers: 0,
    savedGroups: {
      variables: 2,
      groups: [{
        params: [0, 1],
        lr: 1e-3,
        initialLr: 1e-3,
        betas: [0.9, 0.99],
        weightDecay: 0,
        maximize: false,
        cautious: false,
      }],
    },
  });
  assert.throws(
    () => optimizer.applyGradients({ "saved.w": tf.tensor1d([1, 1]) }),
    /its saved groups cover 2 variables and the first step has 1/,
  );
  assert.deepEqual([...w.dataSync()], [1, 2]);
  await optimizer.close();
  w.dispose();
});

Deno.test("the adapter names its own keys among the known ones, and refuses gpujs at once, saying why", () => {
  assert.throws(() => lionw({ group: () => [] } as never), {
    name: "TypeError",
    message:
      /unknown key "group": did you mean "groups"\? \(known: .*groups, metrics, savedGroups, deviceUpdate\)/,
  });
  assert.throws(() => lionw({ metric: true } as never), /did you mean "metrics"\?/);
  assert.throws(() => lionw({ backend: "gpujs" }), {
    name: "RangeError",
    message: /tfjs steps an optimizer synchronously .* use backend "auto", "wasm" or "js"$/,
  });
  assert.throws(() => lionw(null as never), /'options' must be an object: current value is null/);
  for (const bad of ["fast", 1, null]) {
    assert.throws(() => lionw({ deviceUpdate: bad as never }), {
      name: "RangeError",
      message: /'deviceUpdate' must be "fused" or "ops": current value is/,
    });
  }
});

Deno.test("getMetrics() gives the inner optimizer's record on a CPU backend; pullState() is the inner one's", async () => {
  const w = tf.variable(tf.tensor1d([1, 2]), true, "metrics.w");
  const optimizer = lionw({ lr: 0.5, weightDecay: 0, metrics: true, workers: 0 });
  assert.deepEqual(await optimizer.getMetrics(), {});
  optimizer.applyGradients({ [w.name]: tf.tensor1d([3, 4]) });
  assert.equal(optimizer.onDevice, false);
  const metrics = await optimizer.getMetrics();
  assert.deepEqual(metrics, optimizer.optimizer.getMetrics());
  assert.equal(metrics[`l2_norm/grad/${w.name}`], 5);
  await optimizer.pullState();
  assert.deepEqual([...optimizer.optimizer.paramGroups[0]!.params[0]!.data], [0.5, 1.5]);
  await optimizer.close();
  w.dispose();
});

Deno.test("on cpu a variable whose data is its own is updated in place; on wasm never; a tensor sharing it keeps its values", async () => {
  for (const backend of ["cpu", "wasm"]) {
    if (backend === "wasm") {
      setWasmPaths(new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname);
    }
    await tf.setBackend(backend);
    const initial = tf.tensor1d([1, -1, 2]);
    const w = tf.variable(initial, true, `inplace.${backend}.w`);
    const optimizer = lionw({ lr: 0.5, weightDecay: 0, workers: 0 });
    const step = (g: number[]) => {
      const grad = tf.tensor1d(g);
      optimizer.applyGradients({ [w.name]: grad });
      grad.dispose();
    };
    step([1, 1, 1]); // the variable's first data is shared with the tensor it was made from
    assert.deepEqual(
      [...initial.dataSync()],
      [1, -1, 2],
      `${backend}: the tensor it was made from`,
    );
    assert.notEqual(w.dataId, initial.dataId);
    const own = w.dataId;
    step([1, 1, 1]);
    // tfjs-wasm caches weights packed by data id (XNNPACK): a write in place would go unseen
    assert.equal(w.dataId === own, backend === "cpu", `${backend}: the second step in place`);
    assert.deepEqual([...w.dataSync()], [0, -2, 1]);
    // one other tensor sharing the data (a reshape: the count is 2), then two (with a clone)
    const view = tf.reshape(w, [3, 1]);
    assert.equal(view.dataId, w.dataId, `${backend}: the reshape shares the variable's data`);
    step([-1, 1, -1]);
    assert.notEqual(w.dataId, view.dataId, `${backend}: a shared variable gets a new tensor`);
    assert.deepEqual([...view.dataSync()], [0, -2, 1], `${backend}: the reshape is unchanged`);
    assert.deepEqual([...w.dataSync()], [0.5, -2.5, 1.5]);
    const clone = tf.clone(w);
    const view2 = tf.reshape(w, [1, 3]);
    step([1, 1, 1]);
    assert.deepEqual([...clone.dataSync()], [0.5, -2.5, 1.5], `${backend}: the clone is unchanged`);
    assert.deepEqual([...view2.dataSync()], [0.5, -2.5, 1.5], `${backend}: the reshape too`);
    assert.deepEqual([...w.dataSync()], [0, -3, 1]);
    await optimizer.close();
    tf.dispose([w, initial, clone, view, view2]);
  }
  await tf.setBackend("cpu");
});
