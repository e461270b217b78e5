import assert from "node:assert/strict";
import {
  finalizeMetrics,
  METRIC_KINDS,
  postReduceMetrics,
  preReduceMetrics,
  sumMetricPartials,
} from "../mod.ts";
import { fixtures } from "./_fixtures.ts";

Deno.test("finalizeMetrics() takes roots and cosines of the sums", () => {
  //                  Σm² Σp² Σu² Σg²  Σu·g Σm·g
  const sums = new Float64Array([9, 16, 4, 25, -5, 15, 0, 1, 0, 0, 0, 0]);
  const metrics = finalizeMetrics({ names: ["a", "zero"], sums });
  assert.deepEqual(metrics, {
    "l2_norm/moment/a": 3,
    "l2_norm/param/a": 4,
    "l2_norm/update/a": 2,
    "l2_norm/grad/a": 5,
    "cosine/update_grad/a": -0.5,
    "cosine/moment_grad/a": 1,
    "l2_norm/moment/zero": 0,
    "l2_norm/param/zero": 1,
    "l2_norm/update/zero": 0,
    "l2_norm/grad/zero": 0,
    "cosine/update_grad/zero": 0, // zero vectors: 0, never NaN
    "cosine/moment_grad/zero": 0,
    // Composer's global norms: √(Σ over parameters)
    "l2_norm/moment/global": 3,
    "l2_norm/param/global": Math.sqrt(17),
    "l2_norm/update/global": 2,
    "l2_norm/grad/global": 5,
  });
  assert.deepEqual(
    Object.keys(metrics).slice(0, 6),
    METRIC_KINDS.map((kind) => `${kind}/a`),
  );
  assert.throws(() => finalizeMetrics({ names: ["a"], sums: new Float64Array(5) }), {
    name: "RangeError",
    message:
      "Cannot finalize metrics as 'sums' must hold 6 values per name (6): current length is 5",
  });
  assert.throws(() => finalizeMetrics({ names: ["global"], sums: new Float64Array(6) }), {
    name: "RangeError",
    message:
      "Cannot finalize metrics as a parameter is named 'global', the name of the global norms",
  });
});

Deno.test("global norms pre-reduce and post-reduce like any norm: exact across ranks", () => {
  const rank0 = finalizeMetrics({ names: ["a"], sums: new Float64Array([1, 4, 9, 16, 0, 0]) });
  const rank1 = finalizeMetrics({ names: ["a"], sums: new Float64Array([3, 5, 7, 9, 0, 0]) });
  const [pre0, pre1] = [preReduceMetrics(rank0), preReduceMetrics(rank1)];
  const summed = Object.fromEntries(Object.keys(pre0).map((k) => [k, pre0[k]! + pre1[k]!]));
  const whole = postReduceMetrics(summed);
  assert.equal(whole["l2_norm/grad/global"], 5); // √(16 + 9)
  assert.equal(whole["l2_norm/param/global"], 3); // √(4 + 5)
});

Deno.test("sumMetricPartials() adds element-wise and checks names", () => {
  const a = { names: ["x", "y"], sums: new Float64Array(12).fill(1) };
  const b = { names: ["x", "y"], sums: new Float64Array(12).fill(2) };
  assert.deepEqual([...sumMetricPartials([a, b]).sums], new Array(12).fill(3));
  assert.deepEqual([...a.sums], new Array(12).fill(1), "inputs are not changed");
  assert.throws(() => sumMetricPartials([]), RangeError);
  assert.throws(
    () => sumMetricPartials([a, { names: ["y", "x"], sums: b.sums }]),
    /part 1 has other parameter names than part 0/,
  );
});

Deno.test("preReduceMetrics() matches the reference's pre_reduce_metrics", () => {
  const { input, output } = fixtures.preReduce;
  const frozen = Object.freeze({ ...input });
  assert.deepEqual(preReduceMetrics(frozen), output);
});

Deno.test("postReduceMetrics() inverts preReduceMetrics(), with 0 for zero norms", () => {
  const { input, output } = fixtures.preReduce;
  const back = postReduceMetrics(output);
  for (const [name, value] of Object.entries(input)) {
    assert.ok(Math.abs(back[name]! - value) < 1e-12, name);
  }
  assert.deepEqual(
    postReduceMetrics({ "l2_norm/update/n": 0, "l2_norm/grad/n": 4, "cosine/update_grad/n": 0 }),
    {
      "l2_norm/update/n": 0,
      "l2_norm/grad/n": 2,
      "cosine/update_grad/n": 0,
    },
  );
});

Deno.test("preReduceMetrics() and postReduceMetrics() keep layer names with slashes", () => {
  const metrics = {
    "l2_norm/update/enc/0": 2,
    "l2_norm/grad/enc/0": 3,
    "cosine/update_grad/enc/0": 0.5,
  };
  assert.deepEqual(preReduceMetrics(metrics)["cosine/update_grad/enc/0"], 3);
  assert.deepEqual(postReduceMetrics(preReduceMetrics(metrics)), metrics);
});

Deno.test("preReduceMetrics() names what is missing", () => {
  assert.throws(() => preReduceMetrics({ "cosine/update_grad/w": 1 }), {
    name: "RangeError",
    message: "Cannot convert metric 'cosine/update_grad/w' as 'l2_norm/update/w' is missing",
  });
  assert.throws(() => postReduceMetrics({ "cosine/update/w": 1 }), /not named 'a_b'/);
  assert.throws(() => preReduceMetrics({ "cosine": 1 }), /not named 'kind\/vectors\/layer'/);
});
