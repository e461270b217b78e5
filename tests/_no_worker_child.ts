/**
 * Child process of worker_pool_test.ts: runs the shared scenario with
 * `Worker` (and, with the argument "no-sab", `SharedArrayBuffer`) hidden, as
 * on Deno Deploy or a page that is not cross-origin isolated, and prints the
 * result as JSON.
 */

import { runScenario } from "./_scenario.ts";

const g = globalThis as Record<string, unknown>;
delete g.Worker;
if (Deno.args.includes("no-sab")) delete g.SharedArrayBuffer;
console.log(JSON.stringify(await runScenario({ workers: 2 })));
