// A tfjs-free training loop, run by tests/npm_package_test.ts under Deno
// (from mod.ts) and under Node (from the installed npm package): fits a
// linear map with DecoupledLionW on 2 workers and prints the parameters'
// bits, so the two runtimes can be compared bit for bit. `from`/`to` run
// part of the 20 steps; `load` resumes from a checkpoint file and `save`
// writes one after the last step (a run split across processes).
export async function train(
  { DecoupledLionW, ParameterStore, loadCheckpoint, saveCheckpoint },
  { from = 0, to = 20, load, save } = {},
) {
  const [inputs, outputs] = [64, 4096]; // 2^18 weights: big enough to shard
  const store = new ParameterStore();
  const w = store.add("w", [inputs, outputs]);
  const b = store.add("b", [outputs]);
  const opt = new DecoupledLionW([{ params: [w], weightDecay: 0.1 }, { params: [b] }], {
    lr: 1e-2,
    workers: 2,
    logger: null,
  });
  const x = Float32Array.from({ length: inputs }, (_, i) => Math.sin(i + 1));
  const target = Float32Array.from({ length: outputs }, (_, j) => Math.cos(j));
  const losses = [];
  if (load !== undefined) await loadCheckpoint(opt, load);
  for (let step = from; step < to; step++) {
    // y = x·W + b; loss = mean((y - target)^2); gradients by hand
    const gw = w.ensureGrad(), gb = b.ensureGrad();
    let loss = 0;
    for (let j = 0; j < outputs; j++) {
      let y = b.data[j];
      for (let i = 0; i < inputs; i++) y += x[i] * w.data[i * outputs + j];
      const dy = Math.fround((2 * (y - target[j])) / outputs);
      loss += (y - target[j]) ** 2 / outputs;
      gb[j] = dy;
      for (let i = 0; i < inputs; i++) gw[i * outputs + j] = x[i] * dy;
    }
    losses.push(loss);
    // metrics every 5th step, the last one included: getMetrics() reads the last step's
    await opt.step({ metrics: step % 5 === 4 });
  }
  // FNV-1a over the float32 bits, and the first few bits in full
  const bits = (a) => {
    const words = new Uint32Array(a.slice().buffer);
    let hash = 0x811c9dc5;
    for (const word of words) hash = Math.imul(hash ^ word, 0x01000193) >>> 0;
    return `${words.length}:${hash.toString(16)}:${[...words.subarray(0, 4)].join(",")}`;
  };
  if (save !== undefined) await saveCheckpoint(opt, save);
  const result = {
    backend: opt.backend,
    workers: opt.workers,
    losses,
    w: bits(w.data),
    b: bits(b.data),
    m: bits(opt.state(w).expAvg),
    metrics: opt.getMetrics(),
  };
  await opt.close();
  return result;
}
