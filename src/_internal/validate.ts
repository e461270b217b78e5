/**
 * Hyperparameter checks shared by the constructor, the group setters and
 * `loadStateDict`. Each names the bad value in the message.
 *
 * @module
 */

import { formatValue } from "./format.ts";

/**
 * A check of one value: returns it (or a frozen copy) when valid, throws a
 * `TypeError` or `RangeError` that starts with `action` and names `path`.
 */
export type ValueCheck<T> = (action: string, path: string, value: unknown) => T;

function requireNumber(action: string, path: string, value: unknown): asserts value is number {
  if (typeof value !== "number") {
    throw new TypeError(
      `${action} as '${path}' must be a number: current value is ${formatValue(value)}`,
    );
  }
}

/**
 * Checks a learning rate given at construction (or a loaded `initialLr`): a
 * finite number > 0, as the reference requires. Weight decay follows
 * `lr / initialLr`, so an `initialLr` of 0 would have no meaning.
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
 * Checks a learning rate set by a schedule (or a loaded group's current
 * `lr`): a finite number >= 0. The reference's `step()` accepts 0 (a warmup's
 * first step, a cosine's last): parameters stay, the moment still moves.
 *
 * @param action The start of the message.
 * @param path The value's name.
 * @param value The value.
 * @returns The value.
 */
export function checkScheduledLr(action: string, path: string, value: unknown): number {
  return checkFiniteNonNegative(action, path, value);
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
 * Checks a weight decay: a finite number >= 0 (torch's own optimizers refuse
 * a negative one: it would grow the weights every step).
 *
 * @returns The value.
 */
export function checkWeightDecay(action: string, path: string, value: unknown): number {
  return checkFiniteNonNegative(action, path, value);
}

function checkFiniteNonNegative(action: string, path: string, value: unknown): number {
  requireNumber(action, path, value);
  if (!(value >= 0) || value === Infinity) {
    throw new RangeError(
      `${action} as '${path}' must be a finite number >= 0: current value is ${formatValue(value)}`,
    );
  }
  return value;
}

/**
 * Checks that every element of an array-like is a number (NaN and ±Infinity
 * included: the non-finite policy deals with those). Typed arrays of floats
 * or integers hold nothing else, so only other array-likes are walked.
 *
 * @param action The start of the message.
 * @param path The array's name, e.g. "grad".
 * @param values The array-like, whose length was checked.
 * @throws {TypeError} Naming the first element that is not a number.
 */
export function checkNumbers(action: string, path: string, values: ArrayLike<unknown>): void {
  if (
    ArrayBuffer.isView(values) &&
    !(values instanceof BigInt64Array || values instanceof BigUint64Array)
  ) {
    return;
  }
  for (let i = 0; i < values.length; i++) {
    if (typeof values[i] !== "number") {
      throw new TypeError(
        `${action} as '${path}[${i}]' must be a number: current value is ${formatValue(values[i])}`,
      );
    }
  }
}

/**
 * Checks that an options object (or a group, a state dict) names only known
 * keys: JavaScript callers get no compile-time check, and a misspelt key
 * (`weight_decay`, `lrr`) would otherwise be dropped without a word.
 *
 * @param action The start of the message.
 * @param path The object's name, e.g. "options" or "paramGroups[1]".
 * @param value The object.
 * @param known The keys it may have.
 * @throws {TypeError} Naming the first unknown key and the closest known one.
 */
export function checkKnownKeys(
  action: string,
  path: string,
  value: object,
  known: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const closest = closestName(key, known);
    throw new TypeError(
      `${action} as '${path}' has an unknown key ${formatValue(key)}${
        closest === undefined ? "" : `: did you mean ${formatValue(closest)}?`
      } (known: ${known.join(", ")})`,
    );
  }
}

/** Names other optimizers use for this library's keys (folded: lower case, no `_`). */
const SYNONYMS: Readonly<Record<string, string>> = {
  learningrate: "lr",
  beta1: "betas",
  beta2: "betas",
  wd: "weightDecay",
  decay: "weightDecay",
  decoupledweightdecay: "weightDecay",
  expavg: "expAvg",
  paramgroups: "paramGroups",
  step: "iterations",
};

/**
 * The known name a typo most likely meant: the same letters in another case
 * or style (`weight_decay` → `weightDecay`), another optimizer's name for it,
 * else the nearest by edit distance, if it is near enough to be a typo.
 *
 * @param key The unknown key.
 * @param known The known names.
 * @returns The suggestion, or `undefined`.
 */
export function closestName(key: string, known: readonly string[]): string | undefined {
  const fold = (name: string) => name.toLowerCase().replace(/[_\-\s]/g, "");
  const folded = fold(key);
  const same = known.find((name) => fold(name) === folded);
  if (same !== undefined) return same;
  const synonym = SYNONYMS[folded];
  if (synonym !== undefined && known.includes(synonym)) return synonym;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const distance = editDistance(folded, fold(name));
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * Checks a gradient clipping norm: a number > 0, `Infinity` meaning no clipping.
 *
 * @param action The start of the message.
 * @param path The value's name.
 * @param value The value.
 * @returns The value.
 */
export function checkMaxGradNorm(action: string, path: string, value: unknown): number {
  requireNumber(action, path, value);
  if (!(value > 0)) {
    throw new RangeError(
      `${action} as '${path}' must be a number > 0 (Infinity: no clipping): current value is ${
        formatValue(value)
      }`,
    );
  }
  return value;
}

/**
 * Checks a switch: `true` or `false`.
 *
 * @param action The start of the message.
 * @param path The value's name.
 * @param value The value.
 * @returns The value.
 */
export function checkBoolean(action: string, path: string, value: unknown): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(
      `${action} as '${path}' must be a boolean: current value is ${formatValue(value)}`,
    );
  }
  return value;
}
