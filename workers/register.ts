/**
 * Registers the worker pool with the engine (`src/engine/edges.ts`): the
 * entry points import this module, so that the core never imports
 * `workers/`.
 *
 * @module
 */

import { registerEngineEdge } from "../src/engine/edges.ts";
import { WORKER_URL, workerModuleUnreadable, WorkerPool } from "./worker_pool.ts";
import { workerThreadsAvailable } from "./worker_thread.ts";

registerEngineEdge({
  workers: {
    workerUrl: WORKER_URL,
    threadsAvailable: workerThreadsAvailable,
    moduleUnreadable: workerModuleUnreadable,
    createPool: (options) => new WorkerPool(options),
  },
});
