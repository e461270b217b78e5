/**
 * {@linkcode threadMayBlock}: whether this thread may block in
 * `Atomics.wait`, which synchronous steps on workers need.
 *
 * @module
 */

/**
 * Whether `Atomics.wait` may block this thread: true in Deno, Node and
 * workers, false on a browser's main thread (and where there is no shared
 * memory at all). Asks the runtime itself, with a wait that returns at once.
 *
 * @example In Deno
 * ```ts
 * import { threadMayBlock } from "@decoupled/lionw/tfjs";
 * import assert from "node:assert/strict";
 *
 * assert.equal(threadMayBlock(), true);
 * ```
 *
 * @returns Whether it may.
 */
export function threadMayBlock(): boolean {
  if (typeof SharedArrayBuffer !== "function") return false;
  try {
    // the value is not 1, so this returns "not-equal" at once where waiting is allowed
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}
