/**
 * {@linkcode OptimizerBook}: the optimizer's bookkeeping, whoever steps.
 * The groups and their schema values, which parameters have state, the
 * state dict and the iteration count live here; `DecoupledLionW` composes
 * it with an engine and a step driver, and the tfjs device path, whose
 * steps run on the device, reads and writes the same book.
 *
 * @module
 */

import {
  isUint8Moment,
  type MomentumDtype,
  readMoments,
  readQuantized,
  writeMoments,
  writeQuantized,
} from "../store/moment_dtype.ts";
import type { GroupConstants } from "../kernels/kernel.ts";
import type { Logger } from "../_internal/logger.ts";
import type { Parameter } from "../store/parameter.ts";
import type { ParameterSlots, StoreMemory } from "../store/slots.ts";
import type {
  ActiveParameter,
  MomentLayout,
  PlannedParameter,
  StepPlan,
} from "../step/step_plan.ts";
import { formatValue } from "../_internal/format.ts";
import type { HyperparameterValues } from "./hyperparameters.ts";
import { kernelConstants, saveValues, warnAboutValues } from "./hyperparameters.ts";
import { collectParameters, groupValuesOf, oneStore, toGroupOptions } from "./option_rules.ts";
import { groupValues, loadGroupValues, ParamGroup, type ParamGroupOptions } from "./param_group.ts";
import { checkStateDict, type LionParameterState, type LionStateDict } from "./state_dict.ts";

/** What a book is opened with: the groups as given, the defaults, and where warnings go. */
export interface BookSpec {
  /** A list of parameters (one group), or a list of groups. */
  readonly params: readonly Parameter[] | readonly ParamGroupOptions[];
  /** The checked defaults of the groups' hyperparameters. */
  readonly defaults: HyperparameterValues;
  /** Where warnings about values go. */
  readonly logger: Logger | null;
  /** How exp_avg is stored, from the store's slots (checked against the engine by the caller). */
  readonly momentumDtype: (storeDtype: MomentumDtype) => MomentumDtype;
}

/** The groups, their parameters' slots, which have state, and the count of steps applied. */
export class OptimizerBook {
  /** Every parameter's slots, in group order. */
  readonly slots: ReadonlyMap<Parameter, ParameterSlots>;
  /** The store's memory every parameter lives in. */
  readonly memory: StoreMemory;
  /** The groups, in order (schedules change their values in place). */
  readonly groups: readonly ParamGroup[];
  /** Every parameter in group order, with its slots and group index. */
  readonly entries: readonly ActiveParameter[];
  readonly #withState = new Set<Parameter>();
  /** The plan whose parameters all have state (so a step needs no state bookkeeping). */
  #planWithState: StepPlan | undefined;
  #iterations = 0;
  /** How exp_avg is stored. */
  readonly momentumDtype: MomentumDtype;

  /**
   * Checks the parameters and groups and opens the book.
   *
   * @param spec The groups as given, the defaults and the logger.
   * @throws {TypeError} When a parameter or group has the wrong type.
   * @throws {RangeError} When a value is out of range, a parameter is
   * listed twice or used by another optimizer, or the parameters come from
   * several stores.
   */
  constructor({ params, defaults, logger, momentumDtype }: BookSpec) {
    const groupOptions = toGroupOptions(params);
    this.slots = collectParameters(groupOptions);
    this.memory = oneStore(this.slots);
    this.groups = groupOptions.map((group, g) => {
      const values = groupValuesOf(group, g, defaults);
      warnAboutValues(values, logger);
      return new ParamGroup(g, group.params, values, logger);
    });
    this.entries = this.groups.flatMap((group, g) =>
      group.params.map((param) => ({ param, slots: this.slots.get(param)!, group: g }))
    );
    this.momentumDtype = momentumDtype(this.memory.momentumDtype);
  }

  /** Steps applied. */
  get iterations(): number {
    return this.#iterations;
  }

  /** Elements of the parameters with state. */
  get stateElements(): number {
    let elements = 0;
    for (const param of this.#withState) elements += param.size;
    return elements;
  }

  /** How the plans lay out exp_avg. */
  get layout(): MomentLayout {
    return { momentumDtype: this.momentumDtype, groups: this.groups.length };
  }

  /**
   * Every group's float32 kernel constants, as the engines take them: under
   * `"uint8"`, each group's 8-bit constants, then its float32 ones (see
   * {@linkcode MomentLayout}).
   */
  constants(): GroupConstants[] {
    const momentBfloat16 = this.momentumDtype === "bfloat16" ? 1 : 0;
    const constants = this.groups.map((group) => ({
      ...kernelConstants(groupValues(group)),
      momentBfloat16,
    }));
    if (this.momentumDtype !== "uint8") return constants;
    return [...constants.map((k) => ({ ...k, momentUint8: 1 })), ...constants];
  }

  /** How many constants {@linkcode constants} gives. */
  get constantCount(): number {
    return this.constants().length;
  }

  /**
   * The plan's parameters whose state starts at this step (m = 0), or none
   * when the plan is the one whose parameters all have state.
   *
   * @param plan The step's plan.
   * @returns The parameters without state.
   */
  fresh(plan: StepPlan): PlannedParameter[] {
    if (plan === this.#planWithState) return [];
    return plan.params.filter(({ param }) => !this.#withState.has(param));
  }

  /**
   * Books an applied step: the plan's parameters have state, one more iteration.
   *
   * @param plan The step's plan.
   */
  applied(plan: StepPlan): void {
    if (plan !== this.#planWithState) {
      for (const { param } of plan.params) this.#withState.add(param);
      this.#planWithState = plan;
    }
    this.#iterations++;
  }

  /**
   * The state of `param`, read from its slots.
   *
   * @param param A parameter of this book.
   * @returns The state, or `undefined` before its first gradient.
   * @throws {RangeError} When `param` is not in this book.
   */
  state(param: Parameter): LionParameterState | undefined {
    const slots = this.slots.get(param);
    if (slots === undefined) {
      throw new RangeError(
        `Cannot get state as parameter ${formatValue(param?.name)} is not in this optimizer`,
      );
    }
    if (!this.#withState.has(param)) return undefined;
    return { expAvg: readMoments(slots.expAvgView, this.momentumDtype, param.size) };
  }

  /**
   * Copies of the state by parameter name, the groups' saved values and the count.
   *
   * @returns The state dict.
   */
  stateDict(): LionStateDict {
    const state: Record<string, LionParameterState> = {};
    for (const [param, slots] of this.slots) {
      if (!this.#withState.has(param)) continue;
      const expAvg = readMoments(slots.expAvgView, this.momentumDtype, param.size);
      const quantized = readQuantized(slots.expAvgView, this.momentumDtype, param.size);
      state[param.name] = quantized === undefined
        ? { expAvg: expAvg.slice() }
        : { expAvg, quantized };
    }
    return { state, paramGroups: this.savedGroups(), iterations: this.#iterations };
  }

  /**
   * The groups as a state dict saves them (names and schema values), without
   * copying any state.
   *
   * @returns The saved groups.
   */
  savedGroups(): LionStateDict["paramGroups"] {
    return this.groups.map((group) => ({
      params: group.params.map((p) => p.name),
      ...saveValues(groupValues(group)),
    }));
  }

  /**
   * Replaces the state, the groups' values (in place) and the count with
   * those of `dict`, all checked first: a bad dict changes nothing.
   *
   * @param dict A state dict of an optimizer with the same groups and names.
   * @throws {TypeError} When `dict` is not shaped like a state dict.
   * @throws {RangeError} When its groups, names, sizes or values do not fit.
   */
  load(dict: LionStateDict): void {
    const values = checkStateDict(dict, this.groups);
    this.groups.forEach((group, g) => loadGroupValues(group, values[g]!));
    this.#withState.clear();
    this.#planWithState = undefined;
    for (const [param, slots] of this.slots) {
      const entry = dict.state[param.name];
      if (entry === undefined) continue;
      // 8-bit moments load as they were kept; anything else from their values
      if (entry.quantized !== undefined && isUint8Moment(this.momentumDtype, param.size)) {
        writeQuantized(slots.expAvgView, entry.quantized);
      } else {
        writeMoments(slots.expAvgView, entry.expAvg, this.momentumDtype);
      }
      this.#withState.add(param);
    }
    this.#iterations = dict.iterations;
  }
}
