import assert from "node:assert/strict";
import { ParameterStore } from "../mod.ts";
import { jsKernel } from "../src/kernels/js_kernel.ts";
import { groupConstants, PARTIAL_COUNT } from "../src/kernels/kernel.ts";
import { finalizeMetrics, sumMetricPartials } from "../src/step/metrics.ts";
import { parameterSlots } from "../src/store/slots.ts";
import { storeArenas } from "../src/store/parameter_store.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { seededValues } from "./_util.ts";

const SIZE = 1_001;
const constants = [groupConstants(3e-3, 1e-2, 0.9, 0.99, 0.05)];

function setUp() {
  const store = new ParameterStore();
  const w = store.add("w", [SIZE], seededValues(SIZE, 1));
  w.grad = seededValues(SIZE, 2);
  const slots = parameterSlots(w);
  slots.expAvgView.set(seededValues(SIZE, 3, 0.1));
  return { memory: storeArenas(store)[0]!.memory, slots, w };
}

/** Runs the kernel over `w` cut at `cuts`, returning per-segment partials. */
function runCut(cuts: number[]) {
  const { memory, slots, w } = setUp();
  const bounds = [0, ...cuts, SIZE];
  const segments = bounds.slice(1).map((end, i) => ({
    data: slots.data + bounds[i]!,
    grad: slots.grad + bounds[i]!,
    expAvg: slots.expAvg + bounds[i]!,
    length: end - bounds[i]!,
    group: 0,
    block: i,
  }));
  const partials = new Float64Array(segments.length * PARTIAL_COUNT);
  jsKernel.update(memory, segments, constants, partials, null);
  const gradSums = new Float64Array(segments.length);
  jsKernel.scanGradients(memory, segments, gradSums, true);
  const parts = segments.map((_, i) => ({
    names: ["w"],
    sums: partials.slice(i * PARTIAL_COUNT, (i + 1) * PARTIAL_COUNT),
  }));
  return { data: w.data.slice(), expAvg: slots.expAvgView.slice(), parts, gradSums };
}

Deno.test("js kernel: cutting a tensor anywhere changes no bit and no metric beyond rounding", () => {
  const whole = runCut([]);
  const wholeMetrics = finalizeMetrics(whole.parts[0]!);
  for (const cuts of [[1], [500], [3, 4, 5, 998], [7, 64, 333, 1000]]) {
    const cut = runCut(cuts);
    assertBitsEqual(cut.data, whole.data, `params cut at ${cuts}`);
    assertBitsEqual(cut.expAvg, whole.expAvg, `exp_avg cut at ${cuts}`);
    const metrics = finalizeMetrics(sumMetricPartials(cut.parts));
    for (const [name, value] of Object.entries(wholeMetrics)) {
      assert.ok(Math.abs(metrics[name]! - value) <= 1e-12 * Math.max(1, Math.abs(value)), name);
    }
    const gradSquares = cut.gradSums.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(gradSquares - whole.gradSums[0]!) <= 1e-12 * gradSquares);
    assert.ok(Math.abs(Math.sqrt(gradSquares) - wholeMetrics["l2_norm/grad/w"]!) < 1e-12);
  }
});
