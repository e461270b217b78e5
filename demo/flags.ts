/**
 * The demo's command-line flags: `deno task demo` parses them, and
 * `deno task demo:dist` checks the ones it passes on to every rank before it
 * launches them.
 *
 * @module
 */

/** The flags of `demo/main.ts`. */
export const DEMO_FLAGS: readonly string[] = [
  "steps",
  "batch",
  "workers",
  "backend",
  "seed",
  "eval-every",
  "out",
  "resume",
  "mpi",
  "stop-at",
  "help",
];
