// The support matrix's check, written once for every runtime: Deno imports
// it (tests/_training_check_child.ts), Node runs it against the installed npm
// package (tests/tfjs_support_matrix_test.ts writes the script), and
// Chromium runs it bundled in a page (tests/_training_check_page.ts). The
// modules come in as arguments, so this file imports nothing and runs as it
// is on each.
//
// On the tfjs backend it is given, it trains a small tfjs-layers model with
// `lionw()` and checks what a user relies on:
// - the loss falls;
// - after `fit`, `model.predict` equals a forward pass computed with plain
//   ops from `model.getWeights()` on fresh tensors (a backend that cached
//   something derived from a weight would go on predicting with old values);
// - save → reload → fit continues exactly as the uninterrupted run;
// - a clone and a reshape of a variable taken before training keep their
//   values.
// Each check's result is a string for the table, and `failures` lists what
// failed. On a GPU backend, "exactly" is within the documented tolerance.

/** The documented tolerance on tfjs's GPU backends: relative L2 (docs/tfjs.md). */
export const GPU_TOLERANCE = 1e-3;

const FIT = { batchSize: 16, shuffle: false, verbose: 0 };

/** A fixed data set: y = sin(x·a) + x·b, made without tfjs's random ops. */
function dataset(tf) {
  const rows = 64;
  const x = new Float32Array(rows * 4);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(0.7 * i + 0.3) * 1.5;
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const [a, b, c, d] = x.subarray(r * 4, r * 4 + 4);
    y[r] = Math.sin(a - 2 * b) + 0.5 * c - d;
  }
  return { x: tf.tensor2d(x, [rows, 4]), y: tf.tensor2d(y, [rows, 1]) };
}

/** Dense(16, tanh) → Dense(1), with seeded initializers, so every runtime starts alike. */
function mlp(tfl) {
  const model = tfl.sequential();
  model.add(tfl.layers.dense({
    units: 16,
    inputShape: [4],
    activation: "tanh",
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
  }));
  model.add(tfl.layers.dense({
    units: 1,
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
  }));
  return model;
}

/** A save handler that keeps the artifacts in memory. */
function memorySink(tf) {
  const sink = { artifacts: undefined };
  sink.handler = tf.io.withSaveHandler((artifacts) => {
    sink.artifacts = artifacts;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  });
  return sink;
}

async function read(tensor) {
  return Float32Array.from(await tensor.data());
}

/** "bit for bit", or the relative L2 distance. */
function compare(actual, expected) {
  let same = actual.length === expected.length;
  let diff = 0, norm = 0;
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) same = false;
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  const relative = Math.sqrt(diff / (norm || 1));
  return { same, relative: Number.isNaN(relative) ? Infinity : relative };
}

function concat(arrays) {
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/**
 * Runs the checks on the active tfjs backend.
 *
 * @param modules `{ tf, tfl, lionw }`: tfjs-core, tfjs-layers and this library's `lionw`.
 * @param options `{ runtime, exact }`: the runtime's name for the table, and whether the
 * backend must agree bit for bit (cpu, wasm) or within GPU_TOLERANCE.
 * @returns The row: `{ runtime, backend, loss, predict, resume, clone, failures }`.
 */
export async function trainingCheck({ tf, tfl, lionw }, { runtime, exact }) {
  const backend = tf.getBackend();
  const failures = [];
  const verdict = (name, { same, relative }) => {
    if (same) return "bit for bit";
    const text = `rel. L2 ${relative.toExponential(1)}`;
    if (exact || !(relative <= GPU_TOLERANCE)) failures.push(`${name}: ${text}`);
    return text;
  };
  const { x, y } = dataset(tf);
  const model = mlp(tfl);
  const optimizer = lionw({ lr: 0.02, weightDecay: 1e-4 });
  model.compile({ optimizer, loss: "meanSquaredError" });

  // a clone and a reshape of the first kernel, taken before any step
  const kernel = model.trainableWeights[0].read();
  const initial = await read(kernel);
  const clone = tf.clone(kernel);
  const view = tf.reshape(kernel, [-1]);

  const first = await model.fit(x, y, { ...FIT, epochs: 12 });
  const losses = first.history.loss;
  const loss = `${losses[0].toPrecision(3)} → ${losses.at(-1).toPrecision(3)}`;
  if (!(losses.at(-1) < 0.5 * losses[0])) failures.push(`the loss did not fall: ${loss}`);

  const kept = compare(await read(clone), initial).same && compare(await read(view), initial).same;
  const moved = !compare(await read(model.trainableWeights[0].read()), initial).same;
  const cloneText = kept ? (moved ? "kept" : "kept (weights did not move)") : "overwritten";
  if (!kept || !moved) failures.push(`clone and reshape: ${cloneText}`);

  // predict against the forward pass from getWeights(), on fresh tensors
  const weights = await Promise.all(model.getWeights().map(read));
  const shapes = model.getWeights().map((w) => w.shape);
  const [w1, b1, w2, b2] = weights.map((values, i) => tf.tensor(values, shapes[i]));
  // the ops a Dense layer calls: with tanh (which tfjs does not fuse) a matMul, the bias added,
  // then tanh; without an activation a matMul fused with its bias (wasm rounds that bias
  // otherwise than a separate add)
  const forward = tf.tidy(() => {
    const hidden = tf.tanh(tf.add(tf.matMul(x, w1), b1));
    return tf.fused.matMul({ a: hidden, b: w2, bias: b2 });
  });
  const predicted = model.predict(x);
  const predict = verdict("predict", compare(await read(predicted), await read(forward)));
  tf.dispose([w1, b1, w2, b2, forward, predicted]);

  // save, reload, and both go on for 4 epochs
  const sink = memorySink(tf);
  await model.save(sink.handler, { includeOptimizer: true });
  const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(sink.artifacts));
  const going = await model.fit(x, y, { ...FIT, epochs: 4 });
  const resumed = await reloaded.fit(x, y, { ...FIT, epochs: 4 });
  const final = concat(await Promise.all(model.getWeights().map(read)));
  const again = concat(await Promise.all(reloaded.getWeights().map(read)));
  const lossesAgree = compare(
    Float32Array.from(resumed.history.loss),
    Float32Array.from(going.history.loss),
  );
  const weightsAgree = compare(again, final);
  const resume = verdict("save → reload → fit", {
    same: lossesAgree.same && weightsAgree.same,
    relative: Math.max(lossesAgree.relative, weightsAgree.relative),
  });
  if (!(reloaded.optimizer?.constructor?.name === optimizer.constructor.name)) {
    failures.push(`the reloaded model's optimizer is ${reloaded.optimizer?.constructor?.name}`);
  }

  await optimizer.close();
  await reloaded.optimizer.close();
  model.dispose();
  reloaded.dispose();
  tf.dispose([x, y, clone, view]);
  return { runtime, backend, loss, predict, resume, clone: cloneText, failures };
}
