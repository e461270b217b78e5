import assert from "node:assert/strict";
import { balanceShards } from "../src/step/shards.ts";

Deno.test("balanceShards() cuts blocks into ranges of about equal elements", () => {
  assert.deepEqual([...balanceShards([4, 4, 4, 4], 2)], [0, 2, 4]);
  assert.deepEqual([...balanceShards([4, 4, 4, 4], 3)], [0, 1, 3, 4]);
  assert.deepEqual([...balanceShards([10, 1, 1, 1, 1], 2)], [0, 1, 5]);
  assert.deepEqual([...balanceShards([5], 3)], [0, 0, 1, 1]);
  assert.deepEqual([...balanceShards([], 2)], [0, 0, 0]);
  const small = new Array(1000).fill(1000);
  assert.deepEqual([...balanceShards(small, 2)], [0, 500, 1000]);
});
