/**
 * Hyperparameter checks shared by the constructor, the group setters and
 * `loadStateDict`. Each names the bad value in the message.
 *
 * @module
 */

import { formatValue } from "./_format.ts";

function requireNumber(action: string, path: string, value: unknown): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${action} as '${path}' must be a number: current value is ${formatValue(value)}`,
    );
  }
}

/**
 * Checks a learning rate: a finite number > 0.
 *
 * @param action The start of the message, e.g. "Cannot create optimizer".
 * @param path The value's name, e.g. "paramGroups[1].lr".
 * @param value The value.
 * @returns The value.
 */
export function checkLr(action: string, path: string, value: unknown): number {
  requireNumber(action, path, value);
  if (!(value > 0) || value === Infinity) {
    throw new RangeError(
      `${action} as '${path}' must be a finite number > 0: current value is ${formatValue(value)}`,
    );
  }
  return value;
}

/**
 * Checks betas: two numbers in [0, 1].
 *
 * @returns A frozen copy.
 */
export function checkBetas(
  action: string,
  path: string,
  value: unknown,
): readonly [number, number] {
  if (!Array.isArray(value) || value.length !== 2) {
    throw new TypeError(
      `${action} as '${path}' must be an array of two numbers: current value is ${
        formatValue(value)
      }`,
    );
  }
  value.forEach((beta: unknown, i) => {
    requireNumber(action, `${path}[${i}]`, beta);
    if (!(beta >= 0 && beta <= 1)) {
      throw new RangeError(
        `${action} as '${path}[${i}]' must be in [0, 1]: current value is ${formatValue(beta)}`,
      );
    }
  });
  return Object.freeze([value[0], value[1]] as [number, number]);
}

/**
 * Checks a weight decay: a finite number.
 *
 * @returns The value.
 */
export function checkWeightDecay(action: string, path: string, value: unknown): number {
  requireNumber(action, path, value);
  if (!Number.isFinite(value)) {
    throw new RangeError(
      `${action} as '${path}' must be a finite number: current value is ${formatValue(value)}`,
    );
  }
  return value;
}
