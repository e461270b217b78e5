/**
 * The worker-fault scenario of worker_pool_test.ts: a shard worker throws in
 * its kernel, or dies of an uncaught error, during a step of a 2-worker
 * optimizer. The step must reject with a `ShardError` naming the shard, and
 * later steps must be refused until a state dict is loaded.
 *
 * The "die" case runs in a child process (tests/_worker_death_child.ts):
 * Deno prints a worker's uncaught error to stderr whatever the parent does
 * with the error event, and an intended death must not look like a failure
 * in the test output.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { withShardFault } from "./_shard_fault.ts";
import { seededValues } from "./_util.ts";

/**
 * Runs the scenario, asserting as it goes.
 *
 * @param mode How worker 1 fails.
 */
export function runWorkerFault(mode: "throw" | "die"): Promise<void> {
  // worker 1's first update goes through, its second fails
  return withShardFault({ worker: 1, mode, atUpdate: 1 }, () => faultScenario(mode));
}

async function faultScenario(mode: "throw" | "die"): Promise<void> {
  const store = new ParameterStore();
  const params = [0, 1, 2].map((i) => store.add(`p${i}`, [40_000], seededValues(40_000, i)));
  const opt = new DecoupledLionW(params, { workers: 2, logger: null });
  try {
    params.forEach((p, i) => (p.grad = seededValues(p.size, 10 + i)));
    await opt.step();
    const saved = opt.stateDict();
    await assert.rejects(opt.step(), (error: Error) => {
      assert.equal(error.name, "ShardError");
      assert.match(error.message, /shard worker 1 \(blocks \d+–\d+\)/i);
      if (mode === "throw") {
        assert.match(error.message, /InjectedFault: injected fault in shard worker 1/);
        // the worker's error crosses with its name and its stack
        const cause = error.cause as Error;
        assert.equal(cause.name, "InjectedFault");
        assert.match(cause.stack ?? "", /_faulty_shard_worker\.ts/);
      } else {
        assert.match(error.message, /died: .*injected death of shard worker 1/);
      }
      return true;
    });
    await assert.rejects(
      opt.step(),
      /Cannot step as an earlier step failed \(.*\): parameters may be partly updated, so load a state dict/,
    );
    opt.loadStateDict(saved);
    params.forEach((p, i) => p.data.set(seededValues(p.size, i)));
    await opt.step();
    assert.equal(opt.iterations, 2);
  } finally {
    await opt.close();
  }
}
