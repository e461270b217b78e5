/**
 * Child process of worker_pool_test.ts: a model large enough for
 * `workers: "auto"` to take workers (2^19 elements), where they cannot
 * start: run without --allow-read ("no-read"), or with a `Worker` whose
 * constructor throws ("spawn-throws"). Prints what "auto" chose and the
 * parameters after three steps, as JSON.
 */

import { DecoupledLionW, ParameterStore } from "../mod.ts";

if (Deno.args.includes("spawn-throws")) {
  (globalThis as Record<string, unknown>).Worker = class {
    constructor() {
      throw new DOMException("Worker creation is blocked by this page's policy", "SecurityError");
    }
  };
}
const size = 2 ** 19;
const w = new ParameterStore().add("w", [size], Array.from({ length: size }, (_, i) => i % 7 - 3));
const workers = Deno.args.includes("explicit") ? 2 : "auto";
const opt = new DecoupledLionW([w], { lr: 0.1, weightDecay: 0.01, workers, logger: null });
const result: Record<string, unknown> = { workers: opt.workers };
try {
  for (let step = 0; step < 3; step++) {
    w.grad = w.data.map((x, i) => x - (i % 5) + step);
    await opt.step();
  }
  result.data = [...w.data.subarray(0, 64)];
  result.sum = w.data.reduce((a, b) => a + b, 0);
} catch (error) {
  result.error = (error as Error).message;
}
result.reason = opt.backendChoice.reason;
await opt.close();
console.log(JSON.stringify(result));
