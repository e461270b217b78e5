/**
 * The shard worker's module: the worker pool spawns it; it serves its shard
 * with the runner its init message names (see shard_loop.ts).
 *
 * @module
 */

import { openShardRunner } from "../src/engine/runner_spec.ts";
import { serveShardWorker } from "./shard_loop.ts";

serveShardWorker((init) => openShardRunner(init.runner, init.arenas));
