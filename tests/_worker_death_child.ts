/**
 * Child process of worker_pool_test.ts: the worker-death scenario, whose
 * intended uncaught error Deno prints to this process's stderr (which the
 * parent captures). Exits non-zero when an assertion fails.
 */

import { runWorkerFault } from "./_worker_fault.ts";

await runWorkerFault("die");
console.log("ok");
