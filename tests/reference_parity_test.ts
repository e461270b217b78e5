/**
 * Bit-exact parity with the PyTorch reference on every fixture case: params
 * and exp_avg after every step identical bit for bit, metrics within 1e-5.
 */

import assert from "node:assert/strict";
import {
  DecoupledLionW,
  type DecoupledLionWOptions,
  type Parameter,
  ParameterStore,
} from "../mod.ts";
import {
  assertBitsEqual,
  assertMetricsClose,
  decodeF32,
  type FixtureCase,
  fixtures,
} from "./_fixtures.ts";

const METRICS_RTOL = 1e-5;

/** Builds the store and optimizer a fixture case describes. */
export function buildCase(
  fixture: FixtureCase,
  options: DecoupledLionWOptions = {},
): { opt: DecoupledLionW; params: Map<string, Parameter> } {
  const store = new ParameterStore();
  const params = new Map<string, Parameter>();
  for (const spec of fixture.params) {
    const param = store.add(spec.name, spec.shape, decodeF32(spec.initial));
    param.requiresGrad = spec.requiresGrad;
    params.set(spec.name, param);
  }
  const opt = new DecoupledLionW(
    fixture.groups.map((group) => ({
      params: group.params.map((name) => params.get(name)!),
      ...(group.lr === undefined ? {} : { lr: group.lr }),
      ...(group.betas === undefined ? {} : { betas: group.betas }),
      ...(group.weightDecay === undefined ? {} : { weightDecay: group.weightDecay }),
    })),
    {
      lr: fixture.defaults.lr,
      betas: fixture.defaults.betas,
      weightDecay: fixture.defaults.weightDecay,
      logger: null,
      nonFinite: "ignore",
      ...options,
    },
  );
  return { opt, params };
}

/** Feeds a fixture step's learning rates and gradients. */
export function feedStep(
  opt: DecoupledLionW,
  params: Map<string, Parameter>,
  step: FixtureCase["steps"][number],
): void {
  step.lrs.forEach((lr, g) => (opt.paramGroups[g]!.lr = lr));
  for (const [name, grad] of Object.entries(step.grads)) {
    params.get(name)!.grad = grad === null ? null : decodeF32(grad);
  }
}

/** Asserts params and exp_avg equal the reference's after `step`. */
export function assertStepMatches(
  opt: DecoupledLionW,
  params: Map<string, Parameter>,
  step: FixtureCase["steps"][number],
  where: string,
): void {
  for (const [name, param] of params) {
    assertBitsEqual(param.data, decodeF32(step.params[name]!), `${where} ${name} params`);
    const expected = step.expAvg[name];
    const state = opt.state(param);
    if (expected === null || expected === undefined) {
      assert.equal(state, undefined, `${where} ${name} must have no state`);
    } else {
      assertBitsEqual(state!.expAvg, decodeF32(expected), `${where} ${name} exp_avg`);
    }
  }
}

Deno.test("fixtures come from the PyTorch reference", () => {
  assert.match(fixtures.torch, /^1\.13/);
  assert.ok(fixtures.cases.length >= 8);
});

/** Every engine must match torch bit for bit: kernels inline, and sharded over workers. */
const ENGINES: { name: string; options: DecoupledLionWOptions }[] = [
  { name: "js inline", options: { backend: "js", workers: 0 } },
  { name: "wasm inline", options: { backend: "wasm", workers: 0 } },
  { name: "wasm exact-fma inline", options: { backend: "wasm", fma: "exact", workers: 0 } },
  { name: "wasm 1 worker", options: { backend: "wasm", workers: 1 } },
  { name: "wasm 2 workers", options: { backend: "wasm", workers: 2 } },
  { name: "wasm 3 workers", options: { backend: "wasm", workers: 3 } },
  { name: "js 2 workers", options: { backend: "js", workers: 2 } },
];

for (const engine of ENGINES) {
  Deno.test(`DecoupledLionW matches torch bit for bit (${engine.name})`, async (t) => {
    for (const fixture of fixtures.cases) {
      await t.step(fixture.name, async () => {
        const { opt, params } = buildCase(fixture, engine.options);
        try {
          for (const [index, step] of fixture.steps.entries()) {
            feedStep(opt, params, step);
            await opt.step({ metrics: true });
            assertStepMatches(opt, params, step, `${fixture.name} step ${index + 1}`);
            if (Object.keys(step.metricsOwnGroup).length > 0) {
              assertMetricsClose(opt.getMetrics(), step.metricsOwnGroup, METRICS_RTOL, "metrics");
            }
          }
        } finally {
          await opt.close();
        }
      });
    }
  });
}

Deno.test("metrics use each parameter's own group, where the reference uses group 0", async () => {
  const fixture = fixtures.cases.find((c) => c.name === "multi_group")!;
  const { opt, params } = buildCase(fixture);
  const groupZero = new Set(fixture.groups[0]!.params);
  let differing = 0;
  for (const step of fixture.steps) {
    feedStep(opt, params, step);
    await opt.step({ metrics: true });
    const ours = opt.getMetrics();
    for (const [name, value] of Object.entries(step.metricsReference)) {
      const param = name.split("/").slice(2).join("/");
      if (groupZero.has(param)) {
        const scale = Math.max(Math.abs(value), 1e-30);
        assert.ok(Math.abs(ours[name]! - value) <= METRICS_RTOL * Math.max(scale, 1), name);
      } else if (Math.abs(ours[name]! - value) > 1e-3 * Math.abs(value)) {
        differing++; // the reference's group-0 hyperparameters give other values here
      }
    }
  }
  assert.ok(differing > 0, "the fixture must show the reference's group-0 defect");
  await opt.close();
});
