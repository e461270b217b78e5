/**
 * The optimizer's state dict: torch's `state_dict()` shape, keyed by
 * parameter name instead of position, with float32 copies of the state.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { checkKnownKeys, checkNumbers } from "../_internal/validate.ts";
import {
  checkLoadedValues,
  type GroupHyperparameters,
  type GroupValues,
  HYPERPARAMETER_NAMES,
} from "./hyperparameters.ts";
import type { ParamGroup } from "./param_group.ts";

/**
 * The state of one parameter.
 *
 * @example The moment after one step
 * ```ts
 * import { DecoupledLionW, type LionParameterState, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2]);
 * await using opt = new DecoupledLionW([w], { betas: [0.9, 0.5] });
 * w.grad = [2, -4];
 * await opt.step();
 * const state: LionParameterState = opt.state(w)!;
 * assert.deepEqual([...state.expAvg], [1, -2]); // lerp(0, g, 1 − 0.5)
 * ```
 */
export interface LionParameterState {
  /** The moment (torch's `exp_avg`; for 8-bit moments, their dequantized values). */
  readonly expAvg: Float32Array;
  /**
   * The moment as an 8-bit optimizer keeps it (`momentumDtype: "uint8"`,
   * tensors of 4,096 elements or more). An 8-bit optimizer loads it as it
   * is, exactly; any other loads `expAvg`. Absent elsewhere.
   */
  readonly quantized?: QuantizedMoments;
}

/**
 * 8-bit moments as bitsandbytes keeps them (`state1` and `absmax1`): a
 * code of its signed dynamic map a parameter, and a float32 absmax a block
 * of 256 (the last block may be partial). Element `i` is
 * `DYNAMIC_MAP[codes[i]] · absmax[floor(i / 256)]`.
 *
 * @example The moments of an 8-bit optimizer
 * ```ts
 * import { DecoupledLionW, ParameterStore, type QuantizedMoments } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [4096]);
 * await using opt = new DecoupledLionW([w], { momentumDtype: "uint8", betas: [0.9, 0.5] });
 * w.grad = new Float32Array(4096).fill(2);
 * await opt.step();
 * const moments: QuantizedMoments = opt.stateDict().state["w"]!.quantized!;
 * assert.equal(moments.codes[0], 255); // the map's 1: the block's largest moment
 * assert.equal(moments.absmax[0], 1); // (1 − 0.5) · 2
 * assert.equal(moments.absmax.length, 16);
 * ```
 */
export interface QuantizedMoments {
  /** One code a parameter. */
  readonly codes: Uint8Array;
  /** One scale a block of 256: finite, >= 0. */
  readonly absmax: Float32Array;
}

/**
 * A parameter group in a state dict.
 *
 * @example Groups are saved by parameter name
 * ```ts
 * import { DecoupledLionW, type LionParamGroupState, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [1]);
 * await using opt = new DecoupledLionW([w], { lr: 0.5 });
 * const group: LionParamGroupState = opt.stateDict().paramGroups[0]!;
 * assert.deepEqual(group, {
 *   params: ["w"],
 *   lr: 0.5,
 *   betas: [0.9, 0.99],
 *   weightDecay: 0,
 *   maximize: false,
 *   cautious: false,
 *   initialLr: 0.5,
 * });
 * ```
 */
export interface LionParamGroupState extends Readonly<Required<GroupHyperparameters>> {
  /** Names of the group's parameters, in order. */
  readonly params: readonly string[];
  /** The learning rate the decay factor `lr / initialLr` refers to (> 0). */
  readonly initialLr: number;
}

/**
 * What {@linkcode DecoupledLionW.stateDict} returns and `loadStateDict` takes.
 *
 * @example Save the state and load it into a fresh optimizer
 * ```ts
 * import { DecoupledLionW, type LionStateDict, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2], [1, 2]);
 * const first = new DecoupledLionW([w], { lr: 0.1 });
 * w.grad = [1, -1];
 * await first.step();
 * const saved: LionStateDict = first.stateDict();
 * await first.close();
 *
 * await using second = new DecoupledLionW([w], { lr: 0.1 });
 * second.loadStateDict(saved);
 * assert.deepEqual(second.state(w)!.expAvg, saved.state["w"]!.expAvg);
 * assert.equal(saved.paramGroups[0]!.initialLr, 0.1);
 * assert.equal(second.iterations, 1);
 * ```
 */
export interface LionStateDict {
  /** State per parameter name; parameters never stepped have none. */
  readonly state: Readonly<Record<string, LionParameterState>>;
  /** The groups, in order. */
  readonly paramGroups: readonly LionParamGroupState[];
  /** Steps applied so far. */
  readonly iterations: number;
}

const LOAD = "Cannot load state dict";
/** The keys of a {@linkcode LionParamGroupState}. */
const GROUP_STATE_KEYS: readonly string[] = ["params", ...HYPERPARAMETER_NAMES, "initialLr"];

/**
 * Checks `dict` against the optimizer's groups before anything is loaded.
 *
 * @param dict The candidate (from JSON or elsewhere, so untrusted).
 * @param groups The optimizer's groups.
 * @returns The checked values of each group.
 * @throws {TypeError} When the dict is not shaped like a state dict.
 * @throws {RangeError} When names, sizes or hyperparameters do not fit.
 */
export function checkStateDict(
  dict: LionStateDict,
  groups: readonly ParamGroup[],
): GroupValues[] {
  if (dict === null || typeof dict !== "object") {
    throw new TypeError(`${LOAD} as it must be an object: current value is ${formatValue(dict)}`);
  }
  checkKnownKeys(LOAD, "dict", dict, ["state", "paramGroups", "iterations"]);
  const { state, paramGroups, iterations } = dict;
  if (!Array.isArray(paramGroups)) {
    throw new TypeError(
      `${LOAD} as 'paramGroups' must be an array: current value is ${formatValue(paramGroups)}`,
    );
  }
  if (paramGroups.length !== groups.length) {
    throw new RangeError(
      `${LOAD} as it has ${paramGroups.length} parameter groups where the optimizer has ${groups.length}`,
    );
  }
  const sizes = new Map<string, number>();
  const values = groups.map((group, g) => {
    const loaded = paramGroups[g]!;
    const names = group.params.map((p) => p.name);
    const loadedNames: unknown = loaded?.params;
    if (
      !Array.isArray(loadedNames) || loadedNames.length !== names.length ||
      loadedNames.some((name, i) => name !== names[i])
    ) {
      throw new RangeError(
        `${LOAD} as 'paramGroups[${g}].params' must be ${formatValue(names)}: current value is ${
          formatValue(loadedNames)
        }`,
      );
    }
    checkKnownKeys(LOAD, `paramGroups[${g}]`, loaded, GROUP_STATE_KEYS);
    for (const p of group.params) sizes.set(p.name, p.size);
    return checkLoadedValues(
      LOAD,
      `paramGroups[${g}].`,
      loaded as unknown as Record<string, unknown>,
    );
  });
  if (state === null || typeof state !== "object") {
    throw new TypeError(
      `${LOAD} as 'state' must be an object: current value is ${formatValue(state)}`,
    );
  }
  for (const [name, entry] of Object.entries(state)) {
    const size = sizes.get(name);
    if (size === undefined) {
      throw new RangeError(
        `${LOAD} as 'state' has parameter '${name}', which the optimizer does not have`,
      );
    }
    if (entry === null || typeof entry !== "object") {
      throw new TypeError(
        `${LOAD} as 'state.${name}' must be an object ({ expAvg }): current value is ${
          formatValue(entry)
        }`,
      );
    }
    checkKnownKeys(LOAD, `state.${name}`, entry, ["expAvg", "quantized"]);
    const expAvg: unknown = entry.expAvg;
    if (
      expAvg === null || typeof expAvg !== "object" ||
      typeof (expAvg as ArrayLike<number>).length !== "number"
    ) {
      throw new TypeError(
        `${LOAD} as 'state.${name}.expAvg' must be an array of numbers: current value is ${
          formatValue(expAvg)
        }`,
      );
    }
    if ((expAvg as ArrayLike<number>).length !== size) {
      throw new RangeError(
        `${LOAD} as 'state.${name}.expAvg' must have ${size} values: current length is ${
          (expAvg as ArrayLike<number>).length
        }`,
      );
    }
    checkNumbers(LOAD, `state.${name}.expAvg`, expAvg as ArrayLike<unknown>);
    if (entry.quantized !== undefined) checkQuantized(name, entry.quantized, size);
  }
  if (!Number.isInteger(iterations) || iterations < 0) {
    throw new RangeError(
      `${LOAD} as 'iterations' must be a non-negative integer: current value is ${
        formatValue(iterations)
      }`,
    );
  }
  return values;
}

/** `state.<name>.quantized`: a code an element, a finite absmax >= 0 a block. */
function checkQuantized(name: string, quantized: unknown, size: number): void {
  const where = `state.${name}.quantized`;
  const { codes, absmax } = (quantized ?? {}) as Partial<QuantizedMoments>;
  if (!(codes instanceof Uint8Array) || !(absmax instanceof Float32Array)) {
    throw new TypeError(
      `${LOAD} as '${where}' must be { codes: Uint8Array, absmax: Float32Array }: current value is ${
        formatValue(quantized)
      }`,
    );
  }
  checkKnownKeys(LOAD, where, quantized as object, ["codes", "absmax"]);
  const blocks = Math.ceil(size / 256);
  if (codes.length !== size || absmax.length !== blocks) {
    throw new RangeError(
      `${LOAD} as '${where}' must have ${size} codes and ${blocks} absmax values: current lengths are ${codes.length} and ${absmax.length}`,
    );
  }
  const bad = absmax.findIndex((a) => !(a >= 0 && a < Infinity));
  if (bad >= 0) {
    throw new RangeError(
      `${LOAD} as '${where}.absmax[${bad}]' must be finite and >= 0: current value is ${
        absmax[bad]
      }`,
    );
  }
}
