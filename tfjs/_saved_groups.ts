/**
 * The parameter groups of a tfjs optimizer, as its config saves them: a
 * model compiled with `lionw({ groups })`, saved with its optimizer and
 * reloaded, trains on with the same groups, although the `groups` function
 * itself cannot be saved. Which variable is in which group is kept by
 * position in the order the optimizer was built with, as tfjs's own
 * optimizers keep their weights: a reloaded model's variables may carry
 * other names, and tfjs-layers camel-cases every string of a config it
 * loads (`dense_Dense1/kernel` comes back as `denseDense1/kernel`), so
 * names would not survive. Each group's hyperparameters are kept as they
 * are now.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs-core";
import type { DecoupledLionW } from "../src/optimizer/decoupled_lionw.ts";
import {
  type GroupHyperparameters,
  HYPERPARAMETER_NAMES,
  saveValues,
} from "../src/optimizer/hyperparameters.ts";
import { groupValues, type ParamGroupOptions } from "../src/optimizer/param_group.ts";
import type { Parameter } from "../src/store/parameter.ts";
import { checkKnownKeys, formatValue } from "../src/errors/error_grammar.ts";

/**
 * One group: its variables' positions, and its hyperparameters as a state
 * dict saves them (every one of `GroupHyperparameters`, and `initialLr`).
 */
export interface SavedGroup extends Readonly<Required<GroupHyperparameters>> {
  /** Positions of its variables in the order the optimizer was built with. */
  readonly params: readonly number[];
  /** The learning rate the group was built with: weight decay follows `lr / initialLr`. */
  readonly initialLr: number;
}

/** The groups of an optimizer, as `getConfig()` saves them under `savedGroups`. */
export interface SavedGroups {
  /** How many variables the optimizer was built with. */
  readonly variables: number;
  /** The groups. */
  readonly groups: readonly SavedGroup[];
}

/**
 * The groups of `inner`, built over `params` (in that order).
 *
 * @param inner The inner optimizer.
 * @param params Its parameters in build order.
 * @returns The groups.
 */
export function saveGroups(inner: DecoupledLionW, params: readonly Parameter[]): SavedGroups {
  const position = new Map(params.map((param, i) => [param, i]));
  return {
    variables: params.length,
    groups: inner.paramGroups.map((group) => ({
      params: group.params.map((param) => position.get(param)!),
      ...saveValues(groupValues(group)),
    })),
  };
}

/**
 * The groups to build an optimizer with over `params` (the variables of
 * the first step, in their order), by position. Each group is built with
 * its `initialLr`; {@linkcode restoreLrs} then sets the saved `lr`.
 *
 * @param saved The saved groups.
 * @param params The parameters, in build order.
 * @returns The groups.
 * @throws {RangeError} When the variables are not the saved ones.
 */
export function restoreGroups(
  saved: SavedGroups,
  params: readonly Parameter[],
): ParamGroupOptions[] {
  if (saved.variables !== params.length) {
    throw new RangeError(
      `Cannot build the optimizer as its saved groups cover ${saved.variables} variables and the first step has ${params.length}: a reloaded model's optimizer steps the variables it was saved with`,
    );
  }
  return saved.groups.map((group) => {
    // every hyperparameter of the schema as saved (an older config may lack one: its default)
    const values = Object.fromEntries(
      HYPERPARAMETER_NAMES.flatMap((name) => {
        const value = (group as unknown as Record<string, unknown>)[name];
        return value === undefined ? [] : [[name, value]];
      }),
    );
    return { ...values, params: group.params.map((i) => params[i]!), lr: group.initialLr };
  });
}

/**
 * Sets each group's saved `lr` (it was built with `initialLr`).
 *
 * @param saved The saved groups.
 * @param inner The optimizer built from {@linkcode restoreGroups}.
 */
export function restoreLrs(saved: SavedGroups, inner: DecoupledLionW): void {
  saved.groups.forEach((group, g) => (inner.paramGroups[g]!.lr = group.lr));
}

const GROUP_KEYS = ["params", "initialLr", ...HYPERPARAMETER_NAMES];

/**
 * Checks `savedGroups` as a config gives it (a JSON file may hold anything);
 * the values themselves are checked when the optimizer is built.
 *
 * @param value The option.
 * @returns The groups.
 * @throws {TypeError} When it is not shaped like saved groups.
 */
export function checkSavedGroups(value: unknown): SavedGroups {
  const action = "Cannot create optimizer";
  const fail = (what: string, bad: unknown): never => {
    throw new TypeError(`${action} as ${what}: current value is ${formatValue(bad)}`);
  };
  if (value === null || typeof value !== "object") fail("'savedGroups' must be an object", value);
  const { variables, groups } = value as Partial<SavedGroups>;
  checkKnownKeys(action, "savedGroups", value as object, ["variables", "groups"]);
  if (!Number.isInteger(variables) || variables! < 0) {
    fail("'savedGroups.variables' must be a count of variables", variables);
  }
  if (!Array.isArray(groups)) fail("'savedGroups.groups' must be an array", groups);
  groups!.forEach((group: unknown, g) => {
    if (group === null || typeof group !== "object") {
      fail(`'savedGroups.groups[${g}]' must be an object`, group);
    }
    checkKnownKeys(action, `savedGroups.groups[${g}]`, group as object, GROUP_KEYS);
    const { params } = group as Partial<SavedGroup>;
    if (
      !Array.isArray(params) ||
      !params.every((i) => Number.isInteger(i) && i >= 0 && i < variables!)
    ) {
      fail(
        `'savedGroups.groups[${g}].params' must be positions below 'savedGroups.variables'`,
        params,
      );
    }
  });
  return value as SavedGroups;
}

/** The groups as a config value (a plain JSON object). */
export function groupsConfig(saved: SavedGroups): tf.serialization.ConfigDict {
  return JSON.parse(JSON.stringify(saved));
}
