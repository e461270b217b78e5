/**
 * Child process of import_test.ts, run with `--no-config` (no import map, as
 * in a project that imports this package): one step with the backend named
 * by the first argument; prints the backend and the new values as JSON.
 */

import { DecoupledLionW, ParameterStore } from "../mod.ts";

const backend = Deno.args[0] as "wasm" | "js" | "gpujs";
const w = new ParameterStore().add("w", [4], [1, 1, 1, 1]);
await using opt = new DecoupledLionW([w], {
  backend,
  gpuMode: "cpu",
  lr: 0.5,
  logger: null,
});
w.grad = [1, -1, 0, 2];
await opt.step();
console.log(JSON.stringify({ backend: opt.backend, data: [...w.data] }));
