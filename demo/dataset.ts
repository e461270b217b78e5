/**
 * The names as a character-level dataset, as in makemore: each position of
 * each name (with `.` for the start padding and the end) is one example,
 * the `context` characters before it predicting it.
 *
 * @module
 */

import { type Random, shuffle } from "./rng.ts";

/** The alphabet: `.` (start and end of a name) and a–z. */
export const ALPHABET = ".abcdefghijklmnopqrstuvwxyz";

/** Examples: `count` rows of `context` character indices, and the next character of each. */
export interface Examples {
  readonly count: number;
  readonly context: number;
  readonly x: Int32Array;
  readonly y: Int32Array;
}

/** The split dataset. */
export interface NameDataset {
  readonly train: Examples;
  readonly val: Examples;
  readonly trainNames: readonly string[];
  readonly valNames: readonly string[];
}

/**
 * The names the demo learns: lower-cased, letters only (hyphenated names
 * are left out), each once, sorted, so the list is the same wherever it
 * is read.
 *
 * @param lists The raw lists.
 * @returns The names.
 */
export function cleanNames(...lists: readonly string[][]): string[] {
  const names = new Set<string>();
  for (const list of lists) {
    for (const name of list) {
      const lower = name.toLowerCase();
      if (/^[a-z]+$/.test(lower)) names.add(lower);
    }
  }
  return [...names].sort();
}

/**
 * Shuffles the names and splits them (by name, so no name is in both) into
 * training and validation examples.
 *
 * @param names The names.
 * @param options Context length, validation share and the generator.
 * @returns The dataset.
 */
export function splitNames(
  names: readonly string[],
  options: { context: number; valFraction: number; random: Random },
): NameDataset {
  const shuffled = shuffle([...names], options.random);
  const valCount = Math.round(shuffled.length * options.valFraction);
  const valNames = shuffled.slice(0, valCount);
  const trainNames = shuffled.slice(valCount);
  return {
    train: examplesOf(trainNames, options.context),
    val: examplesOf(valNames, options.context),
    trainNames,
    valNames,
  };
}

/**
 * Every example of `names`.
 *
 * @param names The names.
 * @param context Characters of context.
 * @returns The examples.
 */
export function examplesOf(names: readonly string[], context: number): Examples {
  const count = names.reduce((total, name) => total + name.length + 1, 0);
  const x = new Int32Array(count * context);
  const y = new Int32Array(count);
  let row = 0;
  for (const name of names) {
    const window = new Array<number>(context).fill(0);
    for (const char of `${name}.`) {
      const next = ALPHABET.indexOf(char);
      x.set(window, row * context);
      y[row++] = next;
      window.shift();
      window.push(next);
    }
  }
  return { count, context, x, y };
}

/**
 * The rows `indices` of `examples`.
 *
 * @param examples The examples.
 * @param indices Which rows.
 * @returns Their contexts and targets.
 */
export function gather(
  examples: Examples,
  indices: ArrayLike<number>,
): { x: Int32Array; y: Int32Array } {
  const { context } = examples;
  const x = new Int32Array(indices.length * context);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i]!;
    x.set(examples.x.subarray(row * context, (row + 1) * context), i * context);
    y[i] = examples.y[row]!;
  }
  return { x, y };
}
