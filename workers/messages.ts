/**
 * The messages between the worker pool and a shard worker: two at start-up
 * and one at the end; steps go through the control block, not messages.
 *
 * @module
 */

import type { RunnerSpec } from "../src/engine/runner_spec.ts";
import type { SerializedError } from "../src/engine/shard_error.ts";
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
  /** What the worker's shard runner is made from. */
  readonly runner: RunnerSpec;
}

/**
 * Worker → main: ready to take steps, or why not; and, after the `stop`
 * flag, that it has released what it held (its device) and is ending.
 */
export type ReadyMessage =
  | { readonly type: "ready"; readonly index: number }
  | { readonly type: "closed"; readonly index: number }
  | { readonly type: "error"; readonly index: number; readonly err: SerializedError };
