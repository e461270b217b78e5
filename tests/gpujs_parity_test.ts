/**
 * The gpujs backend against the PyTorch reference, in every gpu.js mode
 * available here (cpu, webasm, and webgpu where an adapter exists: Mesa's
 * llvmpipe in CI), inline and on 1 and 2 workers.
 *
 * GPU arithmetic may differ from torch in the last bit, so each step starts
 * from torch's own state (parameters written and marked, exp_avg loaded as
 * a state dict) and every element is held to the tolerance of
 * `_device_tolerance.ts`; metrics within 3.1e-5 (float32 sums of 256-element
 * blocks: 256 · 2^-24 per sum of squares, twice that for safety).
 */

import assert from "node:assert/strict";
import type { DecoupledLionW, LionParameterState, Parameter } from "../mod.ts";
import { groupConstants } from "../src/kernels/kernel.ts";
import { adapterReport } from "../gpu/gpujs_runtime.ts";
import { assertMetricsClose, decodeF32, type FixtureCase, fixtures } from "./_fixtures.ts";
import { deviceMismatch } from "./_device_tolerance.ts";
import { buildCase, feedStep } from "./_reference_case.ts";

const GPU_METRICS_RTOL = 2 * 256 * 2 ** -24;
const adapter = await adapterReport();

/**
 * gpu.js leaves NaN and infinities to the shader compiler (WGSL may assume
 * there are none); cautious groups are refused on gpujs (decoupled_lionw_test.ts).
 */
const CASES = [
  ...fixtures.cases.filter((c) => !["non_finite_ignore", "cautious"].includes(c.name)),
  // clip_grad_norm_ then the step: the device scales g by the coefficient the host's scan gave
  ...fixtures.clipped,
];

/** Puts torch's state before `index` into the optimizer. */
async function startFrom(
  opt: DecoupledLionW,
  params: Map<string, Parameter>,
  fixture: FixtureCase,
  index: number,
): Promise<void> {
  if (index === 0) return;
  const before = fixture.steps[index - 1]!;
  const state: Record<string, LionParameterState> = {};
  for (const [name, param] of params) {
    param.data.set(decodeF32(before.params[name]!));
    param.markWritten();
    const expAvg = before.expAvg[name];
    if (expAvg !== null && expAvg !== undefined) state[name] = { expAvg: decodeF32(expAvg) };
  }
  await opt.pullState();
  opt.loadStateDict({ ...opt.stateDict(), state });
}

/** Checks every parameter after step `index` against torch, within the device tolerance. */
async function assertStepClose(
  opt: DecoupledLionW,
  fixture: FixtureCase,
  index: number,
): Promise<void> {
  await opt.pullState();
  const step = fixture.steps[index]!;
  const before = index === 0 ? undefined : fixture.steps[index - 1];
  opt.paramGroups.forEach((group, groupIndex) => {
    const k = groupConstants(
      group.lr,
      group.initialLr,
      group.betas[0],
      group.betas[1],
      group.weightDecay,
    );
    for (const param of group.params) {
      const name = param.name;
      const where = `${fixture.name} step ${index + 1} ${name}`;
      const spec = fixture.params.find((p) => p.name === name)!;
      const p0 = decodeF32(before?.params[name] ?? spec.initial);
      const m0Encoded = before?.expAvg[name];
      const m0 = m0Encoded ? decodeF32(m0Encoded) : new Float32Array(param.size);
      const grad = step.grads[name];
      const expectedM = step.expAvg[name];
      const actualM = opt.state(param)?.expAvg;
      if (grad === null || grad === undefined || !spec.requiresGrad) {
        assert.deepEqual([...param.data], [...decodeF32(step.params[name]!)], `${where} untouched`);
        continue;
      }
      assert.ok(expectedM && actualM, `${where}: exp_avg`);
      // the gradient the kernel steps with: clipped, and negated where the group maximizes
      const { gradScale } = opt.lastStep;
      const g = decodeF32(grad).map((value) =>
        (group.maximize ? -1 : 1) * Math.fround(value * gradScale)
      );
      const expectedP = decodeF32(step.params[name]!);
      const expectedMValues = decodeF32(expectedM);
      for (let i = 0; i < param.size; i++) {
        const mismatch = deviceMismatch(k, {
          p: p0[i]!,
          m: m0[i]!,
          g: g[i]!,
          expectedP: expectedP[i]!,
          expectedM: expectedMValues[i]!,
          actualP: param.data[i]!,
          actualM: actualM[i]!,
        });
        assert.equal(mismatch, null, `${where}[${i}] (group ${groupIndex}): ${mismatch}`);
      }
    }
  });
}

const MODES = [
  { mode: "cpu", available: true },
  { mode: "webasm", available: true },
  { mode: "webgpu", available: adapter.available },
] as const;

for (const { mode, available } of MODES) {
  for (const workers of [0, 1, 2]) {
    Deno.test({
      name: `gpujs ${mode} on ${workers} workers matches torch within float rounding`,
      ignore: !available,
      fn: async (t) => {
        for (const fixture of CASES) {
          await t.step(fixture.name, async () => {
            const { opt, params } = buildCase(fixture, {
              backend: "gpujs",
              gpuMode: mode,
              workers,
              nonFinite: "error",
              ...(fixture.maxGradNorm === undefined ? {} : { maxGradNorm: fixture.maxGradNorm }),
            });
            try {
              for (const [index, step] of fixture.steps.entries()) {
                await startFrom(opt, params, fixture, index);
                feedStep(opt, params, step);
                await opt.step({ metrics: true });
                assert.equal(opt.backend, "gpujs");
                await assertStepClose(opt, fixture, index);
                if (Object.keys(step.metricsOwnGroup).length > 0) {
                  assertMetricsClose(
                    opt.getMetrics(),
                    step.metricsOwnGroup,
                    GPU_METRICS_RTOL,
                    "metrics",
                  );
                }
              }
            } finally {
              await opt.close();
            }
          });
        }
      },
    });
  }
}
