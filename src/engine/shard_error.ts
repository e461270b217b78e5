/**
 * {@linkcode ShardError}: what every engine rejects a step with when a
 * kernel, a device or a worker fails.
 *
 * @module
 */

/**
 * A step that failed in a kernel, on a device or in a shard worker (its
 * kernel threw, or the worker died). The message names where it failed and
 * the blocks it held; `cause` is the original error, with its name and its
 * stack (rebuilt on this thread when it came from a worker). After it, the
 * optimizer refuses steps until a state dict is loaded: parameters may be
 * partly updated.
 *
 * @example Recover from a failed step
 * ```ts
 * import { DecoupledLionW, ParameterStore, ShardError } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [4]);
 * await using opt = new DecoupledLionW([w], { workers: 0 });
 * const checkpoint = opt.stateDict();
 * try {
 *   w.grad = [1, 2, 3, 4];
 *   await opt.step();
 * } catch (error) {
 *   if (!(error instanceof ShardError)) throw error;
 *   opt.loadStateDict(checkpoint); // and restore the parameters
 * }
 * const error = new ShardError("shard worker 1 (blocks 0–8): boom", { cause: new TypeError("boom") });
 * assert.equal(error.name, "ShardError");
 * assert.equal((error.cause as Error).name, "TypeError");
 * ```
 */
export class ShardError extends Error {
  /**
   * Makes the error.
   *
   * @param message What failed, naming the worker (or thread) and its blocks.
   * @param options The original error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ShardError";
  }
}

/** An error as it crosses between threads: plain data. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

/**
 * An error as plain data, for a message or the control block.
 *
 * @param error Anything thrown.
 * @returns Its name, message and stack.
 */
export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  return {
    name: error.name,
    message: error.message,
    ...(error.stack === undefined ? {} : { stack: error.stack }),
  };
}

/**
 * Rebuilds an error from {@linkcode serializeError}'s data: same name,
 * message and stack (the thread it was thrown on).
 *
 * @param data The data.
 * @returns An `Error` with that name and stack.
 */
export function deserializeError(data: SerializedError): Error {
  const error = new Error(data.message);
  error.name = data.name;
  if (data.stack !== undefined) error.stack = data.stack;
  return error;
}

/**
 * Wraps a failure in a {@linkcode ShardError} whose message names where it
 * happened and says what it was.
 *
 * @param where Where, e.g. "shard worker 1 (blocks 0–8)".
 * @param error The original error (kept as `cause`).
 * @returns The error.
 */
export function shardFailure(where: string, error: Error): ShardError {
  return new ShardError(`Step failed in ${where}: ${error.name}: ${error.message}`, {
    cause: error,
  });
}
