/**
 * The hyperparameter schema: one table row per per-group hyperparameter,
 * with its default, its checks and how it is saved. Defaults, validation,
 * unknown-key detection, the {@linkcode ParamGroup} setters, the state
 * dict's checks and the kernel constants all read this table, so adding a
 * hyperparameter touches this file, `groupConstants` (if the kernels need
 * it), the kernels and the tests.
 *
 * @module
 */

import {
  checkBetas,
  checkBoolean,
  checkLr,
  checkScheduledLr,
  checkWeightDecay,
  type ValueCheck,
} from "../_internal/validate.ts";
import { type GroupConstants, groupConstants } from "../kernels/kernel.ts";
import type { Logger } from "../_internal/logger.ts";

/**
 * Hyperparameters of a group; omitted ones come from the optimizer's options.
 *
 * @example No weight decay on biases
 * ```ts
 * import { DecoupledLionW, type GroupHyperparameters, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const noDecay: GroupHyperparameters = { weightDecay: 0 };
 * await using opt = new DecoupledLionW(
 *   [{ params: [store.add("w", [2])] }, { params: [store.add("b", [2])], ...noDecay }],
 *   { weightDecay: 1e-4 },
 * );
 * assert.deepEqual(opt.paramGroups.map((g) => g.weightDecay), [1e-4, 0]);
 * ```
 */
export interface GroupHyperparameters {
  /**
   * Learning rate, > 0 at construction (the peak of a schedule: schedules
   * multiply it, and weight decay follows `lr / initialLr`).
   *
   * @default {1e-4}
   */
  lr?: number;
  /**
   * `[beta1, beta2]`, each in [0, 1]: beta1 interpolates the update
   * direction, beta2 the moment.
   *
   * @default {[0.9, 0.99]}
   */
  betas?: readonly [number, number];
  /**
   * Decoupled weight decay: each step multiplies the parameters by
   * `1 - (lr / initialLr) * weightDecay`; >= 0. Values >= 1e-3 log a warning.
   *
   * @default {0}
   */
  weightDecay?: number;
  /**
   * Maximize the objective instead of minimizing it: the gradient is
   * negated before everything (update and moment), as torch's `maximize`.
   *
   * @default {false}
   */
  maximize?: boolean;
  /**
   * Cautious updates (timm's Lion `caution`, from "Cautious Optimizers"):
   * keep only the update's elements whose sign agrees with the gradient's,
   * divided by the fraction kept over the whole parameter (clamped at
   * 1e-3). Costs one more read of the gradient and moment per step, and
   * runs the scalar kernel's code on this group (not the gpujs backend).
   *
   * @default {false}
   */
  cautious?: boolean;
}

/** Every hyperparameter of a group, checked. */
export type HyperparameterValues = {
  readonly [K in keyof GroupHyperparameters]-?: NonNullable<GroupHyperparameters[K]>;
};

/** A group's values and the learning rate its decay refers to. */
export interface GroupValues extends HyperparameterValues {
  /** The learning rate at construction (or as loaded): weight decay follows `lr / initialLr`. */
  readonly initialLr: number;
}

/** One row of the schema. */
interface Hyperparameter<K extends keyof HyperparameterValues> {
  readonly name: K;
  readonly default: HyperparameterValues[K];
  /** The check of a value given at construction (an optimizer option or a group's). */
  readonly checkGiven: ValueCheck<HyperparameterValues[K]>;
  /** The check of a value set later: a `ParamGroup` setter (a schedule), a loaded state dict. */
  readonly checkSet: ValueCheck<HyperparameterValues[K]>;
  /** A copy for a state dict (arrays are copied, numbers are themselves). */
  readonly save: (value: HyperparameterValues[K]) => HyperparameterValues[K];
  /** A warning about a legal but suspicious value, given when it is set. */
  readonly warn?: (value: HyperparameterValues[K], logger: Logger | null) => void;
  /** Added after the first state dicts: one without it loads with the default. */
  readonly optionalInStateDict?: true;
}

/** The threshold from which the reference warns about weight decay. */
const HIGH_WEIGHT_DECAY = 1e-3;

/**
 * Logs the reference's warning for a weight decay of 1e-3 or more.
 *
 * @param weightDecay The value.
 * @param logger Where to log; `null` is silent.
 */
export function warnIfHighWeightDecay(weightDecay: number, logger: Logger | null): void {
  if (weightDecay >= HIGH_WEIGHT_DECAY) {
    logger?.warn(
      `You are using a high value of \`weightDecay=${weightDecay}\` for the \`DecoupledLionW\` optimizer. Are you sure you want to do this? Your model's weights will be multiplied by ${
        1 - weightDecay
      } on every step!`,
    );
  }
}

const same = <T>(value: T): T => value;

/** The schema: one row per per-group hyperparameter. */
export const HYPERPARAMETERS: readonly [
  Hyperparameter<"lr">,
  Hyperparameter<"betas">,
  Hyperparameter<"weightDecay">,
  Hyperparameter<"maximize">,
  Hyperparameter<"cautious">,
] = [
  // > 0 at construction (it becomes initialLr, the decay's denominator); a
  // schedule may then set 0, as the reference's step() accepts
  { name: "lr", default: 1e-4, checkGiven: checkLr, checkSet: checkScheduledLr, save: same },
  {
    name: "betas",
    default: Object.freeze([0.9, 0.99] as const),
    checkGiven: checkBetas,
    checkSet: checkBetas,
    save: (betas) => [betas[0], betas[1]],
  },
  {
    name: "weightDecay",
    default: 0,
    checkGiven: checkWeightDecay,
    checkSet: checkWeightDecay,
    save: same,
    warn: warnIfHighWeightDecay,
  },
  {
    name: "maximize",
    default: false,
    checkGiven: checkBoolean,
    checkSet: checkBoolean,
    save: same,
    optionalInStateDict: true,
  },
  {
    name: "cautious",
    default: false,
    checkGiven: checkBoolean,
    checkSet: checkBoolean,
    save: same,
    optionalInStateDict: true,
  },
];

/** The names of the hyperparameters, in schema order. */
export const HYPERPARAMETER_NAMES: readonly string[] = HYPERPARAMETERS.map((row) => row.name);

/** The row of `name`. */
export function hyperparameter<K extends keyof HyperparameterValues>(name: K): Hyperparameter<K> {
  return HYPERPARAMETERS.find((row) => row.name === name) as unknown as Hyperparameter<K>;
}

/**
 * The values of `given`, checked, with `fallback` for those it omits.
 *
 * @param action The start of an error message, e.g. "Cannot create optimizer".
 * @param prefix The path of `given`, e.g. "paramGroups[1]." (or "" for the options).
 * @param given Hyperparameters as given.
 * @param fallback The values omitted ones take.
 * @returns The values.
 */
export function resolveHyperparameters(
  action: string,
  prefix: string,
  given: GroupHyperparameters,
  fallback: HyperparameterValues,
): HyperparameterValues {
  const values: Record<string, unknown> = {};
  for (const row of HYPERPARAMETERS) {
    const value: unknown = given[row.name];
    values[row.name] = value === undefined
      ? fallback[row.name]
      : (row.checkGiven as ValueCheck<unknown>)(action, `${prefix}${row.name}`, value);
  }
  return values as unknown as HyperparameterValues;
}

/** The schema's defaults. */
export const DEFAULT_HYPERPARAMETERS: HyperparameterValues = Object.fromEntries(
  HYPERPARAMETERS.map((row) => [row.name, row.default]),
) as unknown as HyperparameterValues;

/**
 * Checks a loaded group's values (`checkSet` for each, `initialLr` > 0).
 *
 * @param action The start of the message.
 * @param prefix The group's path, e.g. "paramGroups[0].".
 * @param loaded The group from a state dict (untrusted).
 * @returns The values.
 */
export function checkLoadedValues(
  action: string,
  prefix: string,
  loaded: Record<string, unknown>,
): GroupValues {
  const values: Record<string, unknown> = {};
  for (const row of HYPERPARAMETERS) {
    const value = loaded[row.name];
    values[row.name] = value === undefined && row.optionalInStateDict
      ? row.default
      : (row.checkSet as ValueCheck<unknown>)(action, `${prefix}${row.name}`, value);
  }
  values.initialLr = checkLr(action, `${prefix}initialLr`, loaded.initialLr);
  return values as unknown as GroupValues;
}

/**
 * The values as a state dict saves them (arrays copied).
 *
 * @param values A group's values.
 * @returns A copy.
 */
export function saveValues(values: GroupValues): GroupValues {
  const saved: Record<string, unknown> = {};
  for (const row of HYPERPARAMETERS) {
    saved[row.name] = (row.save as (value: unknown) => unknown)(values[row.name]);
  }
  saved.initialLr = values.initialLr;
  return saved as unknown as GroupValues;
}

/**
 * Gives each row's warning about the values (a group being built).
 *
 * @param values A group's values.
 * @param logger Where warnings go; `null` is silent.
 */
export function warnAboutValues(values: HyperparameterValues, logger: Logger | null): void {
  for (const row of HYPERPARAMETERS) {
    (row.warn as ((value: unknown, logger: Logger | null) => void) | undefined)?.(
      values[row.name],
      logger,
    );
  }
}

/**
 * The float32 constants the kernels take for a group, derived as the
 * reference derives them.
 *
 * @param values A group's values.
 * @returns The constants.
 */
export function kernelConstants(values: GroupValues): GroupConstants {
  const constants = groupConstants(
    values.lr,
    values.initialLr,
    values.betas[0],
    values.betas[1],
    values.weightDecay,
  );
  return {
    ...constants,
    // maximize negates the gradient: a scale of -1 (exact), before any clipping
    gradScale: values.maximize ? -1 : 1,
    cautious: values.cautious ? 1 : 0,
  };
}

/**
 * The warning for a group whose decay multiplier `1 − (lr / initialLr)·wd`
 * is <= 0 this step: the reference's rule then flips the weights' signs and
 * grows them. It happens when the optimizer was built with a schedule's
 * small starting lr and the schedule raised it.
 *
 * @param groups The groups' values now.
 * @param constants Their kernel constants this step.
 * @returns The warning for the first such group, or `undefined`.
 */
export function decayFlipWarning(
  groups: readonly Pick<GroupValues, "lr" | "initialLr" | "weightDecay">[],
  constants: readonly GroupConstants[],
): string | undefined {
  const g = constants.findIndex((k) => k.decayMultiplier <= 0);
  if (g < 0) return undefined;
  const { lr, initialLr, weightDecay } = groups[g]!;
  return `Weight decay multiplies the parameters of group ${g} by ${
    constants[g]!.decayMultiplier
  } this step (1 - lr ${lr} / initialLr ${initialLr} * weightDecay ${weightDecay}): weights flip sign and grow. Build the optimizer with the peak lr; schedules multiply it`;
}
