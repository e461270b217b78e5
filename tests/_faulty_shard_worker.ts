/**
 * A shard worker that fails on purpose, for the fault tests: the real
 * worker loop and runner, with the runner of one worker failing at one
 * update, as `LIONW_TEST_SHARD_FAULT` (set by `withShardFault()`) says.
 *
 * @module
 */

import { openDeviceRunner } from "../gpu/device_runner.ts";
import { openShardRunner } from "../src/engine/runner_spec.ts";
import { serveShardWorker } from "../workers/shard_loop.ts";
import { FAULT_ENV, type ShardFault } from "./_shard_fault.ts";

/** A fault's own error class, so tests can see the name cross the thread. */
class InjectedFault extends Error {
  override name = "InjectedFault";
}

const text = Deno.env.get(FAULT_ENV);
const fault: ShardFault | undefined = text === undefined ? undefined : JSON.parse(text);

serveShardWorker(async (init) => {
  const runner = await openShardRunner(init.runner, init.arenas, openDeviceRunner);
  if (fault === undefined || init.index !== fault.worker) return runner;
  let updates = 0;
  let counts = 0;
  return {
    ...runner,
    count(groups, out) {
      if (fault.phase !== "count" || counts++ !== fault.atUpdate) return runner.count(groups, out);
      throw new InjectedFault(`injected fault in the count of shard worker ${init.index}`);
    },
    update(groups, writes, partials, caution) {
      if (fault.phase === "count" || updates++ !== fault.atUpdate) {
        return runner.update(groups, writes, partials, caution);
      }
      if (fault.mode === "throw") {
        throw new InjectedFault(`injected fault in shard worker ${init.index}`);
      }
      // uncaught: the worker dies while its step waits
      setTimeout(() => {
        throw new InjectedFault(`injected death of shard worker ${init.index}`);
      });
      return new Promise<void>(() => {});
    },
  };
});
