/**
 * The optimizer's option rules, in one place: checks of the constructor's
 * arguments (engine options, the parameter list or groups, the step's and
 * `zeroGrad`'s options) and every rule about combining them, at
 * construction and at each step; the backend rules read the backend's row
 * of the capability table. Each names the bad value in its message.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { checkKnownKeys, checkMaxGradNorm } from "../_internal/validate.ts";
import {
  DEFAULT_HYPERPARAMETERS,
  type GroupValues,
  HYPERPARAMETER_NAMES,
  type HyperparameterValues,
  resolveHyperparameters,
} from "./hyperparameters.ts";
import { type DecoupledLionWOptions, ENGINE_OPTION_KEYS, type StepOptions } from "./options.ts";
import {
  BACKEND_NAMES,
  type BackendCapabilities,
  type BackendName,
  BACKENDS,
  backendsWith,
  GPU_JS_MODES,
} from "../engine/backends.ts";
import type { EngineChoice } from "../engine/engine_factory.ts";
import { NON_FINITE_POLICIES, type NonFinitePolicy } from "../step/step_decision.ts";
import type { ParamGroupOptions } from "./param_group.ts";
import { Parameter } from "../store/parameter.ts";
import { type ParameterSlots, parameterSlots, type StoreMemory } from "../store/slots.ts";
import type { Collective } from "../distributed/collective.ts";
import { STEP_DRIVERS, type StepDriverRow, stepDriverRow } from "../distributed/step_drivers.ts";
import { type Exchange, EXCHANGES } from "../distributed/exchange.ts";
import { MOMENTUM_DTYPES, type MomentumDtype } from "../store/moment_dtype.ts";

/** The start of every constructor error message. */
export const CREATE = "Cannot create optimizer";
/** The keys of `DecoupledLionWOptions`. */
export const OPTION_KEYS: readonly string[] = [...HYPERPARAMETER_NAMES, ...ENGINE_OPTION_KEYS];
/** The keys of a `ParamGroupOptions`. */
const GROUP_KEYS: readonly string[] = ["params", ...HYPERPARAMETER_NAMES];

/** The engine options, checked, with their defaults. */
export interface EngineOptions extends EngineChoice {
  readonly nonFinite: NonFinitePolicy;
  readonly maxGradNorm: number;
  readonly collective: Collective | undefined;
  readonly shardState: boolean;
  readonly checkRanksEvery: number;
  /** What the ranks exchange. */
  readonly exchange: Exchange;
  /** The strategy the options ask for (data-parallel with a `collective`, else local). */
  readonly strategy: StepDriverRow;
  /** `undefined`: the store's. */
  readonly momentumDtype: MomentumDtype | undefined;
}

/** Joins names as `"a", "b" or "c"`. */
function alternatives(names: readonly string[]): string {
  const quoted = names.map((name) => `"${name}"`);
  return `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

function checkOneOf<T extends string>(key: string, value: unknown, names: readonly T[]): T {
  if (typeof value !== "string" || !(names as readonly string[]).includes(value)) {
    throw new RangeError(
      `${CREATE} as '${key}' must be ${alternatives(names)}: current value is ${
        formatValue(value)
      }`,
    );
  }
  return value as T;
}

/** `workers`: `"auto"` or an integer in [0, 256]. */
function checkWorkers(workers: unknown): number | "auto" {
  if (workers === "auto") return workers;
  if (typeof workers !== "number" || !Number.isInteger(workers) || workers < 0 || workers > 256) {
    throw new RangeError(
      `${CREATE} as 'workers' must be "auto" or an integer in [0, 256]: current value is ${
        formatValue(workers)
      }`,
    );
  }
  return workers;
}

/**
 * The options object checked: known keys only, engine options valid, the
 * group defaults checked and filled from the schema.
 *
 * @param options As given.
 * @returns The engine options and the groups' defaults.
 */
export function checkOptions(
  options: DecoupledLionWOptions,
): { engine: EngineOptions; defaults: HyperparameterValues } {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${CREATE} as 'options' must be an object: current value is ${formatValue(options)}`,
    );
  }
  checkKnownKeys(CREATE, "options", options, OPTION_KEYS);
  const engine: EngineOptions = {
    nonFinite: checkOneOf("nonFinite", options.nonFinite ?? "error", NON_FINITE_POLICIES),
    backend: checkOneOf("backend", options.backend ?? "auto", ["auto", ...BACKEND_NAMES]),
    workers: checkWorkers(options.workers ?? "auto"),
    fma: checkOneOf("fma", options.fma ?? "auto", ["auto", "exact"]),
    momentumDtype: options.momentumDtype === undefined
      ? undefined
      : checkOneOf("momentumDtype", options.momentumDtype, MOMENTUM_DTYPES),
    gpuMode: checkOneOf("gpuMode", options.gpuMode ?? "auto", ["auto", ...GPU_JS_MODES]),
    maxGradNorm: checkMaxGradNorm(CREATE, "maxGradNorm", options.maxGradNorm ?? Infinity),
    workerUrl: checkWorkerUrl(options.workerUrl),
    ...checkDataParallel(options),
  };
  if (Number.isFinite(engine.maxGradNorm) && !engine.strategy.capabilities.clipping) {
    throw new RangeError(
      `${CREATE} as 'maxGradNorm' clips the gradients, which "${engine.strategy.name}" training does not support (the vote's size is lr, whatever the norm): current value is ${engine.maxGradNorm}`,
    );
  }
  return { engine, defaults: resolveHyperparameters(CREATE, "", options, DEFAULT_HYPERPARAMETERS) };
}

/** `collective`, `shardState`, `checkRanksEvery`, and the strategy they ask for. */
function checkDataParallel(
  options: DecoupledLionWOptions,
): Pick<EngineOptions, "collective" | "shardState" | "checkRanksEvery" | "exchange" | "strategy"> {
  const { collective, shardState = false, checkRanksEvery = 0 } = options;
  const exchange = checkOneOf("exchange", options.exchange ?? "float32", EXCHANGES);
  if (
    collective !== undefined &&
    (collective === null || typeof collective !== "object" ||
      !Number.isInteger(collective.rank) || !Number.isInteger(collective.worldSize) ||
      collective.worldSize < 1 || collective.rank < 0 || collective.rank >= collective.worldSize ||
      typeof collective.allReduceSum !== "function")
  ) {
    throw new TypeError(
      `${CREATE} as 'collective' must be a Collective (rank, worldSize, allReduceSum, …): current value is ${
        formatValue(collective)
      }`,
    );
  }
  if (typeof shardState !== "boolean") {
    throw new TypeError(
      `${CREATE} as 'shardState' must be a boolean: current value is ${formatValue(shardState)}`,
    );
  }
  if (exchange !== "float32" && collective === undefined) {
    throw new RangeError(
      `${CREATE} as 'exchange' "${exchange}" is what the ranks of a 'collective' exchange, and none was given`,
    );
  }
  const strategy = stepDriverRow({ collective, exchange });
  if (shardState && !strategy.capabilities.shardedState) {
    const sharding = STEP_DRIVERS.filter((row) => row.capabilities.shardedState);
    throw new RangeError(
      `${CREATE} as 'shardState' shards the state across the ranks of a 'collective' (${
        sharding.map((row) => `"${row.name}"`).join(", ")
      } training), and none was given: the options ask for "${strategy.name}" training`,
    );
  }
  if (!Number.isInteger(checkRanksEvery) || checkRanksEvery < 0) {
    throw new RangeError(
      `${CREATE} as 'checkRanksEvery' must be a non-negative integer: current value is ${
        formatValue(checkRanksEvery)
      }`,
    );
  }
  return { collective, shardState, checkRanksEvery, exchange, strategy };
}

/** `workerUrl`: a URL, or a string that parses as one (relative to the page, where there is one). */
function checkWorkerUrl(url: unknown): URL | undefined {
  if (url === undefined || url instanceof URL) return url;
  if (typeof url === "string") {
    try {
      return new URL(url, globalThis.location?.href);
    } catch {
      // reported below
    }
  }
  throw new TypeError(
    `${CREATE} as 'workerUrl' must be a URL: current value is ${formatValue(url)}`,
  );
}

/** A plain parameter list is one group. */
export function toGroupOptions(
  params: readonly Parameter[] | readonly ParamGroupOptions[],
): readonly ParamGroupOptions[] {
  if (!Array.isArray(params)) {
    throw new TypeError(
      `${CREATE} as 'params' must be an array of parameters or of groups: current value is ${
        formatValue(params)
      }`,
    );
  }
  if (params.every((p: unknown) => p instanceof Parameter)) {
    return [{ params: params as readonly Parameter[] }];
  }
  params.forEach((group: unknown, g) => {
    if (
      group === null || typeof group !== "object" || group instanceof Parameter ||
      !Array.isArray((group as ParamGroupOptions).params)
    ) {
      throw new TypeError(
        `${CREATE} as 'params[${g}]' must be a group ({ params: Parameter[] }) like the others: current value is ${
          formatValue(group)
        }`,
      );
    }
    checkKnownKeys(CREATE, `paramGroups[${g}]`, group, GROUP_KEYS);
  });
  return params as readonly ParamGroupOptions[];
}

/** Every parameter's slots, checking each is listed once and owned by no other optimizer. */
export function collectParameters(
  groups: readonly ParamGroupOptions[],
): Map<Parameter, ParameterSlots> {
  const slotsByParam = new Map<Parameter, ParameterSlots>();
  groups.forEach((group, g) => {
    group.params.forEach((param, i) => {
      if (!(param instanceof Parameter)) {
        throw new TypeError(
          `${CREATE} as 'paramGroups[${g}].params[${i}]' must be a Parameter: current value is ${
            formatValue(param)
          }`,
        );
      }
      if (slotsByParam.has(param)) {
        throw new RangeError(`${CREATE} as parameter '${param.name}' is listed more than once`);
      }
      const slots = parameterSlots(param);
      if (slots.owner !== undefined) {
        throw new RangeError(
          `${CREATE} as parameter '${param.name}' is used by another optimizer: close that one first`,
        );
      }
      slotsByParam.set(param, slots);
    });
  });
  return slotsByParam;
}

/**
 * A group's values: its own hyperparameters, checked, else the optimizer's
 * defaults; `initialLr` is its `lr`.
 */
export function groupValuesOf(
  group: ParamGroupOptions,
  g: number,
  defaults: HyperparameterValues,
): GroupValues {
  const values = resolveHyperparameters(CREATE, `paramGroups[${g}].`, group, defaults);
  return { ...values, initialLr: values.lr };
}

/** The arguments of `step()`: a closure, or step options. */
export function checkStepArguments<T>(
  arg: (() => T | Promise<T>) | StepOptions<T> | undefined,
): { closure: (() => T | Promise<T>) | undefined; metrics: boolean; maxGradNorm?: number } {
  if (arg === undefined) return { closure: undefined, metrics: false };
  if (typeof arg === "function") return { closure: arg, metrics: false };
  if (arg === null || typeof arg !== "object") {
    throw new TypeError(
      `Cannot step as the argument must be a closure or step options: current value is ${
        formatValue(arg)
      }`,
    );
  }
  checkKnownKeys("Cannot step", "options", arg, ["metrics", "closure", "maxGradNorm"]);
  const metrics = arg.metrics ?? false;
  if (typeof metrics !== "boolean") {
    throw new TypeError(
      `Cannot step as 'metrics' must be a boolean: current value is ${formatValue(metrics)}`,
    );
  }
  if (arg.closure !== undefined && typeof arg.closure !== "function") {
    throw new TypeError(
      `Cannot step as 'closure' must be a function: current value is ${formatValue(arg.closure)}`,
    );
  }
  if (arg.maxGradNorm === undefined) return { closure: arg.closure, metrics };
  return {
    closure: arg.closure,
    metrics,
    maxGradNorm: checkMaxGradNorm("Cannot step", "maxGradNorm", arg.maxGradNorm),
  };
}

/** The options of `zeroGrad()`: `setToNone`, default `true`. */
export function checkZeroGradOptions(options: { setToNone?: boolean }): boolean {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot zero gradients as 'options' must be an object: current value is ${
        formatValue(options)
      }`,
    );
  }
  checkKnownKeys("Cannot zero gradients", "options", options, ["setToNone"]);
  const setToNone = options.setToNone ?? true;
  if (typeof setToNone !== "boolean") {
    throw new TypeError(
      `Cannot zero gradients as 'setToNone' must be a boolean: current value is ${
        formatValue(setToNone)
      }`,
    );
  }
  return setToNone;
}

/**
 * The memory of the one store the parameters come from.
 *
 * @param slots Every parameter's slots.
 * @returns The store's memory.
 * @throws {RangeError} When there are no parameters, or several stores.
 */
export function oneStore(slots: ReadonlyMap<Parameter, ParameterSlots>): StoreMemory {
  const stores = new Set([...slots.values()].map((s) => s.memory));
  if (stores.size !== 1) {
    throw new RangeError(
      stores.size === 0
        ? `${CREATE} as it got an empty parameter list`
        : `${CREATE} as its parameters come from ${stores.size} stores: use one ParameterStore per optimizer`,
    );
  }
  return [...stores][0]!;
}

/** Backends as messages list them: `"wasm" or "js"`. */
function backendList(names: readonly BackendName[]): string {
  return alternatives([...names].reverse());
}

/**
 * The rules about combining engine options, at construction: the store's
 * moment type, `momentumDtype`, `shardState` and the backend asked for
 * (`"auto"` takes only backends that support all of them).
 *
 * @param engine The checked engine options.
 * @param storeDtype The store's exp_avg slots.
 * @returns The moment type the optimizer uses.
 */
export function checkEngineCombination(
  engine: EngineOptions,
  storeDtype: MomentumDtype,
): MomentumDtype {
  const momentumDtype = engine.momentumDtype ?? storeDtype;
  if (storeDtype !== "float32" && momentumDtype !== storeDtype) {
    throw new RangeError(
      `${CREATE} as the store's exp_avg slots are ${storeDtype}-sized (ParameterStore momentumDtype "${storeDtype}"): 'momentumDtype' must be "${storeDtype}", current value is "${momentumDtype}"`,
    );
  }
  const asked = engine.backend === "auto" ? undefined : BACKENDS[engine.backend];
  const { strategy } = engine;
  if (asked?.state === "device" && !strategy.capabilities.deviceState) {
    throw new RangeError(
      `${CREATE} as "${strategy.name}" training reads and writes exp_avg on the host, which the ${engine.backend} backend keeps on a device: use backend ${
        backendList(backendsWith("shardedState"))
      }`,
    );
  }
  if (momentumDtype !== "float32") checkCompactMoments(engine, momentumDtype, asked);
  if (engine.shardState && asked?.shardedState === false) {
    throw new RangeError(
      `${CREATE} as 'shardState' needs a backend that updates the store in place (${
        backendList(backendsWith("shardedState"))
      }): current value of 'backend' is "${engine.backend}"`,
    );
  }
  return momentumDtype;
}

/** The capability each compact moment type needs, of a backend and of a strategy. */
const MOMENT_CAPABILITY = {
  bfloat16: "bfloat16Moments",
  uint8: "uint8Moments",
} as const;

/** The rules about a compact moment type: the strategy, the backend, sharded state, the policy. */
function checkCompactMoments(
  engine: EngineOptions,
  momentumDtype: "bfloat16" | "uint8",
  asked: BackendCapabilities | undefined,
): void {
  const capability = MOMENT_CAPABILITY[momentumDtype];
  const { strategy } = engine;
  if (!strategy.capabilities[capability]) {
    throw new RangeError(
      `${CREATE} as 'momentumDtype' "${momentumDtype}" is not supported by "${strategy.name}" training, whose kernels keep each rank's momentum in float32: current value is "${momentumDtype}"`,
    );
  }
  if (asked?.[capability] === false || engine.shardState) {
    throw new RangeError(
      `${CREATE} as 'momentumDtype' "${momentumDtype}" runs on the CPU kernels (${
        backendList(backendsWith(capability))
      }) without sharded state: current value of ${
        engine.shardState ? "'shardState' is true" : `'backend' is "${engine.backend}"`
      }`,
    );
  }
  if (momentumDtype === "uint8" && engine.nonFinite === "ignore") {
    throw new RangeError(
      `${CREATE} as 'momentumDtype' "uint8" must never quantize a NaN or an infinity (a block's scale would be lost): 'nonFinite' must be "error" or "skip", current value is "ignore"`,
    );
  }
}

/**
 * The rules about a step, on the backend that runs it: caution needs
 * exp_avg on the host and whole on each rank; a synchronous step, a backend
 * whose kernels update the host's memory before they return.
 *
 * @param backend The backend running the steps.
 * @param shardState Whether exp_avg is sharded across the ranks.
 * @param groups The groups, as they are now (a schedule may change them).
 * @param sync Whether the step is synchronous (`stepSync`).
 * @throws {RangeError} Naming the group or the backend.
 */
export function checkStepCombination(
  backend: BackendName,
  shardState: boolean,
  groups: readonly { readonly cautious: boolean }[],
  sync: boolean,
): void {
  const row = BACKENDS[backend];
  const cpu = backendList(backendsWith("syncSteps"));
  if (sync && !row.syncSteps) {
    throw new RangeError(
      `Cannot step synchronously on the ${backend} backend, which reads back from the device asynchronously: use step(), or backend ${cpu}`,
    );
  }
  const cautious = groups.findIndex((group) => group.cautious);
  if (cautious < 0) return;
  if (!row.cautious) {
    throw new RangeError(
      `Cannot step as paramGroups[${cautious}] is cautious, which the ${backend} backend does not support (its exp_avg stays on the device): use backend ${
        backendList(backendsWith("cautious"))
      }`,
    );
  }
  if (shardState) {
    throw new RangeError(
      `Cannot step as paramGroups[${cautious}] is cautious, which sharded state (shardState) does not support: its caution factor needs every block of a parameter`,
    );
  }
}

/** Names as messages list them: at most five, then a count. */
export function describeNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).map((name) => `'${name}'`).join(", ");
  const more = names.length > 5 ? ` and ${names.length - 5} more` : "";
  return `${names.length === 1 ? "parameter" : "parameters"} ${shown}${more}`;
}
