/**
 * The shard worker's module: the worker pool spawns it; it serves its shard
 * with the runner its init message names (see shard_loop.ts).
 *
 * @module
 */

import { type DeviceRunnerOpener, openShardRunner } from "../src/engine/runner_spec.ts";
import { serveShardWorker } from "./shard_loop.ts";

// a gpujs shard's device runner, loaded only by a shard that runs gpu.js
const openDevice: DeviceRunnerOpener = async (mode, kernel, memories) =>
  (await import("../gpu/device_runner.ts")).openDeviceRunner(mode, kernel, memories);

serveShardWorker((init) => openShardRunner(init.runner, init.arenas, openDevice));
