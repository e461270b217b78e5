import assert from "node:assert/strict";
import {
  clipCoefficient,
  decideStep,
  gateChecksFinite,
  gateNeedsScan,
  gateNeedsSquares,
  globalGradNorm,
  nonFiniteDecision,
} from "../src/step/step_decision.ts";

const sums = (...values: number[]) => new Float64Array(values);

Deno.test("decideStep() updates at scale 1 when every block's Σg² is finite", () => {
  for (const nonFinite of ["error", "skip", "ignore"] as const) {
    assert.deepEqual(decideStep({ nonFinite, maxGradNorm: Infinity }, sums(0, 1, 1e300)), {
      action: "update",
      gradScale: 1,
    });
  }
});

Deno.test("decideStep() aborts under 'error' and skips under 'skip' on a non-finite sum", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.deepEqual(decideStep({ nonFinite: "error", maxGradNorm: Infinity }, sums(1, bad, 2)), {
      action: "abort",
    });
    assert.deepEqual(decideStep({ nonFinite: "skip", maxGradNorm: Infinity }, sums(1, 2, bad)), {
      action: "skip",
    });
  }
});

Deno.test("decideStep() under 'ignore' needs no scan and always updates", () => {
  assert.equal(gateNeedsScan({ nonFinite: "ignore", maxGradNorm: Infinity }), false);
  assert.equal(gateNeedsScan({ nonFinite: "error", maxGradNorm: Infinity }), true);
  assert.equal(gateNeedsScan({ nonFinite: "skip", maxGradNorm: Infinity }), true);
  assert.deepEqual(decideStep({ nonFinite: "ignore", maxGradNorm: Infinity }, sums(NaN)), {
    action: "update",
    gradScale: 1,
  });
  assert.deepEqual(decideStep({ nonFinite: "error", maxGradNorm: Infinity }, null), {
    action: "update",
    gradScale: 1,
  });
});

Deno.test("decideStep() scales the gradients to maxGradNorm by torch's rounding", () => {
  // Σg² = 9 + 16 = 25: norm 5; torch: f32(1 / f32(5 + f32(1e-6))) · f32(2), clamped at 1
  const coefficient = Math.fround(Math.fround(1 / Math.fround(5 + Math.fround(1e-6))) * 2);
  assert.equal(globalGradNorm(sums(9, 16)), 5);
  for (const nonFinite of ["error", "skip", "ignore"] as const) {
    const gate = { nonFinite, maxGradNorm: 2 };
    assert.equal(gateNeedsScan(gate), true);
    assert.deepEqual(decideStep(gate, sums(9, 16)), { action: "update", gradScale: coefficient });
    // a norm under the threshold: factor min(1, ·) = 1, the plain update
    assert.deepEqual(decideStep(gate, sums(1, 2)), { action: "update", gradScale: 1 });
  }
  assert.ok(coefficient < 0.4 && coefficient > 0.39999);
  // the non-finite policy comes first
  assert.deepEqual(decideStep({ nonFinite: "skip", maxGradNorm: 2 }, sums(NaN, 1)), {
    action: "skip",
  });
});

Deno.test("clipCoefficient() matches torch 1.13 where a plain division would not", () => {
  // values from torch: (max_norm / (torch.tensor(total, dtype=float32) + 1e-6)).clamp(max=1)
  const torch: [number, number, number][] = [
    [3, 1, 0.33333322405815125],
    [0.7, 0.5, 0.7142847180366516],
    [12345.678, 1, 8.100000559352338e-05],
    [1e-3, 1e-4, 0.09990008920431137],
    [583.78466796875, 2.169507668846216, 0.0037162809167057276],
    [732.4742431640625, 0.16264401533743217, 0.0002220474270870909],
  ];
  for (const [total, maxNorm, expected] of torch) {
    assert.equal(clipCoefficient(maxNorm, Math.fround(total)), expected, `${total}, ${maxNorm}`);
  }
  // a division rounded once is 1 ulp off torch on the last two (23% of random cases)
  const divided = (maxNorm: number, total: number) =>
    Math.fround(Math.fround(maxNorm) / Math.fround(total + Math.fround(1e-6)));
  assert.equal(divided(2.169507668846216, 583.78466796875), 0.003716280683875084);
  assert.equal(divided(0.16264401533743217, 732.4742431640625), 0.00022204741253517568);
  assert.equal(clipCoefficient(1, 0.5), 1);
});

Deno.test("the gate's questions, asked once for every engine and the device path", () => {
  const gates = (["error", "skip", "ignore"] as const).flatMap((nonFinite) =>
    [Infinity, 1].map((maxGradNorm) => ({ nonFinite, maxGradNorm }))
  );
  for (const gate of gates) {
    const checks = gateChecksFinite(gate);
    assert.equal(checks, gate.nonFinite !== "ignore");
    // what a non-finite verdict does is what decideStep does with one
    const decided = decideStep(gate, sums(NaN));
    if (checks) assert.deepEqual(nonFiniteDecision(gate), decided);
    else assert.deepEqual(nonFiniteDecision(gate), { action: "update", gradScale: 1 });
    assert.equal(gateNeedsScan(gate), checks || gateNeedsSquares(gate));
  }
});
