// The collective contract on one process: LocalCollective, the optimizer's
// data-parallel options, and how gradient buckets are split between ranks.
// (Real ranks: data_parallel_test.ts.)
import assert from "node:assert/strict";
import { type Collective, DecoupledLionW, LocalCollective, ParameterStore } from "../mod.ts";
import { gradientBuckets } from "../src/distributed/gradient_buckets.ts";
import { parameterSlots } from "../src/store/slots.ts";
import { planStep } from "../src/step/step_plan.ts";
import { shardPlan } from "../src/distributed/shard_plan.ts";
import { seededValues } from "./_util.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { inProcessRanks } from "./_in_process_ranks.ts";

Deno.test("LocalCollective leaves buffers as they are and checks its arguments", async (t) => {
  const comm = new LocalCollective();
  const x = new Float32Array([1, -2, 3]);
  await comm.allReduceSum(x);
  await comm.reduceScatter(x, [3]);
  await comm.allGather(x, [3]);
  await comm.broadcast(x, 0);
  await comm.barrier();
  comm.blocking.allReduceSum(x);
  assert.deepEqual([...x], [1, -2, 3]);
  await t.step("counts that do not split the buffer are refused, naming them", async () => {
    await assert.rejects(
      comm.reduceScatter(x, [2]),
      /Cannot reduce-scatter as the counts add up to 2 but the buffer holds 3 elements/,
    );
    await assert.rejects(
      comm.allGather(x, [1, 2]),
      /one count per rank \(1\): current length is 2/,
    );
    assert.throws(
      () => comm.blocking.allGather(x, [-3]),
      /'counts\[0\]' must be a non-negative integer/,
    );
    await assert.rejects(
      comm.broadcast(x, 1),
      /'root' must be 0 in a group of one: current value is 1/,
    );
  });
  await comm.close();
});

function model(): {
  store: ParameterStore;
  w: ReturnType<ParameterStore["add"]>;
  b: ReturnType<ParameterStore["add"]>;
} {
  const store = new ParameterStore();
  const w = store.add("w", [40_000], seededValues(40_000, 1));
  const b = store.add("b", [7], seededValues(7, 2));
  return { store, w, b };
}

for (const shardState of [false, true]) {
  Deno.test(`one rank with a collective${shardState ? " and sharded state" : ""} steps bit for bit as without`, async () => {
    const plain = model();
    const ranked = model();
    const options = { lr: 0.01, weightDecay: 0.1, maxGradNorm: 5, workers: 0, logger: null };
    await using a = new DecoupledLionW([plain.w, plain.b], options);
    await using b = new DecoupledLionW([ranked.w, ranked.b], {
      ...options,
      collective: new LocalCollective(),
      shardState,
      checkRanksEvery: 1,
    });
    for (let step = 0; step < 3; step++) {
      for (const m of [plain, ranked]) {
        m.w.grad = seededValues(40_000, 10 + step);
        m.b.grad = step === 1 ? null : seededValues(7, 20 + step);
      }
      await a.step({ metrics: true });
      if (step === 2) b.stepSync({ metrics: true });
      else await b.step({ metrics: true });
      assert.deepEqual(b.getMetrics(), a.getMetrics());
      assert.deepEqual(b.lastStep, a.lastStep);
    }
    assert.deepEqual(ranked.w.data, plain.w.data);
    assert.deepEqual(ranked.b.data, plain.b.data);
    if (shardState) {
      assert.throws(
        () => b.stateDict(),
        /exp_avg is sharded across the ranks \(shardState\): await opt.pullState\(\) on every rank first/,
      );
      await b.pullState();
    }
    assert.deepEqual(b.stateDict(), a.stateDict());
    assert.equal(b.stateElements, 40_007);
  });
}

Deno.test("data-parallel options are checked, naming the bad value", async (t) => {
  const { w } = model();
  await t.step("shardState needs a collective", () => {
    assert.throws(
      () => new DecoupledLionW([w], { shardState: true }),
      /Cannot create optimizer as 'shardState' shards the state across the ranks of a 'collective' \("data-parallel" training\), and none was given: the options ask for "local" training/,
    );
  });
  await t.step("a collective must look like one", () => {
    assert.throws(
      () =>
        new DecoupledLionW([w], { collective: { rank: 2, worldSize: 2 } as unknown as Collective }),
      /'collective' must be a Collective \(rank, worldSize, allReduceSum, …\)/,
    );
  });
  await t.step("checkRanksEvery is a non-negative integer", () => {
    assert.throws(
      () => new DecoupledLionW([w], { collective: new LocalCollective(), checkRanksEvery: -1 }),
      /'checkRanksEvery' must be a non-negative integer: current value is -1/,
    );
  });
  await t.step("sharded state needs a backend that updates in place", () => {
    assert.throws(
      () =>
        new DecoupledLionW([w], {
          collective: new LocalCollective(),
          shardState: true,
          backend: "gpujs",
        }),
      /'shardState' needs a backend that updates the store in place/,
    );
  });
  await t.step(
    "a collective without blocking collectives cannot step synchronously; nothing changes",
    async () => {
      const { blocking: _, ...asyncOnly } = Object.assign(Object.create(null), {
        rank: 0,
        worldSize: 1,
        allReduceSum: () => Promise.resolve(),
        reduceScatter: () => Promise.resolve(),
        allGather: () => Promise.resolve(),
        broadcast: () => Promise.resolve(),
        barrier: () => Promise.resolve(),
        close: () => Promise.resolve(),
        blocking: undefined,
      });
      const before = w.data.slice();
      await using opt = new DecoupledLionW([w], {
        collective: asyncOnly as Collective,
        workers: 0,
      });
      w.grad = new Float32Array(w.size).fill(1);
      assert.throws(
        () => opt.stepSync(),
        /Cannot step synchronously as the collective has no blocking form/,
      );
      assert.deepEqual(w.data, before);
      assert.equal(opt.iterations, 0);
    },
  );
});

Deno.test("gradient buckets: each block in exactly one rank's part, the parts laid end to end", () => {
  const store = new ParameterStore();
  const params = [
    store.add("a", [50_000]),
    store.add("frozen", [100]),
    store.add("b", [3, 5]),
    store.add("c", [20_000]),
    store.add("d", [1]),
  ];
  params[1]!.requiresGrad = false;
  const entries = params.map((param) => ({ param, slots: parameterSlots(param), group: 0 }));
  for (const worldSize of [1, 2, 3, 5]) {
    const buckets = gradientBuckets(entries, worldSize, 20_000); // small buckets: a block or two each
    for (const bucket of buckets) {
      assert.equal(bucket.counts.reduce((x, y) => x + y, 0), bucket.length);
      // each bucket split about evenly too: each cut within a block of its ideal place
      for (const count of bucket.counts) {
        assert.ok(Math.abs(count - bucket.length / worldSize) <= 2 * 16_384, `${bucket.counts}`);
      }
      assert.equal(bucket.owners.length, worldSize + 1);
      assert.ok(bucket.length <= 20_000 || bucket.blocks.length === 1);
    }
    const plan = planStep(entries.filter(({ slots }) => slots.requiresGrad));
    const seen = new Int32Array(plan.blocks.length);
    let elements = 0;
    const total = 50_000 + 15 + 20_000 + 1;
    for (let r = 0; r < worldSize; r++) {
      const part = shardPlan(plan, buckets, r);
      for (const block of part.stepBlock) seen[block]!++;
      elements += part.elements;
      // balanced over all the buckets, to within a block
      assert.ok(
        Math.abs(part.elements - total / worldSize) <= 16_384,
        `rank ${r} of ${worldSize}: ${part.elements}`,
      );
      part.plan.blocks.forEach((block, i) => assert.equal(block.block, i));
    }
    assert.deepEqual([...seen], new Array(plan.blocks.length).fill(1), `world size ${worldSize}`);
    assert.equal(elements, total);
  }
  // no bucket moves the gradient of the frozen parameter
  const frozen = parameterSlots(params[1]!);
  for (const bucket of gradientBuckets(entries, 1)) {
    if (bucket.arena !== frozen.arena) continue;
    assert.ok(frozen.grad + 100 <= bucket.grad || frozen.grad >= bucket.grad + bucket.length);
  }
});

/**
 * Rank 0 of a job whose other ranks are simulated: their gradients are added
 * by `allReduceSum`, their layout fingerprints copied from this rank's.
 */
function simulatedRanks(others: Float32Array[], entries: number): Collective {
  const add = (buffer: Float32Array | Float64Array) => {
    if (buffer.length === entries) {
      buffer.forEach((x, i) => (buffer[i] = x + others.length)); // every rank has every gradient
      return;
    }
    for (const other of others) {
      for (let i = 0; i < buffer.length; i++) buffer[i] = Math.fround(buffer[i]! + other[i]!);
    }
  };
  const gather = (buffer: Float32Array | Float64Array) => buffer.fill(buffer[0]!);
  return {
    rank: 0,
    worldSize: others.length + 1,
    allReduceSum: (buffer) => Promise.resolve(add(buffer)),
    allGather: (buffer) => Promise.resolve(void gather(buffer)),
    reduceScatter: () => Promise.reject(new Error("not simulated")),
    broadcast: () => Promise.reject(new Error("not simulated")),
    barrier: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

Deno.test("the averaged gradient is the float32 sum over the ranks divided by their number, rounded once", async () => {
  // magnitudes from subnormal to large, both signs: a power-of-two world size
  // multiplies by the reciprocal, any other divides; both must round as a division
  const size = 4096;
  const values = (seed: number) =>
    Float32Array.from(seededValues(size, seed), (x, i) => x * 2 ** ((i % 300) - 149));
  for (const worldSize of [2, 3, 4]) {
    const mine = values(1);
    const others = Array.from({ length: worldSize - 1 }, (_, r) => values(2 + r));
    const w = new ParameterStore().add("w", [size]);
    await using opt = new DecoupledLionW([w], {
      lr: 1e-3,
      workers: 0,
      nonFinite: "ignore",
      collective: simulatedRanks(others, 1),
      logger: null,
    });
    w.grad = mine;
    await opt.step();
    for (let i = 0; i < size; i++) {
      let sum = mine[i]!;
      for (const other of others) sum = Math.fround(sum + other[i]!);
      assert.equal(
        w.grad![i],
        Math.fround(sum / worldSize),
        `world size ${worldSize}, element ${i}`,
      );
    }
  }
});

Deno.test("sharded state (ZeRO-1) without MPI: in-process ranks equal one process stepping the averaged gradients", async () => {
  const shapes = [[40_000], [1_000], [70_000], [3, 5]];
  const initial = shapes.map((shape, i) => seededValues(shape.reduce((a, b) => a * b, 1), i + 1));
  const build = (collective?: Collective) => {
    const store = new ParameterStore();
    const params = shapes.map((shape, i) => store.add(`p${i}`, shape, initial[i]!));
    const opt = new DecoupledLionW(
      [{ params: params.slice(0, 2), weightDecay: 0.1 }, { params: params.slice(2), lr: 3e-3 }],
      {
        lr: 1e-2,
        workers: 0,
        logger: null,
        ...(collective ? { collective, shardState: true } : {}),
      },
    );
    return { params, opt };
  };
  // rank r's gradient of parameter i at step s; rank 1 has none for p1 at step 1
  const gradOf = (r: number, i: number, s: number, size: number) =>
    r === 1 && i === 1 && s === 1 ? null : seededValues(size, 1000 * s + 10 * i + r, 0.5);
  for (const worldSize of [2, 3]) {
    const ranks = inProcessRanks(worldSize).map((collective) => build(collective));
    const single = build();
    for (let s = 0; s < 3; s++) {
      await Promise.all(ranks.map(({ params, opt }, r) => {
        opt.zeroGrad();
        params.forEach((p, i) => (p.grad = gradOf(r, i, s, p.size)));
        return opt.step({ metrics: true });
      }));
      // what every rank steps: the float32 sum over the ranks (in rank order), divided once
      single.opt.zeroGrad();
      single.params.forEach((p, i) => {
        const sum = new Float32Array(p.size);
        for (let r = 0; r < worldSize; r++) {
          const g = gradOf(r, i, s, p.size);
          if (g !== null) sum.forEach((x, k) => (sum[k] = Math.fround(x + g[k]!)));
        }
        p.grad = sum.map((x) => Math.fround(x / worldSize));
      });
      await single.opt.step({ metrics: true });
      for (const [r, { params, opt }] of ranks.entries()) {
        params.forEach((p, i) =>
          assertBitsEqual(
            p.data,
            single.params[i]!.data,
            `${worldSize} ranks, rank ${r}, step ${s}, p${i}`,
          )
        );
        const metrics = opt.getMetrics();
        for (const [key, value] of Object.entries(single.opt.getMetrics())) {
          assert.ok(
            Math.abs(metrics[key]! - value) <= 1e-9 * Math.max(1, Math.abs(value)),
            `${key}`,
          );
        }
        // each rank keeps about its share of exp_avg
        assert.ok(opt.stateElements < single.opt.stateElements, `rank ${r} keeps a part`);
      }
    }
    // gathered, every rank's exp_avg is the single process's
    await Promise.all(ranks.map(({ opt }) => opt.pullState()));
    for (const { params, opt } of ranks) {
      params.forEach((p, i) =>
        assertBitsEqual(
          opt.state(p)!.expAvg,
          single.opt.state(single.params[i]!)!.expAvg,
          `exp_avg p${i}`,
        )
      );
    }
    await Promise.all([...ranks, single].map(({ opt }) => opt.close()));
  }
});

Deno.test("data parallel without MPI: the step decides from the scan the average took, as one process decides from its own", async () => {
  const shapes = [[40_000], [9]]; // three blocks, and one
  const initial = shapes.map(([size], i) => seededValues(size!, i + 7));
  const gradOf = (r: number, i: number, s: number, size: number) => {
    const g = seededValues(size, 100 * s + 10 * i + r, 0.5);
    if (s === 2 && r === 1 && i === 0) g[20_000] = NaN; // one rank's bad gradient, in the middle block
    return g;
  };
  const worldSize = 2;
  for (const backend of ["wasm", "js"] as const) {
    for (const shardState of [false, true]) {
      for (const nonFinite of ["error", "skip"] as const) {
        const label = `${backend}, ${shardState ? "sharded" : "replicated"}, ${nonFinite}`;
        const build = (collective?: Collective) => {
          const store = new ParameterStore();
          const params = shapes.map((shape, i) => store.add(`p${i}`, shape, initial[i]!));
          const opt = new DecoupledLionW(params, {
            lr: 1e-2,
            workers: 0,
            backend,
            maxGradNorm: 0.5,
            nonFinite,
            logger: null,
            ...(collective ? { collective, shardState } : {}),
          });
          return { params, opt };
        };
        const ranks = inProcessRanks(worldSize).map((collective) => build(collective));
        const single = build();
        for (let s = 0; s < 4; s++) {
          const steps = ranks.map(({ params, opt }, r) => {
            params.forEach((p, i) => (p.grad = gradOf(r, i, s, p.size)));
            return opt.step();
          });
          single.params.forEach((p, i) => {
            const [a, b] = [gradOf(0, i, s, p.size), gradOf(1, i, s, p.size)];
            p.grad = a.map((x, k) => Math.fround(Math.fround(x + b[k]!) / worldSize));
          });
          const outcome = await single.opt.step().then(() => "stepped", (e: Error) => e.message);
          const outcomes = await Promise.all(
            steps.map((step) => step.then(() => "stepped", (e: Error) => e.message)),
          );
          assert.equal(outcome, nonFinite === "error" && s === 2 ? outcomes[0] : "stepped", label);
          if (s === 2 && nonFinite === "error") assert.match(outcome, /p0/, label);
          for (const [r, { params, opt }] of ranks.entries()) {
            assert.equal(outcomes[r], outcome, `${label}: rank ${r}, step ${s}`);
            assert.deepEqual(opt.lastStep, single.opt.lastStep, `${label}: rank ${r}, step ${s}`);
            params.forEach((p, i) =>
              assertBitsEqual(
                p.data,
                single.params[i]!.data,
                `${label}: rank ${r}, step ${s}, p${i}`,
              )
            );
          }
        }
        // the clipping took the norm: every step's gradients were scaled
        assert.ok(single.opt.lastStep.gradScale < 1, `${label}: clipped`);
        await Promise.all([...ranks, single].map(({ opt }) => opt.close()));
      }
    }
  }
});
