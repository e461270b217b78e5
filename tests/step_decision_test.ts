import assert from "node:assert/strict";
import { decideStep, gateNeedsScan } from "../src/step_decision.ts";

const sums = (...values: number[]) => new Float64Array(values);

Deno.test("decideStep() updates at scale 1 when every block's Σg² is finite", () => {
  for (const nonFinite of ["error", "skip", "ignore"] as const) {
    assert.deepEqual(decideStep({ nonFinite }, sums(0, 1, 1e300)), {
      action: "update",
      gradScale: 1,
    });
  }
});

Deno.test("decideStep() aborts under 'error' and skips under 'skip' on a non-finite sum", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.deepEqual(decideStep({ nonFinite: "error" }, sums(1, bad, 2)), { action: "abort" });
    assert.deepEqual(decideStep({ nonFinite: "skip" }, sums(1, 2, bad)), { action: "skip" });
  }
});

Deno.test("decideStep() under 'ignore' needs no scan and always updates", () => {
  assert.equal(gateNeedsScan({ nonFinite: "ignore" }), false);
  assert.equal(gateNeedsScan({ nonFinite: "error" }), true);
  assert.equal(gateNeedsScan({ nonFinite: "skip" }), true);
  assert.deepEqual(decideStep({ nonFinite: "ignore" }, sums(NaN)), {
    action: "update",
    gradScale: 1,
  });
  assert.deepEqual(decideStep({ nonFinite: "error" }, null), { action: "update", gradScale: 1 });
});
