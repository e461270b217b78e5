/**
 * Checks of the optimizer's constructor arguments: engine options, and the
 * parameter list or groups. Each names the bad value in its message.
 *
 * @module
 */

import type { GpuModeOption } from "../gpu/gpujs_runtime.ts";
import { formatValue } from "./_format.ts";
import { checkBetas, checkKnownKeys, checkLr, checkWeightDecay } from "./_validate.ts";
import type { NonFinitePolicy } from "./decoupled_lionw.ts";
import type { Logger } from "./logger.ts";
import { ParamGroup, type ParamGroupOptions } from "./param_group.ts";
import { Parameter, type ParameterSlots, parameterSlots } from "./parameter.ts";
import { wasmKernelAvailable } from "./wasm_kernel.ts";

/** The start of every constructor error message. */
export const CREATE = "Cannot create optimizer";
/** The keys of `DecoupledLionWOptions`. */
export const OPTION_KEYS: readonly string[] = [
  "lr",
  "betas",
  "weightDecay",
  "workers",
  "backend",
  "gpuMode",
  "fma",
  "nonFinite",
  "logger",
];
/** The keys of a `ParamGroupOptions`. */
const GROUP_KEYS: readonly string[] = ["params", "lr", "betas", "weightDecay"];
const BACKENDS: readonly string[] = ["auto", "js", "wasm", "gpujs"];
const POLICIES: readonly string[] = ["error", "skip", "ignore"];
const GPU_MODES: readonly string[] = ["auto", "webgpu", "webasm", "cpu"];

/** `nonFinite`: one of the three policies. */
export function checkPolicy(policy: unknown): NonFinitePolicy {
  if (typeof policy !== "string" || !POLICIES.includes(policy)) {
    throw new RangeError(
      `${CREATE} as 'nonFinite' must be "error", "skip" or "ignore": current value is ${
        formatValue(policy)
      }`,
    );
  }
  return policy as NonFinitePolicy;
}

/**
 * `backend`: what it names, resolved for the CPU: `"auto"` becomes `"wasm"`
 * where relaxed SIMD runs, else `"js"` (the optimizer may still move an
 * `"auto"` choice to `"gpujs"` after measuring it).
 */
export function checkBackend(backend: unknown): "js" | "wasm" | "gpujs" {
  if (typeof backend !== "string" || !BACKENDS.includes(backend)) {
    throw new RangeError(
      `${CREATE} as 'backend' must be "auto", "js", "wasm" or "gpujs": current value is ${
        formatValue(backend)
      }`,
    );
  }
  if (backend === "gpujs") return backend;
  const wasm = wasmKernelAvailable();
  if (backend === "wasm" && !wasm) {
    throw new RangeError(
      `${CREATE} as backend "wasm" needs WebAssembly relaxed SIMD, which this runtime lacks: use "js" or "auto"`,
    );
  }
  return backend === "js" || (backend === "auto" && !wasm) ? "js" : "wasm";
}

/** `gpuMode`: `"auto"` or a gpu.js mode. */
export function checkGpuMode(mode: unknown): GpuModeOption {
  if (typeof mode !== "string" || !GPU_MODES.includes(mode)) {
    throw new RangeError(
      `${CREATE} as 'gpuMode' must be "auto", "webgpu", "webasm" or "cpu": current value is ${
        formatValue(mode)
      }`,
    );
  }
  return mode as GpuModeOption;
}

/** `workers`: `"auto"` or an integer in [0, 256]. */
export function checkWorkers(workers: unknown): number | "auto" {
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

/** `fma`: `"auto"` or `"exact"`. */
export function checkFma(fma: unknown): "auto" | "exact" {
  if (fma !== "auto" && fma !== "exact") {
    throw new RangeError(
      `${CREATE} as 'fma' must be "auto" or "exact": current value is ${formatValue(fma)}`,
    );
  }
  return fma;
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

/** A group with its hyperparameters checked and the defaults filled in. */
export function makeGroup(
  group: ParamGroupOptions,
  g: number,
  defaults: { lr: number; betas: readonly [number, number]; weightDecay: number },
  logger: Logger | null,
): ParamGroup {
  const lr = group.lr === undefined
    ? defaults.lr
    : checkLr(CREATE, `paramGroups[${g}].lr`, group.lr);
  const betas = group.betas === undefined
    ? defaults.betas
    : checkBetas(CREATE, `paramGroups[${g}].betas`, group.betas);
  const weightDecay = group.weightDecay === undefined
    ? defaults.weightDecay
    : checkWeightDecay(CREATE, `paramGroups[${g}].weightDecay`, group.weightDecay);
  return new ParamGroup(g, group.params, lr, betas, weightDecay, lr, logger);
}
