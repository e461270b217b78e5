/**
 * Fault injection for the tests: optimizers built inside
 * {@linkcode withShardFault} run their shard workers from
 * tests/_faulty_shard_worker.ts, one of which fails as asked.
 *
 * @module
 */

import { testSeams } from "../src/_internal/testing.ts";

/** The environment variable the faulty worker reads its fault from. */
export const FAULT_ENV = "LIONW_TEST_SHARD_FAULT";

/** Which worker fails, how, and at which of its updates (0: the first). */
export interface ShardFault {
  readonly worker: number;
  readonly mode: "throw" | "die";
  readonly atUpdate: number;
  /** Where it fails: the update (default), or the caution count of a cautious step. */
  readonly phase?: "update" | "count";
}

/**
 * Runs `fn` with pools whose worker `fault.worker` fails at its update
 * `fault.atUpdate` (workers respawned after a failure count afresh).
 *
 * @param fault The fault.
 * @param fn Builds and steps optimizers.
 * @returns What `fn` returns.
 */
export async function withShardFault<T>(fault: ShardFault, fn: () => Promise<T>): Promise<T> {
  Deno.env.set(FAULT_ENV, JSON.stringify(fault));
  testSeams.shardWorkerUrl = new URL("./_faulty_shard_worker.ts", import.meta.url);
  try {
    return await fn();
  } finally {
    testSeams.shardWorkerUrl = undefined;
    Deno.env.delete(FAULT_ENV);
  }
}
