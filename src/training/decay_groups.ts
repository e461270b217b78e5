/**
 * {@linkcode decayGroups}: the usual split of a model's parameters into a
 * group with weight decay and one without (biases, norms, embeddings).
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { checkKnownKeys, checkWeightDecay } from "../_internal/validate.ts";
import type { Parameter } from "../store/parameter.ts";
import type { ParamGroupOptions } from "../optimizer/param_group.ts";

/** Which parameters get no weight decay: a name pattern, or a predicate. */
export type NoDecayRule = RegExp | ((param: Parameter) => boolean);

/** Options of {@linkcode decayGroups}. */
export interface DecayGroupsOptions {
  /** The weight decay of the first group (the second has 0). */
  weightDecay: number;
  /**
   * Which parameters go to the group without decay; replaces the default rule.
   *
   * @default {tensors of at most one dimension, and names matching /bias|norm|embed/i}
   */
  noDecay?: NoDecayRule;
}

/** The two groups and where each parameter went. */
export interface DecayGroups {
  /** `[decayed, notDecayed]`, ready for the optimizer's constructor. */
  readonly groups: readonly [ParamGroupOptions, ParamGroupOptions];
  /** Names of the parameters with weight decay. */
  readonly decay: readonly string[];
  /** Names of the parameters without. */
  readonly noDecay: readonly string[];
}

/** The default rule: vectors and scalars, and names of biases, norms and embeddings. */
const DEFAULT_NO_DECAY_NAMES = /bias|norm|embed/i;

function defaultNoDecay(param: Parameter): boolean {
  return param.shape.length <= 1 || DEFAULT_NO_DECAY_NAMES.test(param.name);
}

function ruleOf(noDecay: NoDecayRule | undefined): (param: Parameter) => boolean {
  if (noDecay === undefined) return defaultNoDecay;
  if (noDecay instanceof RegExp) {
    // a copy without the global/sticky flags, whose lastIndex would make
    // test() answer differently for the same name
    const pattern = new RegExp(noDecay.source, noDecay.flags.replace(/[gy]/g, ""));
    return (param) => pattern.test(param.name);
  }
  if (typeof noDecay === "function") return noDecay;
  throw new TypeError(
    `Cannot split parameters as 'noDecay' must be a RegExp or a function: current value is ${typeof noDecay}`,
  );
}

/**
 * Splits parameters into a group with `weightDecay` and one without. By
 * default the second takes tensors of at most one dimension (biases, norm
 * scales) and names matching `/bias|norm|embed/i`; a `RegExp` (tested on
 * the name) or a predicate replaces that rule.
 *
 * @example Decay the weight matrices only
 * ```ts
 * import { DecoupledLionW, decayGroups, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * store.add("fc.weight", [4, 3]);
 * store.add("fc.bias", [4]);
 * store.add("embed.weight", [10, 3]);
 * const split = decayGroups(store.parameters, { weightDecay: 1e-4 });
 * assert.deepEqual(split.decay, ["fc.weight"]);
 * assert.deepEqual(split.noDecay, ["fc.bias", "embed.weight"]);
 * await using opt = new DecoupledLionW(split.groups, { lr: 1e-4 });
 * assert.deepEqual(opt.paramGroups.map((g) => g.weightDecay), [1e-4, 0]);
 * ```
 *
 * @param params The parameters, in order (each group keeps that order).
 * @param options The weight decay and, optionally, the rule.
 * @returns The two groups and the names in each.
 * @throws {TypeError} When `options` has an unknown key, `weightDecay` is not
 * a number, or `noDecay` is neither a RegExp nor a function.
 * @throws {RangeError} When `weightDecay` is negative or not finite.
 */
export function decayGroups(params: Iterable<Parameter>, options: DecayGroupsOptions): DecayGroups {
  const action = "Cannot split decay groups";
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${action} as 'options' must be an object: current value is ${formatValue(options)}`,
    );
  }
  checkKnownKeys(action, "options", options, ["weightDecay", "noDecay"]);
  checkWeightDecay(action, "weightDecay", options.weightDecay);
  const isNoDecay = ruleOf(options.noDecay);
  const decayed: Parameter[] = [];
  const notDecayed: Parameter[] = [];
  for (const param of params) (isNoDecay(param) ? notDecayed : decayed).push(param);
  return {
    groups: [
      { params: decayed, weightDecay: options.weightDecay },
      { params: notDecayed, weightDecay: 0 },
    ],
    decay: decayed.map((param) => param.name),
    noDecay: notDecayed.map((param) => param.name),
  };
}
