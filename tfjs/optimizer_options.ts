/**
 * The tfjs adapter's options: {@linkcode DecoupledLionWOptimizerOptions}
 * (the core's, and the adapter's own), their checks when the optimizer is
 * made, and what depends on where it runs (a GPU backend, a thread that may
 * not block).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { checkOptions, OPTION_KEYS } from "../src/optimizer/option_rules.ts";
import { checkKnownKeys, formatValue } from "../src/errors/error_grammar.ts";
import { BACKENDS } from "../src/engine/backends.ts";
import type { DecoupledLionWOptions } from "../src/optimizer/options.ts";
import type { ParamGroupOptions } from "../src/optimizer/param_group.ts";
import type { Parameter } from "../src/store/parameter.ts";
import { checkSavedGroups, type SavedGroups } from "./_saved_groups.ts";
import { threadMayBlock } from "./thread_may_block.ts";

/** Options of {@linkcode DecoupledLionWOptimizer}: those of `DecoupledLionW`, and the groups. */
export interface DecoupledLionWOptimizerOptions extends DecoupledLionWOptions {
  /**
   * Splits the parameters into groups once the variables are known (the
   * optimizer is built from the first gradients it sees), for example with
   * `decayGroups`. Not saved by `getConfig()`.
   *
   * @default {one group}
   */
  groups?: (params: readonly Parameter[]) => readonly ParamGroupOptions[];
  /**
   * Compute the per-parameter metrics in every step (see `DecoupledLionW.getMetrics`);
   * {@linkcode DecoupledLionWOptimizer.metrics} changes it between steps.
   *
   * @default {false}
   */
  metrics?: boolean;
  /**
   * The groups as {@linkcode DecoupledLionWOptimizer.getConfig} saved them:
   * which variable (by its position in the order the optimizer was built
   * with) is in which group, and each group's hyperparameters. A model reloaded
   * with its optimizer gets them from its config, so it trains on with the
   * groups it was compiled with; `groups`, where given, comes first.
   *
   * @default {none}
   */
  savedGroups?: SavedGroups;
  /**
   * On a GPU backend (`webgl`, `webgpu`), how the update runs: `"fused"`, as
   * one program per result that reads each tensor once (a WGSL shader on
   * `webgpu`, a fragment shader on `webgl`), or `"ops"`, as tfjs ops (about a
   * dozen passes; for comparison). Ignored on the CPU backends.
   *
   * @default {"fused"}
   */
  deviceUpdate?: DeviceUpdate;
}

/** How the update runs on a GPU backend: see {@linkcode DecoupledLionWOptimizerOptions.deviceUpdate}. */
export type DeviceUpdate = "fused" | "ops";

/** The keys of {@linkcode DecoupledLionWOptimizerOptions}: the core's and the adapter's own. */
const ADAPTER_KEYS: readonly string[] = [
  ...OPTION_KEYS,
  "groups",
  "metrics",
  "savedGroups",
  "deviceUpdate",
];

/** The options, checked: the core's, and the adapter's own. */
export interface AdapterOptions {
  /** The core's options. */
  readonly core: DecoupledLionWOptions;
  /** The groups function, if given. */
  readonly groups: ((params: readonly Parameter[]) => readonly ParamGroupOptions[]) | undefined;
  /** Whether steps compute metrics. */
  readonly metrics: boolean | undefined;
  /** The saved groups, checked. */
  readonly savedGroups: SavedGroups | undefined;
  /** How the update runs on a GPU backend. */
  readonly deviceUpdate: DeviceUpdate | undefined;
}

/**
 * Checks the options when the optimizer is made (bad options fail here, not
 * at the first step).
 *
 * @param options As given.
 * @returns Them, checked.
 * @throws {TypeError} When an option has the wrong type or is unknown.
 * @throws {RangeError} When a value is out of range, or the backend cannot step synchronously.
 */
export function checkAdapterOptions(options: DecoupledLionWOptimizerOptions): AdapterOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot create optimizer as 'options' must be an object: current value is ${
        formatValue(options)
      }`,
    );
  }
  // the adapter's own keys are known keys too (the core's check would not name them)
  checkKnownKeys("Cannot create optimizer", "options", options, ADAPTER_KEYS);
  const { groups, metrics, savedGroups, deviceUpdate, ...rest } = options;
  if (groups !== undefined && typeof groups !== "function") {
    throw new TypeError(
      `Cannot create optimizer as 'groups' must be a function: current value is ${
        formatValue(groups)
      }`,
    );
  }
  if (metrics !== undefined && typeof metrics !== "boolean") {
    throw new TypeError(
      `Cannot create optimizer as 'metrics' must be a boolean: current value is ${
        formatValue(metrics)
      }`,
    );
  }
  if (deviceUpdate !== undefined && deviceUpdate !== "fused" && deviceUpdate !== "ops") {
    throw new RangeError(
      `Cannot create optimizer as 'deviceUpdate' must be "fused" or "ops": current value is ${
        formatValue(deviceUpdate)
      }`,
    );
  }
  checkOptions(rest); // bad options fail here, not at the first step
  const backend = rest.backend ?? "auto";
  if (backend !== "auto" && !BACKENDS[backend].syncSteps) {
    throw new RangeError(
      `Cannot create optimizer as tfjs steps an optimizer synchronously (applyGradients returns before the next op), which the ${backend} backend cannot do (it reads back from its device asynchronously): use backend "auto", "wasm" or "js"`,
    );
  }
  return {
    core: rest,
    groups,
    metrics,
    savedGroups: savedGroups === undefined ? undefined : checkSavedGroups(savedGroups),
    deviceUpdate,
  };
}

/**
 * Refuses what the device path cannot do, when it is built (the backend is
 * known then).
 *
 * @param options The core's options.
 * @throws {RangeError} Naming the option and the backend.
 */
export function checkDeviceOptions(options: DecoupledLionWOptions): void {
  const backend = tf.getBackend();
  const refuse = (what: string) => {
    throw new RangeError(
      `Cannot build the optimizer as ${what} on the ${backend} backend, where the update runs on tfjs's own tensors: train on the cpu or wasm backend for it`,
    );
  };
  if (options.momentumDtype === "bfloat16") {
    refuse(`momentumDtype "bfloat16" is not available (tfjs has no bfloat16 tensors)`);
  }
  if (options.momentumDtype === "uint8") {
    refuse(`momentumDtype "uint8" is not available (the fused programs keep float32 moments)`);
  }
  if (options.collective !== undefined) refuse("data-parallel training is not available");
}

/**
 * The options a thread that may not block can run: where it may not block
 * (a browser's main thread), workers could never step, so the optimizer runs
 * inline, and says so when workers were asked for by number.
 *
 * @param options The core's options.
 * @returns Them, or them with `workers: 0`.
 */
export function workersThatCanRun(options: DecoupledLionWOptions): DecoupledLionWOptions {
  if (options.workers === 0 || threadMayBlock()) return options;
  if (typeof options.workers === "number") {
    (options.logger === undefined ? console : options.logger)?.warn(
      `Running inline instead of on ${options.workers} workers as this thread may not block in Atomics.wait (a browser's main thread), which tfjs's synchronous applyGradients() needs: train in a worker to use workers`,
    );
  }
  return { ...options, workers: 0 };
}
