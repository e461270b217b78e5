/**
 * What the ranks of data-parallel training exchange each step (the
 * optimizer's `exchange` option).
 *
 * @module
 */

import { namesOf } from "../_internal/names_of.ts";

/**
 * What the ranks exchange each step:
 *
 * - `"float32"`: the gradients, summed and divided by the world size in
 *   float32: every rank steps the exact average (4 bytes an element).
 * - `"bfloat16"`: the gradients rounded to bfloat16 (nearest even), added
 *   in rank order in float32 on every rank, then averaged: half the bytes;
 *   every rank still steps the same average, bit for bit, run after run.
 * - `"sign-vote"`: Distributed Lion's majority vote (Liu et al., 2024):
 *   each rank keeps its own momentum and sends the sign of its update (one
 *   bit an element); every rank applies the voted sign (a tie gives 0) with
 *   the decoupled decay, so parameters stay bit-identical across the ranks.
 *
 * @example Half the bytes on the wire, the same parameters on every rank
 * ```ts
 * import { DecoupledLionW, type Exchange, LocalCollective, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const exchange: Exchange = "bfloat16";
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { lr: 0.1, collective: new LocalCollective(), exchange });
 * w.grad = new Float32Array([1.001, -3]); // 1.001 travels as 1 in bfloat16
 * await opt.step();
 * assert.deepEqual([...w.grad], [1, -3]);
 * ```
 */
export type Exchange = "float32" | "bfloat16" | "sign-vote";

/**
 * Every {@linkcode Exchange}, in the order the docs list them.
 *
 * @example Check a command line's value
 * ```ts
 * import { EXCHANGES } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(EXCHANGES, ["float32", "bfloat16", "sign-vote"]);
 * assert.equal(EXCHANGES.includes("sign-vote"), true);
 * ```
 */
export const EXCHANGES: readonly Exchange[] = namesOf({
  float32: 0,
  bfloat16: 0,
  "sign-vote": 0,
});
