/**
 * The adapter's config, as `model.save(..., { includeOptimizer: true })`
 * keeps it: the serializable options and the saved groups, and the options
 * read back from a config.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs-core";
import { OPTION_KEYS } from "../src/optimizer/option_rules.ts";
import type { DecoupledLionWOptions } from "../src/optimizer/options.ts";
import { groupsConfig, type SavedGroups } from "./_saved_groups.ts";

/**
 * The options `getConfig()` saves: all but the objects of this run
 * (`logger`, `collective`, and `exchange`, which means nothing without the
 * collective; `groups` is not an option of the core).
 */
const RUN_KEYS: readonly string[] = ["logger", "workerUrl", "collective", "exchange"];
const SERIALIZED_KEYS: readonly string[] = [
  ...OPTION_KEYS.filter((key) => !RUN_KEYS.includes(key)),
  "metrics",
  "deviceUpdate",
];

/**
 * The config of an optimizer with these options.
 *
 * @param options The core's options.
 * @param metrics Whether steps compute metrics.
 * @param saved The groups, where known.
 * @returns The serializable options (JSON has no Infinity: the default is left out).
 */
export function configOf(
  options: DecoupledLionWOptions,
  metrics: boolean,
  saved: SavedGroups | undefined,
): tf.serialization.ConfigDict {
  const config: tf.serialization.ConfigDict = {};
  const values = options as Record<string, unknown>;
  for (const key of SERIALIZED_KEYS) {
    const value = key === "metrics" ? metrics : values[key];
    if (value === undefined || value === Infinity) continue;
    config[key] = (Array.isArray(value) ? [...value] : value) as tf.serialization.ConfigDictValue;
  }
  if (options.workerUrl !== undefined) config.workerUrl = String(options.workerUrl);
  if (saved !== undefined) config.savedGroups = groupsConfig(saved);
  return config;
}

/**
 * The options in a config (tfjs-layers adds keys of its own, `customObjects`).
 *
 * @param config A config.
 * @returns The options.
 */
export function optionsOfConfig(config: tf.serialization.ConfigDict): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).filter(([key]) =>
      SERIALIZED_KEYS.includes(key) || key === "workerUrl" || key === "savedGroups"
    ),
  );
}
