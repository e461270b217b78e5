/**
 * Saves a small checkpoint to the path in its first argument: run by
 * tests/checkpoint_test.ts with write permission for that file's folder alone.
 *
 * @module
 */

import { DecoupledLionW, ParameterStore, saveCheckpoint } from "../mod.ts";

const w = new ParameterStore().add("w", [3], [1, 2, 3]);
await using opt = new DecoupledLionW([w], { workers: 0 });
w.grad = [1, -1, 1];
await opt.step();
await saveCheckpoint(opt, Deno.args[0]!);
