/**
 * What the adapter does on each tfjs backend: a row per backend, read
 * wherever the adapter's behaviour depends on the backend, as the core reads
 * its capability table; no other tfjs module tests a backend's name. (The
 * fused programs are registered per backend with tfjs itself:
 * `_device_programs.ts`.)
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";

/** What the adapter does on one tfjs backend. */
export interface TfjsBackendRow {
  /**
   * Where a step runs: on the library's engines over a mirror of the
   * variables in a store (`"host"`), or on tfjs's own tensors (`"device"`).
   */
  readonly path: "host" | "device";
  /** A tensor's values can be read through a view on the backend's heap, without a copy. */
  readonly heapViews: boolean;
  /** `tf.tensor(values)` copies the values, so a view may be handed over as it is. */
  readonly copiesOnCreate: boolean;
  /**
   * Its kernels read a tensor's storage afresh on every call, so new values
   * written into a variable's own storage are seen (tfjs-wasm's XNNPACK
   * operators cache weights packed by data id: not there).
   */
  readonly writableInPlace: boolean;
}

/** A backend without a row (tfjs-node's, say): the host path, reading and writing by copies. */
const OTHER: TfjsBackendRow = Object.freeze({
  path: "host",
  heapViews: false,
  copiesOnCreate: false,
  writableInPlace: false,
});

/** The rows, by tfjs backend name. */
export const TFJS_BACKENDS: Readonly<Record<string, TfjsBackendRow>> = Object.freeze({
  cpu: Object.freeze({
    path: "host",
    heapViews: false,
    copiesOnCreate: false,
    writableInPlace: true,
  }),
  wasm: Object.freeze({
    path: "host",
    heapViews: true,
    copiesOnCreate: true,
    writableInPlace: false,
  }),
  webgl: Object.freeze({ ...OTHER, path: "device" }),
  webgpu: Object.freeze({ ...OTHER, path: "device" }),
});

/**
 * The row of the active tfjs backend.
 *
 * @returns Its row, or the host path's copying row for a backend without one.
 */
export function activeBackendRow(): TfjsBackendRow {
  return TFJS_BACKENDS[tf.getBackend()] ?? OTHER;
}
