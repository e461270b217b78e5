/**
 * Builds, feeds and checks fixture cases: the helpers every parity suite
 * (the CPU engines' bit-exact one, the gpujs one within its tolerance, the
 * optimizer's own tests) shares.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DecoupledLionW,
  type DecoupledLionWOptions,
  type Parameter,
  ParameterStore,
  type ParameterStoreOptions,
} from "../mod.ts";
import { assertBitsEqual, decodeF32, type FixtureCase } from "./_fixtures.ts";

/** Metrics match the reference within this relative tolerance. */
export const METRICS_RTOL = 1e-5;

/** The CPU engines, each held to torch: kernels inline, and sharded over workers. */
export const ENGINES: { name: string; options: DecoupledLionWOptions }[] = [
  { name: "js inline", options: { backend: "js", workers: 0 } },
  { name: "wasm inline", options: { backend: "wasm", workers: 0 } },
  { name: "wasm exact-fma inline", options: { backend: "wasm", fma: "exact", workers: 0 } },
  { name: "wasm 1 worker", options: { backend: "wasm", workers: 1 } },
  { name: "wasm 2 workers", options: { backend: "wasm", workers: 2 } },
  { name: "wasm 3 workers", options: { backend: "wasm", workers: 3 } },
  { name: "js 2 workers", options: { backend: "js", workers: 2 } },
];

/** Builds the store and optimizer a fixture case describes. */
export function buildCase(
  fixture: FixtureCase,
  options: DecoupledLionWOptions = {},
  storeOptions: ParameterStoreOptions = {},
): { opt: DecoupledLionW; params: Map<string, Parameter> } {
  const store = new ParameterStore(storeOptions);
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
      ...(group.maximize === undefined ? {} : { maximize: group.maximize }),
      ...(group.cautious === undefined ? {} : { cautious: group.cautious }),
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
