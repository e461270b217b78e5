import assert from "node:assert/strict";
import { ParameterStore } from "../mod.ts";
import { parameterSlots } from "../src/store/slots.ts";
import { PARTIAL_COUNT } from "../src/kernels/kernel.ts";
import {
  blocksByArena,
  nonFiniteParameters,
  partialsByParameter,
  planStep,
} from "../src/step/step_plan.ts";

/** Two parameters of 10 and 3 elements, in groups 0 and 1, cut into blocks of 4. */
function twoParameterPlan(store = new ParameterStore()) {
  const a = store.add("a", [10]);
  const b = store.add("b", [3]);
  const plan = planStep([
    { param: a, slots: parameterSlots(a), group: 0 },
    { param: b, slots: parameterSlots(b), group: 1 },
  ], 4);
  return { a, b, plan };
}

Deno.test("planStep() cuts parameters into blocks counted from each tensor's start", () => {
  const { a, b, plan } = twoParameterPlan();
  // a: 4 + 4 + 2 elements, b: 3
  assert.deepEqual(plan.blocks.map((s) => [s.length, s.group, s.block]), [
    [4, 0, 0],
    [4, 0, 1],
    [2, 0, 2],
    [3, 1, 3],
  ]);
  assert.equal(plan.blocks[1]!.data, parameterSlots(a).data + 4);
  assert.equal(plan.blocks[1]!.grad, parameterSlots(a).grad + 4);
  assert.equal(plan.blocks[3]!.expAvg, parameterSlots(b).expAvg);
  assert.deepEqual(plan.params.map((p) => [p.firstBlock, p.blockCount]), [[0, 3], [3, 1]]);
});

Deno.test("planStep() of no parameters has no blocks", () => {
  assert.deepEqual(planStep([]), { params: [], blocks: [], names: [] });
});

Deno.test("blocksByArena() splits blocks by arena, keeping their order", () => {
  // 64 KiB arenas: three slots of 10,000 bytes and the kernels' tables fill one, so each
  // parameter gets its own
  const store = new ParameterStore({ arenaBytes: 65536 });
  const params = ["x", "y", "z"].map((name) => store.add(name, [2500]));
  const plan = planStep(
    params.map((param, i) => ({ param, slots: parameterSlots(param), group: i })),
    1024, // three blocks a parameter
  );
  assert.deepEqual(params.map((p) => parameterSlots(p).arena), [0, 1, 2]);
  const runs = blocksByArena([...plan.blocks].reverse());
  assert.deepEqual(runs.map((r) => r.arena), [0, 1, 2]);
  assert.deepEqual(runs.map((r) => r.segments.map((s) => s.block)), [
    [2, 1, 0],
    [5, 4, 3],
    [8, 7, 6],
  ]);
});

Deno.test("partialsByParameter() adds each parameter's blocks", () => {
  const { plan } = twoParameterPlan();
  // block k's sum j is 10·k + j
  const partials = Float64Array.from(
    { length: 4 * PARTIAL_COUNT },
    (_, i) => 10 * Math.floor(i / PARTIAL_COUNT) + (i % PARTIAL_COUNT),
  );
  const { names, sums } = partialsByParameter(plan, partials);
  assert.deepEqual(names, ["a", "b"]);
  // a: blocks 0, 1, 2 → 30 + 3j; b: block 3 → 30 + j
  assert.deepEqual([...sums], [30, 33, 36, 39, 42, 45, 30, 31, 32, 33, 34, 35]);
});

Deno.test("nonFiniteParameters() names the parameters with a non-finite block sum", () => {
  const { plan } = twoParameterPlan();
  assert.deepEqual(nonFiniteParameters(plan, new Float64Array([1, 2, 3, 4])), []);
  assert.deepEqual(nonFiniteParameters(plan, new Float64Array([1, NaN, 3, 4])), ["a"]);
  assert.deepEqual(nonFiniteParameters(plan, new Float64Array([1, 2, Infinity, NaN])), ["a", "b"]);
});
