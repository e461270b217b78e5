/**
 * Child of engine_factory_test.ts: the optimizer imported from its own
 * module, without the entry point that registers the engine's edges. Prints
 * what "auto" workers chose and what gpujs says, as JSON.
 *
 * @module
 */

import { DecoupledLionW } from "../src/optimizer/decoupled_lionw.ts";
import { ParameterStore } from "../src/store/parameter_store.ts";

const w = new ParameterStore().add("w", [2 ** 19]);
const opt = new DecoupledLionW([w], { logger: null });
const result: Record<string, unknown> = { workers: opt.workers, reason: opt.backendChoice.reason };
await opt.close();
try {
  new DecoupledLionW([new ParameterStore().add("v", [4])], { backend: "gpujs" });
} catch (error) {
  result.gpujs = (error as Error).message;
}
console.log(JSON.stringify(result));
