/**
 * Gradient clipping (`maxGradNorm`) against torch: `clip_grad_norm_` then
 * the reference's step, on every CPU engine.
 *
 * The tolerance, and why: torch takes the global norm in float32 (each
 * parameter's norm, then the norm of those, each summed in its own order),
 * we take it from float64 sums of squares, so the two norms may differ by a
 * few float32 ulps. The clipping coefficient is derived from the norm the
 * way torch rounds it, so the same norm gives the same coefficient bit for
 * bit (tests/step_decision_test.ts). Hence:
 * - `gradNorm` within 1e-6 relative (measured: up to 4.8e-7 on 40,000 elements);
 * - exp_avg within 1e-6 × the parameter's largest |exp_avg| (measured: 4.3e-7);
 * - parameters bit for bit: Lion takes the sign of the direction, which a
 *   difference of 1e-7 relative flips only where the direction is that
 *   close to 0 (no element of these fixtures is);
 * - steps the clipping leaves alone (norm under the threshold, first steps)
 *   match bit for bit as before.
 */

import assert from "node:assert/strict";
import { decodeF32, fixtures } from "./_fixtures.ts";
import { buildCase, ENGINES, feedStep } from "./_reference_case.ts";

const NORM_RTOL = 1e-6;
const MOMENT_TOLERANCE = 1e-6;

Deno.test("the clipped fixtures clip some steps and not others", () => {
  const norms = fixtures.clipped.flatMap((c) => c.steps.map((s) => s.gradNorm! / c.maxGradNorm!));
  assert.ok(norms.some((ratio) => ratio > 1) && norms.some((ratio) => ratio < 1));
});

for (const engine of ENGINES) {
  Deno.test(`maxGradNorm matches clip_grad_norm_ then the reference (${engine.name})`, async (t) => {
    for (const fixture of fixtures.clipped) {
      await t.step(fixture.name, async () => {
        const { opt, params } = buildCase(fixture, {
          ...engine.options,
          maxGradNorm: fixture.maxGradNorm!,
        });
        try {
          for (const [index, step] of fixture.steps.entries()) {
            const where = `${fixture.name} step ${index + 1}`;
            feedStep(opt, params, step);
            const grads = new Map([...params].map(([name, p]) => [name, p.grad?.slice()]));
            // every other step without metrics: the kernels' path without them is held to torch too
            await opt.step({ metrics: index % 2 === 0 });
            const { gradNorm, gradScale } = opt.lastStep;
            const expectedNorm = step.gradNorm!;
            assert.ok(
              Math.abs(gradNorm! - expectedNorm) <= NORM_RTOL * expectedNorm,
              `${where}: gradNorm ${gradNorm} but torch has ${expectedNorm}`,
            );
            assert.equal(gradScale < 1, expectedNorm > fixture.maxGradNorm!, `${where}: clipped`);
            for (const [name, param] of params) {
              assert.deepEqual(
                param.data,
                decodeF32(step.params[name]!),
                `${where} ${name} params`,
              );
              // the gradients are read, not rewritten
              assert.deepEqual(param.grad ?? undefined, grads.get(name), `${where} ${name} grad`);
              const expected = step.expAvg[name];
              if (expected === null || expected === undefined) continue;
              const want = decodeF32(expected);
              const got = opt.state(param)!.expAvg;
              const scale = want.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
              want.forEach((value, i) => {
                assert.ok(
                  Math.abs(got[i]! - value) <= MOMENT_TOLERANCE * scale,
                  `${where} ${name} exp_avg[${i}]: ${got[i]} but torch has ${value}`,
                );
              });
            }
          }
        } finally {
          await opt.close();
        }
      });
    }
  });
}
