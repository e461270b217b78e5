// Runs the bundled library under Node (no global Worker; Node 20's V8 has no
// relaxed SIMD): `deno bundle mod.ts -o bench/.build/lionw.mjs`, then
// `node .ci/node_smoke.mjs`. .ci/run does both.
import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../bench/.build/lionw.mjs";

const store = new ParameterStore();
const w = store.add("w", [4], [1, 2, 3, 4]);
const opt = new DecoupledLionW([w], { lr: 0.5, logger: null });
w.grad = [1, -1, 0, 1];
await opt.step({ metrics: true });
assert.deepEqual([...w.data], [0.5, 2.5, 3, 3.5]);
assert.equal(opt.getMetrics()["l2_norm/grad/w"], Math.sqrt(3));
assert.equal(opt.workers, 0, "Node has no global Worker: inline");
if (opt.backend === "js") {
  // Node 20's V8 has no relaxed SIMD: that, not WebGPU, is why
  assert.match(opt.backendChoice.reason, /lacks WebAssembly relaxed SIMD/);
}
await opt.close();
console.log(
  `node ${process.version}: backend ${opt.backend}, inline, step and metrics as expected`,
);
