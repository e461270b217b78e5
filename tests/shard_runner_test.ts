import assert from "node:assert/strict";
import { ParameterStore, ShardError } from "../mod.ts";
import { parameterSlots } from "../src/store/slots.ts";
import { InlineEngine } from "../src/engine/inline_engine.ts";
import { jsKernel } from "../src/kernels/js_kernel.ts";
import { groupConstants, type LionKernel, PARTIAL_COUNT } from "../src/kernels/kernel.ts";
import { storeArenas } from "../src/store/parameter_store.ts";
import { inPlaceRunner, type ShardMeetings, stepShard } from "../src/engine/shard_runner.ts";
import type { StepDecision } from "../src/step/step_decision.ts";
import { planStep } from "../src/step/step_plan.ts";

const GROUPS = [groupConstants(0.5, 0.5, 0.9, 0.5, 0)];
const WRITES = { params: false, state: false };

/** w = [1, 1, 1] with gradient g, cut into blocks of 2. */
function setUp(grad: number[]) {
  const store = new ParameterStore();
  const w = store.add("w", [3], [1, 1, 1]);
  w.grad = grad;
  const plan = planStep([{ param: w, slots: parameterSlots(w), group: 0 }], 2);
  const memories = storeArenas(store).map((arena) => arena.memory);
  return { w, plan, memories };
}

/** An in-place js runner over `setUp(grad)`'s blocks, and a step without scan or metrics. */
function runnerFor(grad: number[]) {
  const { w, plan, memories } = setUp(grad);
  const runner = inPlaceRunner(jsKernel, memories);
  runner.assign(plan.blocks, WRITES);
  const step = {
    scan: false,
    squares: false,
    gradSquares: new Float64Array(2),
    groups: GROUPS,
    writes: WRITES,
    partials: null,
    counts: null,
  };
  return { w, runner, step };
}

/** Meetings of one shard: the given decision; a cautious step must not come. */
function meetings(decide: () => StepDecision): ShardMeetings {
  return {
    decide,
    caution: () => {
      throw new Error("no cautious group in these steps");
    },
  };
}

Deno.test("stepShard() scans, meets, then updates in place as decided", async () => {
  const { w, plan, memories } = setUp([1, -2, 2]);
  const runner = inPlaceRunner(jsKernel, memories);
  runner.assign(plan.blocks, WRITES);
  const gradSquares = new Float64Array(2);
  const partials = new Float64Array(2 * PARTIAL_COUNT);
  let metWith: number[] = [];
  const decision = await stepShard(
    runner,
    {
      scan: true,
      squares: true,
      gradSquares,
      groups: GROUPS,
      writes: WRITES,
      partials,
      counts: null,
    },
    meetings(() => {
      metWith = [...gradSquares]; // the scan is done before the shards meet
      return { action: "update", gradScale: 1 };
    }),
  );
  assert.deepEqual(decision, { action: "update", gradScale: 1 });
  assert.deepEqual(metWith, [5, 4]); // blocks [1, -2] and [2]
  // first step: p − lr·sign(g), m = lerp(0, g, 0.5)
  assert.deepEqual([...w.data], [0.5, 1.5, 0.5]);
  assert.equal(partials[3], 5); // Σg² of block 0, from the update pass
  assert.equal(partials[PARTIAL_COUNT + 3], 4);
});

Deno.test("stepShard() changes nothing when the decision is skip or abort", async () => {
  for (const action of ["skip", "abort"] as const) {
    const { w, runner, step } = runnerFor([1, 1, 1]);
    assert.deepEqual(await stepShard(runner, step, meetings(() => ({ action }))), { action });
    assert.deepEqual([...w.data], [1, 1, 1]);
  }
});

Deno.test("stepShard() hands the decision's gradient scale to the kernel, gradients untouched", async () => {
  const { w, runner, step } = runnerFor([0.5, -3, 1]);
  const partials = new Float64Array(2 * PARTIAL_COUNT);
  await stepShard(
    runner,
    { ...step, partials },
    meetings(() => ({ action: "update", gradScale: 0.25 })),
  );
  // g·0.25 = [0.125, -0.75, 0.25]: p − 0.5·sign(g), m = lerp(0, g·0.25, 0.5)
  assert.deepEqual([...w.data], [0.5, 1.5, 0.5]);
  assert.deepEqual([...w.grad!], [0.5, -3, 1]); // not rewritten
  assert.equal(partials[3], 0.125 ** 2 + 0.75 ** 2); // the metrics see the scaled gradient
  const expAvg = new Float32Array(parameterSlots(w).expAvgView);
  assert.deepEqual([...expAvg], [0.0625, -0.375, 0.125]);
});

Deno.test("the inline engine rejects a kernel's failure as a ShardError with the error as cause", async () => {
  const { plan, memories } = setUp([1, 1, 1]);
  const failing: LionKernel = {
    name: "js",
    scanGradients: (arena, segments, out, squares) =>
      jsKernel.scanGradients(arena, segments, out, squares),
    countAgreement: (arena, segments, groups, out) =>
      jsKernel.countAgreement(arena, segments, groups, out),
    averageGradients: (arena, segments, divisor, out, squares) =>
      jsKernel.averageGradients(arena, segments, divisor, out, squares),
    signVotes: (arena, segment, group) => jsKernel.signVotes(arena, segment, group),
    tallyVotes: (memory, tally) => jsKernel.tallyVotes(memory, tally),
    applyVotes: (arena, segment, lr, decay) => jsKernel.applyVotes(arena, segment, lr, decay),
    update() {
      throw new TypeError("kernel exploded");
    },
  };
  const engine = new InlineEngine({
    backend: "js",
    stateLives: "host",
    openRunner: () => Promise.resolve(inPlaceRunner(failing, memories)),
    openRunnerSync: () => inPlaceRunner(failing, memories),
  });
  const request = {
    plan,
    groups: GROUPS,
    gate: { nonFinite: "error", maxGradNorm: Infinity },
    metrics: false,
    writes: WRITES,
  } as const;
  const isKernelFailure = (error: Error) => {
    assert.ok(error instanceof ShardError);
    assert.equal(
      error.message,
      "Step failed in the calling thread (blocks 0–2): TypeError: kernel exploded",
    );
    assert.equal((error.cause as Error).name, "TypeError");
    return true;
  };
  await assert.rejects(engine.run(request), isKernelFailure);
  assert.throws(() => engine.runSync(request), isKernelFailure);
  await engine.close();
});

Deno.test("the inline engine takes the gate's decision from the scan", async () => {
  const { w, plan, memories } = setUp([1, NaN, 1]);
  const engine = new InlineEngine({
    backend: "js",
    stateLives: "host",
    openRunner: () => Promise.resolve(inPlaceRunner(jsKernel, memories)),
    openRunnerSync: () => inPlaceRunner(jsKernel, memories),
  });
  const request = { plan, groups: GROUPS, metrics: true, writes: WRITES };
  const skipped = await engine.run({
    ...request,
    gate: { nonFinite: "skip", maxGradNorm: Infinity },
  });
  assert.deepEqual(skipped.decision, { action: "skip" });
  const skippedSync = engine.runSync({
    ...request,
    gate: { nonFinite: "skip", maxGradNorm: Infinity },
  });
  assert.deepEqual(skippedSync.decision, { action: "skip" });
  assert.ok(Number.isNaN(skippedSync.gradSquares![0]!));
  assert.equal(skipped.partials, null);
  assert.ok(Number.isNaN(skipped.gradSquares![0]!));
  assert.deepEqual([...w.data], [1, 1, 1]);
  const ignored = await engine.run({
    ...request,
    gate: { nonFinite: "ignore", maxGradNorm: Infinity },
  });
  assert.deepEqual(ignored.decision, { action: "update", gradScale: 1 });
  assert.equal(ignored.gradSquares, null); // no scan under "ignore"
  assert.deepEqual([...w.data], [0.5, 1, 0.5]); // sign(NaN) moves nothing
  await engine.close();
});
