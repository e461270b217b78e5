/**
 * Child process of step_sync_test.ts, run without --allow-read: a
 * synchronous step on workers that cannot load their module must fail at
 * once, saying so, instead of waiting for workers that never start.
 */

import { DecoupledLionW, ParameterStore } from "../mod.ts";

const w = new ParameterStore().add("w", [4], [1, 2, 3, 4]);
const opt = new DecoupledLionW([w], { workers: 2, logger: null });
w.grad = [1, 1, 1, 1];
const start = performance.now();
try {
  opt.stepSync();
  console.log(JSON.stringify({ stepped: true }));
} catch (error) {
  const ms = performance.now() - start;
  console.log(JSON.stringify({ message: (error as Error).message, ms, data: [...w.data] }));
}
await opt.close();
