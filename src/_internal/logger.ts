/**
 * Where the optimizer sends warnings, such as the reference's warning for a
 * high weight decay.
 *
 * `console` is one. Pass `logger: null` to silence the optimizer.
 *
 * @example Collect warnings instead of printing them
 * ```ts
 * import { DecoupledLionW, type Logger, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const warnings: string[] = [];
 * const logger: Logger = { warn: (message) => warnings.push(message) };
 * const store = new ParameterStore();
 * await using _opt = new DecoupledLionW([store.add("w", [2])], { weightDecay: 0.01, logger });
 * assert.match(warnings[0]!, /weightDecay=0\.01/);
 * ```
 */
export interface Logger {
  /**
   * Receives one warning.
   *
   * @param message The warning, one line.
   */
  warn(message: string): void;
}
