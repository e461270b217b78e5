import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { oneParam, recordingLogger, seededValues } from "./_util.ts";

Deno.test("DecoupledLionW.step() applies two hand-computed steps", async () => {
  const { w } = oneParam([2, -4, 1]);
  const opt = new DecoupledLionW([w], {
    lr: 0.5,
    betas: [0.5, 0.75],
    weightDecay: 0.5,
    logger: null,
  });
  // Step 1, lr 0.5 = initialLr, so the decay multiplier is 1 − 1·0.5 = 0.5:
  //   p·0.5 = [1, −2, 0.5]; lerp(0, g, 0.5) = [0.5, −1, 0] → sign [1, −1, 0]
  //   p − 0.5·sign = [0.5, −1.5, 0.5]; m = lerp(0, g, 0.25) = [0.25, −0.5, 0]
  w.grad = [1, -2, 0];
  await opt.step();
  assert.deepEqual([...w.data], [0.5, -1.5, 0.5]);
  assert.deepEqual([...opt.state(w)!.expAvg], [0.25, -0.5, 0]);
  // Step 2, lr 0.25: decay = 0.25 / 0.5, multiplier 1 − 0.5·0.5 = 0.75:
  //   p·0.75 = [0.375, −1.125, 0.375]; lerp(m, g, 0.5) = [−0.375, −0.75, 2] → [−1, −1, 1]
  //   p − 0.25·sign = [0.625, −0.875, 0.125]; m = m + 0.25(g − m) = [−0.0625, −0.625, 1]
  opt.paramGroups[0]!.lr = 0.25;
  w.grad = [-1, -1, 4];
  await opt.step({ metrics: true });
  assert.deepEqual([...w.data], [0.625, -0.875, 0.125]);
  assert.deepEqual([...opt.state(w)!.expAvg], [-0.0625, -0.625, 1]);
  // Metrics, post-step: lerp(m, g, 0.5) = [−0.53125, −0.8125, 2.5] → sign [−1, −1, 1]
  //   u = 0.25·sign − 0.5·0.5·p = [−0.40625, −0.03125, 0.21875]
  const partials = opt.getMetricPartials();
  assert.deepEqual(partials.names, ["w"]);
  //                                Σm²         Σp²       Σu²           Σg² Σu·g    Σm·g
  assert.deepEqual([...partials.sums], [1.39453125, 1.171875, 0.2138671875, 18, 1.3125, 4.6875]);
  const metrics = opt.getMetrics();
  assert.equal(metrics["l2_norm/grad/w"], Math.sqrt(18));
  assert.equal(metrics["cosine/update_grad/w"], 1.3125 / (Math.sqrt(0.2138671875) * Math.sqrt(18)));
  assert.equal(metrics["cosine/moment_grad/w"], 4.6875 / (Math.sqrt(1.39453125) * Math.sqrt(18)));
  // the partials are a copy: a caller adding into them (across ranks, say) changes no record
  partials.sums[3] = 0;
  (partials.names as string[])[0] = "other";
  assert.deepEqual(opt.getMetrics(), metrics);
  assert.deepEqual(opt.getMetricPartials().names, ["w"]);
  assert.equal(opt.getMetricPartials().sums[3], 18);
  assert.equal(opt.iterations, 2);
  await opt.close();
});

Deno.test("DecoupledLionW rejects bad hyperparameters, naming the value", () => {
  const { w } = oneParam();
  for (const lr of [0, -1, NaN, Infinity, -Infinity]) {
    assert.throws(() => new DecoupledLionW([w], { lr }), {
      name: "RangeError",
      message:
        `Cannot create optimizer as 'lr' must be a finite number > 0: current value is ${lr}`,
    });
  }
  assert.throws(() => new DecoupledLionW([w], { lr: "0.1" as unknown as number }), {
    name: "TypeError",
    message: `Cannot create optimizer as 'lr' must be a number: current value is "0.1"`,
  });
  for (
    const [betas, index, bad] of [[[-0.1, 0.9], 0, -0.1], [[0.9, 1.2], 1, 1.2], [
      [NaN, 0.9],
      0,
      NaN,
    ]] as const
  ) {
    assert.throws(() => new DecoupledLionW([w], { betas: betas as [number, number] }), {
      name: "RangeError",
      message:
        `Cannot create optimizer as 'betas[${index}]' must be in [0, 1]: current value is ${bad}`,
    });
  }
  assert.throws(
    () => new DecoupledLionW([w], { betas: [0.9] as unknown as [number, number] }),
    TypeError,
  );
  for (const weightDecay of [-0.1, -Infinity, NaN, Infinity]) {
    assert.throws(() => new DecoupledLionW([w], { weightDecay }), {
      name: "RangeError",
      message:
        `Cannot create optimizer as 'weightDecay' must be a finite number >= 0: current value is ${weightDecay}`,
    });
  }
  assert.throws(() => new DecoupledLionW([{ params: [w], weightDecay: -1e-4 }]), {
    name: "RangeError",
    message:
      "Cannot create optimizer as 'paramGroups[0].weightDecay' must be a finite number >= 0: current value is -0.0001",
  });
  assert.throws(() => new DecoupledLionW([{ params: [w], lr: -2 }]), {
    name: "RangeError",
    message:
      "Cannot create optimizer as 'paramGroups[0].lr' must be a finite number > 0: current value is -2",
  });
  assert.throws(() => new DecoupledLionW([{ params: [w], betas: [0.5, 2] }]), {
    name: "RangeError",
    message:
      "Cannot create optimizer as 'paramGroups[0].betas[1]' must be in [0, 1]: current value is 2",
  });
  // betas at the edges are valid
  new DecoupledLionW([{ params: [w], betas: [0, 1] }], { logger: null }).close();
});

Deno.test("DecoupledLionW rejects bad engine options and parameter lists", async () => {
  const { store, w } = oneParam();
  const v = store.add("v", [2]);
  assert.throws(() => new DecoupledLionW([w], { nonFinite: "drop" as "skip" }), {
    name: "RangeError",
    message:
      `Cannot create optimizer as 'nonFinite' must be "error", "skip" or "ignore": current value is "drop"`,
  });
  assert.throws(() => new DecoupledLionW([w], { backend: "cuda" as "js" }), RangeError);
  assert.throws(() => new DecoupledLionW([w], { backend: "gpujs", gpuMode: "webgl" as "cpu" }), {
    name: "RangeError",
    message:
      `Cannot create optimizer as 'gpuMode' must be "auto", "webgpu", "webasm" or "cpu": current value is "webgl"`,
  });
  for (const workers of [-1, 1.5, NaN, 257]) {
    assert.throws(() => new DecoupledLionW([w], { workers }), {
      name: "RangeError",
      message:
        `Cannot create optimizer as 'workers' must be "auto" or an integer in [0, 256]: current value is ${workers}`,
    });
  }
  assert.throws(() => new DecoupledLionW([w], { fma: "fast" as "exact" }), {
    name: "RangeError",
    message: `Cannot create optimizer as 'fma' must be "auto" or "exact": current value is "fast"`,
  });
  assert.throws(() => new DecoupledLionW([]), {
    name: "RangeError",
    message: "Cannot create optimizer as it got an empty parameter list",
  });
  assert.throws(() => new DecoupledLionW([w, w]), {
    name: "RangeError",
    message: "Cannot create optimizer as parameter 'w' is listed more than once",
  });
  assert.throws(() => new DecoupledLionW([{ params: [w] }, { params: [v, w] }]), RangeError);
  const other = new ParameterStore().add("x", [1]);
  assert.throws(() => new DecoupledLionW([w, other]), {
    name: "RangeError",
    message:
      "Cannot create optimizer as its parameters come from 2 stores: use one ParameterStore per optimizer",
  });
  assert.throws(() => new DecoupledLionW([{ params: [w] }, w] as never), TypeError);
  assert.throws(() => new DecoupledLionW([{ params: [{}] }] as never), TypeError);
  assert.throws(() => new DecoupledLionW("w" as never), TypeError);

  const first = new DecoupledLionW([w], { workers: 0, backend: "js", logger: null });
  assert.equal(first.backend, "js");
  assert.equal(first.workers, 0);
  await first.close();
  const auto = new DecoupledLionW([w], { logger: null }); // a small model: wasm, inline
  assert.equal(auto.backend, "wasm");
  assert.equal(auto.workers, 0);
  await auto.close();
  const again = new DecoupledLionW([w], { logger: null });
  assert.throws(() => new DecoupledLionW([w, v]), {
    name: "RangeError",
    message:
      "Cannot create optimizer as parameter 'w' is used by another optimizer: close that one first",
  });
  await again.close();
  const second = new DecoupledLionW([w, v], { logger: null }); // released by close()
  await second.close();
});

Deno.test("DecoupledLionW warns about a high weight decay through its logger", async () => {
  const { w } = oneParam();
  const logger = recordingLogger();
  const opt = new DecoupledLionW([{ params: [w], weightDecay: 0.01 }], {
    weightDecay: 1e-4,
    logger,
  });
  assert.deepEqual(logger.messages, [
    "You are using a high value of `weightDecay=0.01` for the `DecoupledLionW` optimizer. Are you sure you want to do this? Your model's weights will be multiplied by 0.99 on every step!",
  ]);
  opt.paramGroups[0]!.weightDecay = 1e-4;
  assert.equal(logger.messages.length, 1);
  opt.paramGroups[0]!.weightDecay = 1e-3;
  assert.equal(logger.messages.length, 2);
  await opt.close();
  const silent = new DecoupledLionW([w], { weightDecay: 0.5, logger: null }); // no throw, no output
  await silent.close();
});

Deno.test("DecoupledLionW.step() skips parameters without a gradient or with requiresGrad off", async () => {
  const store = new ParameterStore();
  const stepped = store.add("stepped", [2], [1, 1]);
  const absent = store.add("absent", [2], [1, 1]);
  const frozen = store.add("frozen", [2], [1, 1]);
  frozen.requiresGrad = false;
  const opt = new DecoupledLionW([stepped, absent, frozen], {
    lr: 0.5,
    weightDecay: 0.5,
    logger: null,
  });
  stepped.grad = [1, -1];
  frozen.grad = [1, -1];
  await opt.step({ metrics: true });
  assert.deepEqual([...stepped.data], [0, 1]);
  assert.deepEqual([...absent.data], [1, 1]);
  assert.deepEqual([...frozen.data], [1, 1]);
  assert.equal(opt.state(absent), undefined, "no state without a gradient");
  assert.equal(opt.state(frozen), undefined, "no state when not trained");
  assert.deepEqual(Object.keys(opt.stateDict().state), ["stepped"]);
  assert.deepEqual(opt.getMetricPartials().names, ["stepped"]);
  assert.throws(() => opt.state(new ParameterStore().add("x", [1])), RangeError);
  await opt.close();
});

Deno.test("DecoupledLionW.zeroGrad() sets to none, or fills present gradients with zeros", async () => {
  const store = new ParameterStore();
  const a = store.add("a", [2]);
  const b = store.add("b", [2]);
  const opt = new DecoupledLionW([a, b], { logger: null });
  a.grad = [1, 2];
  opt.zeroGrad({ setToNone: false });
  assert.deepEqual([...a.grad!], [0, 0]);
  assert.equal(b.grad, null, "an absent gradient stays absent");
  opt.zeroGrad();
  assert.equal(a.grad, null);
  await opt.close();
});

function twoParams(policy: "error" | "skip" | "ignore") {
  const store = new ParameterStore();
  const a = store.add("a", [3], [1, 2, 3]);
  const b = store.add("b", [2], [4, 5]);
  const fresh = store.add("fresh", [2], [6, 7]);
  const logger = recordingLogger();
  const opt = new DecoupledLionW([a, b, fresh], {
    lr: 0.1,
    weightDecay: 0.1,
    nonFinite: policy,
    logger,
  });
  return { a, b, fresh, opt, logger };
}

Deno.test("nonFinite: 'error' throws naming the parameter and changes nothing", async () => {
  const { a, b, fresh, opt } = twoParams("error");
  a.grad = [1, 1, 1];
  b.grad = [1, 1];
  await opt.step();
  const before = { a: a.data.slice(), b: b.data.slice(), ma: opt.state(a)!.expAvg.slice() };
  a.grad = [1, 1, 1];
  b.grad = [1, NaN];
  fresh.grad = [1, 1];
  await assert.rejects(opt.step({ metrics: true }), {
    name: "RangeError",
    message:
      "Cannot step as the gradient of parameter 'b' holds NaN or Infinity: parameters and state are unchanged",
  });
  assertBitsEqual(a.data, before.a, "a");
  assertBitsEqual(b.data, before.b, "b");
  assertBitsEqual(opt.state(a)!.expAvg, before.ma, "a exp_avg");
  assert.equal(opt.state(fresh), undefined, "no state was created");
  assert.deepEqual([...fresh.data], [6, 7]);
  assert.equal(opt.iterations, 1);
  // without clipping the scan finds non-finite values and sums no squares: no norm
  assert.deepEqual(opt.lastStep, {
    applied: false,
    nonFinite: ["b"],
    metrics: false,
    gradNorm: null,
    gradScale: 1,
  });
  assert.deepEqual(opt.getMetrics(), {});
  b.grad = [Infinity, -Infinity];
  a.grad = [NaN, 0, 0];
  await assert.rejects(opt.step(), /parameters 'a', 'b' holds NaN or Infinity/);
  b.grad = [1, 1];
  a.grad = [1, 1, 1];
  await opt.step(); // the optimizer goes on
  assert.equal(opt.iterations, 2);
  await opt.close();
});

Deno.test("nonFinite: 'skip' skips the whole step and reports it", async () => {
  const { a, b, fresh, opt, logger } = twoParams("skip");
  a.grad = [1, 1, 1];
  b.grad = [Infinity, 1];
  fresh.grad = [1, 1];
  assert.equal(await opt.step(() => 42), 42);
  assert.deepEqual([...a.data], [1, 2, 3]);
  assert.equal(opt.state(a), undefined);
  assert.deepEqual(opt.lastStep, {
    applied: false,
    nonFinite: ["b"],
    metrics: false,
    gradNorm: null, // no clipping: the scan sums no squares
    gradScale: 1,
  });
  assert.equal(opt.iterations, 0);
  assert.deepEqual(logger.messages.filter((m) => m.startsWith("Skipped")), [
    "Skipped step as the gradient of parameter 'b' holds NaN or Infinity",
  ]);
  b.grad = [1, 1];
  await opt.step({ metrics: true });
  assert.deepEqual(opt.lastStep, {
    applied: true,
    nonFinite: [],
    metrics: true,
    gradNorm: null,
    gradScale: 1,
  });
  assert.equal(opt.iterations, 1);
  await opt.close();
});

Deno.test("nonFinite: 'ignore' applies the step as torch does", async () => {
  const { a, b, opt } = twoParams("ignore");
  a.grad = [NaN, 1, -1];
  b.grad = [Infinity, 1];
  await opt.step();
  // torch 1.13: sign(NaN) = 0, so p only decays (×0.9); the moment takes the NaN
  const f = Math.fround, decay = f(0.9), lr = f(0.1);
  assert.deepEqual([...a.data], [f(1 * decay), f(f(2 * decay) - lr), f(f(3 * decay) + lr)]);
  assert.ok(Number.isNaN(opt.state(a)!.expAvg[0]));
  assert.equal(opt.state(b)!.expAvg[0], Infinity);
  // "ignore" needs no scan: no norm
  assert.deepEqual(opt.lastStep, {
    applied: true,
    nonFinite: [],
    metrics: false,
    gradNorm: null,
    gradScale: 1,
  });
  await opt.close();
});

Deno.test("DecoupledLionW.step() awaits a closure and returns its result", async () => {
  const { w } = oneParam([1, 1, 1]);
  const opt = new DecoupledLionW([w], { lr: 0.5, logger: null });
  assert.equal(await opt.step(), undefined);
  const loss = await opt.step({
    metrics: true,
    closure: async () => {
      await Promise.resolve();
      w.grad = [1, -1, 0]; // gradients produced inside the closure are used
      return 0.25;
    },
  });
  assert.equal(loss, 0.25);
  assert.deepEqual([...w.data], [0.5, 1.5, 1]);
  await assert.rejects(
    opt.step(() => {
      throw new Error("forward failed");
    }),
    /forward failed/,
  );
  assert.deepEqual([...w.data], [0.5, 1.5, 1], "a failed closure changes nothing");
  await assert.rejects(opt.step("x" as never), TypeError);
  await assert.rejects(opt.step({ metrics: 1 as unknown as boolean }), TypeError);
  await opt.close();
});

Deno.test("DecoupledLionW.step() refuses to overlap, and after close()", async () => {
  const { w } = oneParam();
  const opt = new DecoupledLionW([w], { logger: null });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const first = opt.step(() => gate);
  await assert.rejects(opt.step(), {
    message: "Cannot step as a step() is in flight: await it first",
  });
  assert.throws(() => opt.loadStateDict(opt.stateDict()), /in flight/);
  release();
  await first;
  await opt.step(); // idle again

  const closing = opt.step(() => opt.close());
  await assert.rejects(closing, { message: "Cannot step as the optimizer is closed" });
  await assert.rejects(opt.step(), { message: "Cannot step as the optimizer is closed" });
  await opt.close(); // idempotent
  await opt.close();
  assert.throws(() => opt.loadStateDict(opt.stateDict()), /closed/);
});

Deno.test("DecoupledLionW is closed by await using", async () => {
  const { w } = oneParam();
  let escaped: DecoupledLionW;
  {
    await using opt = new DecoupledLionW([w], { logger: null });
    escaped = opt;
  }
  await assert.rejects(escaped.step(), /closed/);
});

Deno.test("getMetrics() is empty after a step without metrics", async () => {
  const { w } = oneParam();
  const opt = new DecoupledLionW([w], { logger: null });
  w.grad = [1, 2, 3];
  await opt.step({ metrics: true });
  assert.equal(Object.keys(opt.getMetrics()).length, 6 + 4); // six per parameter, four global
  const record = opt.getMetrics();
  record["l2_norm/grad/w"] = -1; // a copy
  assert.notEqual(opt.getMetrics()["l2_norm/grad/w"], -1);
  await opt.step();
  assert.deepEqual(opt.getMetrics(), {});
  assert.deepEqual(opt.getMetricPartials().names, []);
  await opt.close();
});

Deno.test("several arenas and plain memory give the same steps and metrics as one arena", async () => {
  async function run(
    store: ParameterStore,
  ): Promise<{ data: Float32Array[]; metrics: Record<string, number> }> {
    const params = [0, 1, 2, 3].map((i) => store.add(`p${i}`, [2500], seededValues(2500, i)));
    const opt = new DecoupledLionW(
      [{ params: params.slice(0, 2) }, {
        params: params.slice(2),
        lr: 3e-3,
        betas: [0.3, 0.6],
        weightDecay: 0.1,
      }],
      { lr: 1e-3, weightDecay: 1e-4, logger: null },
    );
    for (let step = 0; step < 3; step++) {
      params.forEach((p, i) => (p.grad = seededValues(2500, 100 * step + i)));
      await opt.step({ metrics: true });
    }
    await opt.close();
    return {
      data: params.flatMap((p) => [p.data, opt.state(p)!.expAvg]),
      metrics: opt.getMetrics(),
    };
  }
  const one = await run(new ParameterStore());
  // 64 KiB arenas: one parameter's slots (30,144 bytes) and the kernels' tables fill one
  const manyStore = new ParameterStore({ arenaBytes: 65536 });
  const many = await run(manyStore);
  const plain = await run(new ParameterStore({ shared: false }));
  assert.equal(manyStore.arenaCount, 4);
  for (const other of [many, plain]) {
    other.data.forEach((values, i) => assertBitsEqual(values, one.data[i]!, `slot ${i}`));
    assert.deepEqual(other.metrics, one.metrics);
  }
});

Deno.test("lr 0 (a warmup's first step) leaves the parameters and moves the moment", async () => {
  const { w } = oneParam([1, -2, 0.5]);
  await using opt = new DecoupledLionW([w], { lr: 0.1, weightDecay: 0.5, logger: null });
  opt.paramGroups[0]!.lr = 0;
  w.grad = [1, -1, 0];
  await opt.step();
  // decay factor lr / initialLr = 0: p·1 − 0·sign(c) = p
  assert.deepEqual([...w.data], [1, -2, 0.5]);
  // m = lerp(0, g, 1 − 0.99) = 0.01·g, in float32
  assert.deepEqual([...opt.state(w)!.expAvg], [Math.fround(0.01), -Math.fround(0.01), 0]);
  assert.equal(opt.iterations, 1);
  // a checkpoint taken at lr 0 loads
  const saved = opt.stateDict();
  assert.equal(saved.paramGroups[0]!.lr, 0);
  opt.loadStateDict(saved);
  assert.equal(opt.paramGroups[0]!.lr, 0);
});

Deno.test("a decay multiplier <= 0 is applied as the reference does, with one warning", async () => {
  const { w } = oneParam([1]);
  const logger = recordingLogger();
  // built with a warmup's small lr, then raised 1000×: 1 − 1000·0.01 = −9
  await using opt = new DecoupledLionW([w], { lr: 1e-4, weightDecay: 0.01, logger });
  logger.messages.length = 0; // the reference's high-weight-decay warning
  opt.paramGroups[0]!.lr = 0.1;
  for (const expected of [-9, 81]) {
    w.grad = [0]; // sign 0: only the decay moves w
    await opt.step();
    assert.equal(w.data[0], expected);
  }
  assert.equal(logger.messages.length, 1, logger.messages.join("\n"));
  assert.match(
    logger.messages[0]!,
    /^Weight decay multiplies the parameters of group 0 by -9 this step .*weights flip sign and grow\. Build the optimizer with the peak lr; schedules multiply it$/,
  );
});

Deno.test("unknown option, group, step and zeroGrad keys throw, naming the closest known key", async () => {
  const { w } = oneParam();
  const cases: [() => unknown, string][] = [
    [
      () => new DecoupledLionW([w], { weight_decay: 0.1 } as never),
      `Cannot create optimizer as 'options' has an unknown key "weight_decay": did you mean "weightDecay"?`,
    ],
    [
      () => new DecoupledLionW([w], { lrr: 1 } as never),
      `Cannot create optimizer as 'options' has an unknown key "lrr": did you mean "lr"?`,
    ],
    [
      () => new DecoupledLionW([{ params: [w], learningRate: 1 } as never]),
      `Cannot create optimizer as 'paramGroups[0]' has an unknown key "learningRate": did you mean "lr"?`,
    ],
    [
      () => new DecoupledLionW([w], { colour: "red" } as never),
      `Cannot create optimizer as 'options' has an unknown key "colour" (known: `,
    ],
  ];
  for (const [make, message] of cases) {
    assert.throws(make, (error: Error) => {
      assert.equal(error.name, "TypeError");
      assert.ok(error.message.startsWith(message), error.message);
      return true;
    });
  }
  // nothing was taken: the parameter is free for the next optimizer
  await using opt = new DecoupledLionW([w], { logger: null });
  w.grad = [1, 1, 1];
  await assert.rejects(opt.step({ metric: true } as never), {
    name: "TypeError",
    message:
      `Cannot step as 'options' has an unknown key "metric": did you mean "metrics"? (known: metrics, closure, maxGradNorm)`,
  });
  assert.throws(() => opt.zeroGrad({ set_to_none: true } as never), /did you mean "setToNone"/);
  assert.throws(() => opt.zeroGrad({ setToNone: "yes" } as never), TypeError);
  assert.equal(opt.iterations, 0);
  assert.deepEqual([...w.grad!], [1, 1, 1]);
});

Deno.test("gradients, initial values and loaded state must hold numbers, element by element", () => {
  const { store, w } = oneParam([1, 2, 3]);
  w.grad = [0.5, 0.5, 0.5];
  for (const bad of [[1, "2", 3], [1, 2, null], [undefined, 2, 3], [1, 2, 3n]]) {
    assert.throws(() => (w.grad = bad as never), (error: Error) => {
      const index = bad.findIndex((x) => typeof x !== "number");
      assert.equal(error.name, "TypeError");
      assert.match(
        error.message,
        new RegExp(
          `^Cannot set the gradient of parameter 'w' as 'grad\\[${index}\\]' must be a number`,
        ),
      );
      return true;
    });
  }
  assert.deepEqual([...w.grad!], [0.5, 0.5, 0.5], "the old gradient stays");
  w.grad = new Float64Array([NaN, Infinity, -1]); // numbers: the non-finite policy handles these
  assert.throws(() => store.add("v", [2], [1, "x"] as never), {
    name: "TypeError",
    message: `Cannot add parameter 'v' as 'initial[1]' must be a number: current value is "x"`,
  });
  assert.equal(store.parameters.length, 1);
});

Deno.test("a step where no parameter has a gradient applies nothing and is not counted", async () => {
  const { w } = oneParam([1, 2, 3]);
  await using opt = new DecoupledLionW([w], { lr: 0.5, weightDecay: 0.5, logger: null });
  await opt.step({ metrics: true });
  assert.equal(opt.iterations, 0);
  assert.deepEqual(opt.lastStep, {
    applied: false,
    nonFinite: [],
    metrics: false,
    gradNorm: null,
    gradScale: 1,
  });
  assert.deepEqual([...w.data], [1, 2, 3]);
  assert.equal(opt.state(w), undefined);
  assert.deepEqual(opt.getMetrics(), {});
  w.grad = [1, 1, 1];
  await opt.step();
  assert.equal(opt.iterations, 1);
  assert.deepEqual([...w.data], [0, 0.5, 1]); // p·(1 − 0.5) − 0.5
});

for (const workers of [0, 2]) {
  Deno.test(`writes a step could tear throw until it settles, except in its closure (${workers} workers)`, async () => {
    const store = new ParameterStore();
    const w = store.add("w", [2 ** 18], seededValues(2 ** 18, 1));
    await using opt = new DecoupledLionW([w], { workers, logger: null });
    w.grad = seededValues(w.size, 2);
    const gradBefore = w.grad!.slice();
    const inFlight = opt.step(); // a forgotten await
    const attempts: [string, () => unknown][] = [
      ["set the gradient of parameter 'w'", () => (w.grad = new Float32Array(w.size))],
      ["set the gradient of parameter 'w'", () => (w.grad = null)],
      ["get the gradient slot of parameter 'w'", () => w.ensureGrad()],
      ["mark parameter 'w' written", () => w.markWritten()],
      ["zero gradients", () => opt.zeroGrad()],
      ["get state dict", () => opt.stateDict()],
    ];
    for (const [action, attempt] of attempts) {
      assert.throws(attempt, {
        name: "Error",
        message: `Cannot ${action} as a step() is in flight: await it first`,
      });
    }
    await inFlight;
    assertBitsEqual(w.grad!, gradBefore, "the step's gradient was not touched");
    assert.equal(opt.iterations, 1);
    // after it settles, and inside a closure, the same calls work
    await opt.step(() => {
      opt.zeroGrad();
      w.ensureGrad().set(gradBefore);
      w.markWritten();
    });
    assert.equal(opt.iterations, 2);
    opt.stateDict();
  });
}

Deno.test("a cautious group is refused on gpujs before anything changes", async () => {
  const { w } = oneParam([1, 2, 3]);
  await using opt = new DecoupledLionW([{ params: [w], cautious: true }], {
    backend: "gpujs",
    gpuMode: "cpu",
    workers: 0,
    logger: null,
  });
  w.grad = [1, 1, 1];
  await assert.rejects(opt.step(), {
    name: "RangeError",
    message:
      'Cannot step as paramGroups[0] is cautious, which the gpujs backend does not support (its exp_avg stays on the device): use backend "wasm" or "js"',
  });
  assert.deepEqual([...w.data], [1, 2, 3]);
  opt.paramGroups[0]!.cautious = false;
  await opt.step(); // not broken
  assert.equal(opt.iterations, 1);
});

Deno.test("gradNorm is reported where the step clips, NaN or Infinity included", async () => {
  const { a, b, fresh, opt } = twoParams("skip");
  a.grad = [1, 1, 1];
  b.grad = [Infinity, 1];
  fresh.grad = [1, 1];
  await opt.step({ maxGradNorm: 10 });
  assert.equal(opt.lastStep.gradNorm, Infinity);
  assert.equal(opt.lastStep.applied, false);
  b.grad = [1, 1];
  await opt.step({ maxGradNorm: 10 });
  assert.equal(opt.lastStep.gradNorm, Math.fround(Math.sqrt(3 + 2 + 2))); // float32, as torch's
  await opt.step(); // no clipping: no norm
  assert.equal(opt.lastStep.gradNorm, null);
  await opt.close();
});
