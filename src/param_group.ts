/**
 * {@linkcode ParamGroup}: a group of parameters and their hyperparameters.
 *
 * @module
 */

import { checkBetas, checkScheduledLr, checkWeightDecay } from "./_validate.ts";
import type { Logger } from "./logger.ts";
import type { Parameter } from "./parameter.ts";

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
}

/**
 * A group as given to the optimizer: parameters plus optional hyperparameters.
 *
 * @example Two groups with their own learning rates
 * ```ts
 * import { DecoupledLionW, type ParamGroupOptions, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const groups: ParamGroupOptions[] = [
 *   { params: [store.add("encoder", [4])], lr: 1e-4 },
 *   { params: [store.add("head", [2])], lr: 1e-3 },
 * ];
 * await using opt = new DecoupledLionW(groups);
 * assert.deepEqual(opt.paramGroups.map((g) => g.lr), [1e-4, 1e-3]);
 * ```
 */
export interface ParamGroupOptions extends GroupHyperparameters {
  /** The group's parameters. */
  params: readonly Parameter[];
}

/** The threshold from which the reference warns about weight decay. */
const HIGH_WEIGHT_DECAY = 1e-3;

/**
 * A parameter group of a {@linkcode DecoupledLionW} optimizer. `lr`, `betas`
 * and `weightDecay` can be changed between steps (LR schedules write `lr`);
 * each assignment is checked and a bad value throws, leaving the group as it
 * was. `initialLr` is fixed at construction, so weight decay follows
 * `lr / initialLr`.
 *
 * @example A schedule that halves the learning rate
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * await using opt = new DecoupledLionW([store.add("w", [3])], { lr: 1e-3 });
 * const group = opt.paramGroups[0]!;
 * group.lr = group.initialLr / 2;
 * assert.equal(group.lr, 5e-4);
 * assert.equal(group.initialLr, 1e-3);
 * group.lr = 0; // a warmup's first step: legal, the parameters stay
 * assert.throws(() => (group.lr = -1), RangeError);
 * ```
 */
export class ParamGroup {
  /** The group's parameters. */
  readonly params: readonly Parameter[];
  readonly #index: number;
  readonly #logger: Logger | null;
  readonly #initialLr: number;
  #lr: number;
  #betas: readonly [number, number];
  #weightDecay: number;

  /**
   * Internal: groups are made by the optimizer.
   *
   * @param index The group's index, for messages.
   * @param params The parameters.
   * @param lr Learning rate (checked).
   * @param betas Betas (checked).
   * @param weightDecay Weight decay (checked).
   * @param initialLr The initial learning rate.
   * @param logger Where the high-weight-decay warning goes.
   */
  constructor(
    index: number,
    params: readonly Parameter[],
    lr: number,
    betas: readonly [number, number],
    weightDecay: number,
    initialLr: number,
    logger: Logger | null,
  ) {
    this.#index = index;
    this.params = Object.freeze([...params]);
    this.#lr = lr;
    this.#betas = betas;
    this.#weightDecay = weightDecay;
    this.#initialLr = initialLr;
    this.#logger = logger;
  }

  /** The learning rate at construction (or as loaded from a state dict); read-only. */
  get initialLr(): number {
    return this.#initialLr;
  }

  /**
   * The learning rate. A schedule may set any finite value >= 0 (0 leaves
   * the parameters as they are and still moves the moment, as in the
   * reference); weight decay scales with `lr / initialLr`.
   *
   * @throws {RangeError} When set to a value that is not a finite number >= 0.
   */
  get lr(): number {
    return this.#lr;
  }

  set lr(value: number) {
    this.#lr = checkScheduledLr(
      "Cannot set hyperparameter",
      `paramGroups[${this.#index}].lr`,
      value,
    );
  }

  /**
   * `[beta1, beta2]` (a frozen array: assign a new one to change them).
   *
   * @throws {RangeError} When set to values outside [0, 1].
   */
  get betas(): readonly [number, number] {
    return this.#betas;
  }

  set betas(value: readonly [number, number]) {
    this.#betas = checkBetas(
      "Cannot set hyperparameter",
      `paramGroups[${this.#index}].betas`,
      value,
    );
  }

  /**
   * The decoupled weight decay.
   *
   * @throws {RangeError} When set to a value that is negative or not finite.
   */
  get weightDecay(): number {
    return this.#weightDecay;
  }

  set weightDecay(value: number) {
    this.#weightDecay = checkWeightDecay(
      "Cannot set hyperparameter",
      `paramGroups[${this.#index}].weightDecay`,
      value,
    );
    warnIfHighWeightDecay(this.#weightDecay, this.#logger);
  }
}

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
