/**
 * The demo's command-line flags: `deno task demo` parses them, and
 * `deno task demo:dist` checks the ones it passes on to every rank before it
 * launches them.
 *
 * @module
 */

/** The flags of `demo/main.ts`, as `node:util`'s `parseArgs` takes them. */
export const DEMO_OPTIONS = {
  steps: { type: "string" },
  batch: { type: "string" },
  workers: { type: "string" },
  backend: { type: "string" },
  seed: { type: "string" },
  "eval-every": { type: "string" },
  out: { type: "string" },
  resume: { type: "boolean" },
  mpi: { type: "boolean" },
  exchange: { type: "string" },
  "stop-at": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Their names. */
export const DEMO_FLAGS: readonly string[] = Object.keys(DEMO_OPTIONS);
