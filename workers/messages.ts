/**
 * The messages between the worker pool and a shard worker: two at start-up
 * and one at the end; steps go through the control block, not messages.
 *
 * @module
 */

import type { GpuJsMode } from "../gpu/gpujs_kernels.ts";
import type { ControlSizes } from "./control_block.ts";

/** Main → worker: everything a worker needs, sent once. */
export interface InitMessage {
  readonly type: "init";
  /** This worker's index. */
  readonly index: number;
  /** The control block's memory and sizes. */
  readonly control: SharedArrayBuffer;
  readonly sizes: ControlSizes;
  /** The store's arenas, shared. */
  readonly arenas: readonly WebAssembly.Memory[];
  /** The kernel backend. */
  readonly backend: "js" | "wasm" | "gpujs";
  /** The gpu.js mode, for `gpujs`. */
  readonly gpuMode: GpuJsMode | undefined;
  /** The wasm kernel's fma mode. */
  readonly fma: "auto" | "exact";
}

/**
 * Worker → main: ready to take steps, or why not; and, after the `stop`
 * flag, that it has released what it held (its device) and is ending.
 */
export type ReadyMessage =
  | { readonly type: "ready"; readonly index: number }
  | { readonly type: "closed"; readonly index: number }
  | {
    readonly type: "error";
    readonly index: number;
    readonly err: { readonly name: string; readonly message: string; readonly stack?: string };
  };
