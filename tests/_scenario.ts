/**
 * A model that exercises sharding: tensors of several blocks, a tensor of
 * exactly one block, odd sizes and 300 small tensors, in two groups, with
 * gradients on most steps.
 */

import {
  DecoupledLionW,
  type DecoupledLionWOptions,
  ParameterStore,
  type ParameterStoreOptions,
} from "../mod.ts";
import assert from "node:assert/strict";
import { assertBitsEqual } from "./_fixtures.ts";
import { recordingLogger, seededValues } from "./_util.ts";

/** What a run produced: every param and exp_avg bit pattern, and the metrics. */
export interface ScenarioResult {
  bits: number[];
  metrics: Record<string, number>;
  workers: number;
  backend: string;
  warnings: string[];
  shared: boolean;
}

/** The tensor sizes of the scenario. */
export const SCENARIO_SIZES: number[] = [40_000, 16_384, 5, 3, 70_001, ...new Array(300).fill(37)];

/**
 * Runs 3 steps with metrics on the scenario model.
 *
 * @param options Optimizer options (workers, backend).
 * @param storeOptions Store options (arena size).
 * @param how `sync`: step with `stepSync()`, from the first step on.
 */
export async function runScenario(
  options: DecoupledLionWOptions,
  storeOptions: ParameterStoreOptions = {},
  how: { sync?: boolean } = {},
): Promise<ScenarioResult> {
  const store = new ParameterStore(storeOptions);
  const params = SCENARIO_SIZES.map((size, i) => store.add(`t${i}`, [size], seededValues(size, i)));
  const logger = recordingLogger();
  const opt = new DecoupledLionW(
    [
      { params: params.filter((_, i) => i % 2 === 0) },
      {
        params: params.filter((_, i) => i % 2 === 1),
        lr: 3e-3,
        betas: [0.3, 0.6],
        weightDecay: 0.1,
      },
    ],
    { lr: 1e-3, weightDecay: 1e-4, logger, ...options },
  );
  try {
    for (let step = 0; step < 3; step++) {
      params.forEach((
        p,
        i,
      ) => (p.grad = (i + step) % 7 === 3 ? null : seededValues(p.size, 1000 * step + i)));
      if (how.sync) opt.stepSync({ metrics: true });
      else await opt.step({ metrics: true });
    }
    const bits: number[] = [];
    for (const p of params) {
      for (const view of [p.data, opt.state(p)?.expAvg ?? new Float32Array(0)]) {
        bits.push(...new Uint32Array(view.slice().buffer));
      }
    }
    return {
      bits,
      metrics: opt.getMetrics(),
      workers: opt.workers,
      backend: opt.backend,
      warnings: logger.messages,
      shared: store.shared,
    };
  } finally {
    await opt.close();
  }
}

/**
 * Asserts two scenario runs are bit-identical: params, exp_avg and metrics.
 *
 * @param actual The run under test.
 * @param expected The reference run.
 * @param what What the run was, for the message.
 */
export function assertSameResult(actual: ScenarioResult, expected: ScenarioResult, what: string) {
  assertBitsEqual(
    new Float32Array(new Uint32Array(actual.bits).buffer),
    new Float32Array(new Uint32Array(expected.bits).buffer),
    `${what} params and exp_avg`,
  );
  assert.deepEqual(actual.metrics, expected.metrics, `${what}: metrics must be bit-identical`);
}
