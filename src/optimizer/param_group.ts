/**
 * {@linkcode ParamGroup}: a group of parameters and their hyperparameters.
 *
 * @module
 */

import {
  type GroupHyperparameters,
  type GroupValues,
  hyperparameter,
  HYPERPARAMETER_NAMES,
  type HyperparameterValues,
} from "./hyperparameters.ts";
import type { Logger } from "../_internal/logger.ts";
import { formatValue } from "../_internal/format.ts";
import { closestName } from "../_internal/validate.ts";
import type { Parameter } from "../store/parameter.ts";

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

/** Reads and replaces a group's values; set in the class's static block (private fields). */
let readValues: (group: ParamGroup) => GroupValues;
let assignValues: (group: ParamGroup, values: GroupValues) => void;

/** The group behind each guarded group the constructor returns (private fields live there). */
const GUARDED = new WeakMap<object, ParamGroup>();

/** The keys a group has: its parameters and its hyperparameters. */
const GROUP_KEYS: readonly string[] = ["params", "initialLr", ...HYPERPARAMETER_NAMES];

/**
 * A group behind a proxy that refuses keys it does not have: a misspelt
 * hyperparameter (`group.weight_decay = 0.1`) would otherwise be a new
 * property that nothing reads. Accessors run on the group itself.
 */
function guard(group: ParamGroup, index: number): ParamGroup {
  const refuse = (key: string | symbol): never => {
    if (key === "params" || key === "initialLr") {
      throw new TypeError(
        `Cannot set 'paramGroups[${index}].${key}' as it is read-only${
          key === "initialLr" ? " (weight decay follows lr / initialLr: set lr)" : ""
        }`,
      );
    }
    const closest = typeof key === "string" ? closestName(key, GROUP_KEYS) : undefined;
    throw new TypeError(
      `Cannot set 'paramGroups[${index}].${String(key)}' as a group has no such key${
        closest === undefined ? "" : `: did you mean ${formatValue(closest)}?`
      } (known: ${GROUP_KEYS.join(", ")})`,
    );
  };
  const guarded = new Proxy(group, {
    get: (target, key) => Reflect.get(target, key, target),
    // a key the group has, and that can be set (not params, not initialLr), else refused
    set: (target, key, value) =>
      (key in target && Reflect.set(target, key, value, target)) || refuse(key),
    defineProperty: (_target, key) => refuse(key),
    // a group without one of its keys could not be stepped or saved
    deleteProperty: (_target, key) => {
      throw new TypeError(
        `Cannot delete 'paramGroups[${index}].${
          String(key)
        }' as a group keeps every key: set it instead`,
      );
    },
  });
  GUARDED.set(guarded, group);
  return guarded;
}

/**
 * A parameter group of a {@linkcode DecoupledLionW} optimizer. `lr`, `betas`
 * and `weightDecay` can be changed between steps (LR schedules write `lr`);
 * each assignment is checked and a bad value throws, leaving the group as it
 * was. `initialLr` is fixed at construction, so weight decay follows
 * `lr / initialLr`. Loading a state dict updates the optimizer's groups in
 * place: a scheduler holding a group keeps working after a resume.
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
  #values: GroupValues;

  static {
    readValues = (group) => (GUARDED.get(group) ?? group).#values;
    assignValues = (group, values) => ((GUARDED.get(group) ?? group).#values = values);
  }

  /**
   * Internal: groups are made by the optimizer.
   *
   * @param index The group's index, for messages.
   * @param params The parameters.
   * @param values The hyperparameters (checked) and `initialLr`.
   * @param logger Where warnings about values set later go.
   */
  constructor(
    index: number,
    params: readonly Parameter[],
    values: GroupValues,
    logger: Logger | null,
  ) {
    this.#index = index;
    this.params = Object.freeze([...params]);
    Object.defineProperty(this, "params", { writable: false });
    this.#values = values;
    this.#logger = logger;
    return guard(this, index);
  }

  /** The learning rate at construction (or as loaded from a state dict); read-only. */
  get initialLr(): number {
    return this.#values.initialLr;
  }

  /**
   * The learning rate. A schedule may set any finite value >= 0 (0 leaves
   * the parameters as they are and still moves the moment, as in the
   * reference); weight decay scales with `lr / initialLr`.
   *
   * @throws {RangeError} When set to a value that is not a finite number >= 0.
   */
  get lr(): number {
    return this.#values.lr;
  }

  set lr(value: number) {
    this.#set("lr", value);
  }

  /**
   * `[beta1, beta2]` (a frozen array: assign a new one to change them).
   *
   * @throws {RangeError} When set to values outside [0, 1].
   */
  get betas(): readonly [number, number] {
    return this.#values.betas;
  }

  set betas(value: readonly [number, number]) {
    this.#set("betas", value);
  }

  /**
   * The decoupled weight decay.
   *
   * @throws {RangeError} When set to a value that is negative or not finite.
   */
  get weightDecay(): number {
    return this.#values.weightDecay;
  }

  set weightDecay(value: number) {
    this.#set("weightDecay", value);
  }

  /**
   * Whether the group maximizes its objective (its gradients are negated).
   *
   * @throws {TypeError} When set to a value that is not a boolean.
   */
  get maximize(): boolean {
    return this.#values.maximize;
  }

  set maximize(value: boolean) {
    this.#set("maximize", value);
  }

  /**
   * Whether the group's updates are cautious (timm's Lion `caution`).
   *
   * @throws {TypeError} When set to a value that is not a boolean.
   */
  get cautious(): boolean {
    return this.#values.cautious;
  }

  set cautious(value: boolean) {
    this.#set("cautious", value);
  }

  /** Checks `value` with the schema's `checkSet`, stores it, then gives the row's warning. */
  #set<K extends keyof HyperparameterValues>(name: K, value: unknown): void {
    const row = hyperparameter(name);
    const checked = row.checkSet(
      "Cannot set hyperparameter",
      `paramGroups[${this.#index}].${name}`,
      value,
    );
    this.#values = { ...this.#values, [name]: checked };
    row.warn?.(checked, this.#logger);
  }
}

/**
 * A group's values, as the kernels and the state dict read them.
 *
 * @param group A group.
 * @returns Its hyperparameters and `initialLr`.
 */
export function groupValues(group: ParamGroup): GroupValues {
  return readValues(group);
}

/**
 * Replaces a group's values in place (`loadStateDict`); internal.
 *
 * @param group The optimizer's group.
 * @param values Checked values.
 */
export function loadGroupValues(group: ParamGroup, values: GroupValues): void {
  assignValues(group, values);
}
