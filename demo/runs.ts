/**
 * The demo's two runs: their names in the outputs and their labels. A file
 * of its own so that the page's charts need not bundle the trainer (tfjs).
 *
 * @module
 */

/** The two optimizers, as named in the outputs. */
export const RUNS = ["lionw", "adam"] as const;
/** One of {@linkcode RUNS}. */
export type RunName = typeof RUNS[number];
/** How tables and charts label each run. */
export const RUN_LABELS: Readonly<Record<RunName, string>> = {
  lionw: "DecoupledLionW",
  adam: "Adam (tfjs)",
};
