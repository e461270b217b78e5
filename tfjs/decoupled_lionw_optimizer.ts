/**
 * {@linkcode DecoupledLionWOptimizer}: DecoupledLionW as a TensorFlow.js
 * optimizer. tfjs computes the gradients. On a CPU backend (`cpu`, `wasm`)
 * each step copies them into a {@linkcode ParameterStore} that mirrors the
 * variables by name, steps the inner {@linkcode DecoupledLionW} there (on
 * its shard workers or inline), and assigns the new values back to the
 * variables. On a GPU backend (`webgl`, `webgpu`) the step runs on the
 * backend's own tensors instead (`_device_path.ts`), and the store is the
 * host copy that checkpoints read.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { checkOptions, OPTION_KEYS } from "../src/optimizer/option_rules.ts";
import { checkKnownKeys, formatValue } from "../src/errors/error_grammar.ts";
import { BACKENDS } from "../src/engine/backends.ts";
import { DecoupledLionW } from "../src/optimizer/decoupled_lionw.ts";
import type { DecoupledLionWOptions } from "../src/optimizer/options.ts";
import type { ParamGroupOptions } from "../src/optimizer/param_group.ts";
import type { Parameter } from "../src/store/parameter.ts";
import { ParameterStore } from "../src/store/parameter_store.ts";
import {
  checkSavedGroups,
  groupsConfig,
  restoreGroups,
  restoreLrs,
  type SavedGroups,
  saveGroups,
} from "./_saved_groups.ts";
import { valuesOf } from "./_tensor_io.ts";
import { activeBackendRow } from "./_tfjs_backends.ts";
import { DevicePath } from "./_device_path.ts";
import { HostPath } from "./_host_path.ts";
import type { NamedMoment, PathEntry, StepPath } from "./_step_path.ts";
import { programsOfBackend } from "./_device_programs.ts";
import { MirroredLionW } from "./_mirrored_lionw.ts";
import type { MetricRecord } from "../src/step/metrics.ts";
import { threadMayBlock } from "./thread_may_block.ts";

/** A tensor and its name, as `tf.Optimizer.getWeights()` returns them (tfjs-core does not export the type). */
export interface NamedTensor {
  /** The name. */
  name: string;
  /** The tensor. */
  tensor: tf.Tensor;
}

/** The suffix of a moment's name in {@linkcode DecoupledLionWOptimizer.getWeights}. */
export const EXP_AVG_SUFFIX = "/exp_avg";

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

/** What `setWeights()` gave before the optimizer was built: the moments by variable name. */
interface PendingWeights {
  readonly iterations: number;
  readonly expAvg: Map<string, { readonly values: Float32Array; readonly shape: number[] }>;
}

/** The keys of {@linkcode DecoupledLionWOptimizerOptions}: the core's and the adapter's own. */
const ADAPTER_KEYS: readonly string[] = [
  ...OPTION_KEYS,
  "groups",
  "metrics",
  "savedGroups",
  "deviceUpdate",
];

/** The options `getConfig()` saves: all but the objects of this run (`logger`, `collective`; `groups` is not an option of the core). */
const SERIALIZED_KEYS: readonly string[] = [
  ...OPTION_KEYS.filter((key) => key !== "logger" && key !== "workerUrl" && key !== "collective"),
  "metrics",
  "deviceUpdate",
];

/**
 * DecoupledLionW as a `tf.Optimizer`: `model.compile({ optimizer })`,
 * `optimizer.minimize(f)` and `applyGradients()` work as with tfjs's own.
 *
 * The optimizer is built from the variables of the first `applyGradients()`
 * (or {@linkcode DecoupledLionWOptimizer.prepare}): one `ParameterStore`
 * mirrors them by name. A variable that is not among them is refused later:
 * build a new optimizer for a new set of variables. Steps are synchronous,
 * as tfjs requires: with workers, the calling thread blocks in
 * `Atomics.wait` while they run the step (Deno, Node and workers may; on a
 * browser's main thread the optimizer runs inline instead).
 *
 * @example Minimize a loss
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import "@tensorflow/tfjs-layers"; // registers the ops' gradients, which tfjs-core alone lacks
 * import { DecoupledLionWOptimizer } from "@decoupled/lionw/tfjs";
 * import assert from "node:assert/strict";
 *
 * tf.env().set("PROD", true); // tfjs takes Deno for Node: no "use tfjs-node" banner
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.tensor1d([1, -1]), true, "doc.w");
 * const optimizer = new DecoupledLionWOptimizer({ lr: 0.1, weightDecay: 0 });
 * for (let i = 0; i < 3; i++) optimizer.minimize(() => tf.sum(tf.square(w)));
 * // Lion moves each weight by lr per step, against its gradient's sign
 * assert.deepEqual([...w.dataSync()].map((x) => x.toFixed(4)), ["0.7000", "-0.7000"]);
 * assert.equal(optimizer.iterations, 3);
 * await optimizer.close();
 * w.dispose();
 * ```
 */
export class DecoupledLionWOptimizer extends tf.Optimizer {
  /** The name tfjs serializes this class under. */
  static get className(): string {
    return "DecoupledLionW";
  }

  /**
   * Computes the per-parameter metrics in the coming steps (read them with
   * `optimizer.optimizer.getMetrics()`).
   */
  metrics: boolean;
  readonly #options: DecoupledLionWOptions;
  readonly #groups: ((params: readonly Parameter[]) => readonly ParamGroupOptions[]) | undefined;
  readonly #savedGroups: SavedGroups | undefined;
  #inner: DecoupledLionW | undefined;
  #store: ParameterStore | undefined;
  /** Parameters by variable name, in the order the optimizer was built with. */
  #params = new Map<string, Parameter>();
  #pending: PendingWeights | undefined;
  readonly #deviceUpdate: DeviceUpdate;
  /** Where the steps run (the store on a CPU backend, the device on a GPU one), once built. */
  #path: StepPath | undefined;
  #closed = false;

  /**
   * Checks the options; the optimizer itself is built at the first step.
   *
   * @param options The options of `DecoupledLionW`, and the groups.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(options: DecoupledLionWOptimizerOptions = {}) {
    super();
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
    this.#options = rest;
    this.#groups = groups;
    this.#savedGroups = savedGroups === undefined ? undefined : checkSavedGroups(savedGroups);
    this.metrics = metrics ?? false;
    this.#deviceUpdate = deviceUpdate ?? "fused";
    this.iterations_ = 0;
  }

  /** Steps applied so far (on a GPU backend, a skipped step counts until its verdict is read back). */
  override get iterations(): number {
    return this.#path?.iterations ?? this.iterations_;
  }

  /** Whether the steps run on the tfjs backend's device (`webgl`, `webgpu`); known from the first step. */
  get onDevice(): boolean {
    return this.#path instanceof DevicePath;
  }

  /**
   * The inner optimizer, for metrics, schedules, clipping and checkpoints.
   *
   * @throws {Error} Before the first step (or `prepare()`), which builds it.
   */
  get optimizer(): DecoupledLionW {
    if (this.#inner === undefined) {
      throw new Error(
        "The inner optimizer is built from the variables of the first applyGradients(): step once, or await prepare(variables) first",
      );
    }
    return this.#inner;
  }

  /** The parameter store mirroring the variables (after the first step). */
  get store(): ParameterStore | undefined {
    return this.#store;
  }

  /**
   * Builds the inner optimizer from `variables` now, and waits until its
   * workers have started: needed before the first step where a thread
   * cannot start workers while it blocks (a browser's worker).
   *
   * @param variables Every variable the optimizer will update.
   * @returns The inner optimizer.
   */
  async prepare(variables: readonly tf.Variable[]): Promise<DecoupledLionW> {
    this.#build(variables.map((variable) => ({ name: variable.name, variable, gradient: null })));
    await this.#inner!.ready();
    return this.#inner!;
  }

  /**
   * Applies one DecoupledLionW step with these gradients: copies them into
   * the store, steps, and assigns the new values to the variables.
   * Variables with a `null` gradient (or none) keep their values and state.
   *
   * @param variableGradients Gradients by variable name, as a map or a list.
   * @throws {RangeError} When a name is not a registered variable, a
   * gradient's shape or dtype is wrong, or a variable was not among those
   * the optimizer was built with; nothing changes then.
   */
  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    this.#assertOpen();
    const entries = gradientEntries(variableGradients);
    if (this.#inner === undefined) this.#build(entries);
    for (const entry of entries) this.#checkKnown(entry);
    this.#path!.step(entries, this.metrics);
  }

  /**
   * `iter` first, then `${variable}/exp_avg` for each variable with state,
   * in the order the optimizer was built with (as tfjs's own optimizers).
   *
   * @returns New tensors; the caller disposes them.
   */
  override async getWeights(): Promise<NamedTensor[]> {
    // set but not yet used: given back as set, so that load → save keeps every moment
    const pending = [...this.#pending?.expAvg ?? []].map(([name, { values, shape }]) => ({
      name,
      tensor: tf.tensor(values.slice(), shape),
    }));
    // a path first settles (on a GPU backend: raises a non-finite step's error, fixes the count)
    const moments: NamedMoment[] = this.#path === undefined ? pending : await this.#path.moments();
    return [
      { name: "iter", tensor: tf.scalar(this.iterations, "int32") },
      ...moments.map(({ name, tensor }) => ({ name: `${name}${EXP_AVG_SUFFIX}`, tensor })),
    ];
  }

  /**
   * The metrics of the last step (see `DecoupledLionW.getMetrics`), on every
   * backend: on a GPU backend, the step's partial sums are read back now,
   * once; on the CPU backends, the inner optimizer's record. Empty before
   * the first step, or after a step without metrics.
   *
   * @returns The record.
   * @throws {RangeError} On a GPU backend, when a step since the last call
   * had a non-finite gradient under `nonFinite: "error"`.
   */
  async getMetrics(): Promise<MetricRecord> {
    return await this.#path?.metrics() ?? {};
  }

  /**
   * Brings the state into the inner optimizer's store, so that
   * `optimizer.optimizer.stateDict()` and checkpoints read it: on a GPU
   * backend, the variables' values and exp_avg are read back from the device
   * (`saveCheckpoint(optimizer.optimizer, …)` does this itself). Loading a
   * checkpoint into the inner optimizer sends it back to the device.
   *
   * @throws {RangeError} On a GPU backend, when a step since the last call
   * had a non-finite gradient under `nonFinite: "error"`.
   */
  async pullState(): Promise<void> {
    await this.#inner?.pullState();
  }

  /**
   * Loads what {@linkcode DecoupledLionWOptimizer.getWeights} saved (the
   * values are copied). Before the optimizer is built, the weights wait for
   * the first step.
   *
   * @param weightValues `iter`, then `${variable}/exp_avg` tensors.
   * @throws {RangeError} When a name is not `${variable}/exp_avg` of a
   * variable of this optimizer, or a size does not fit; nothing changes then.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const [iter, ...moments] = weightValues;
    if (iter === undefined || iter.name !== "iter") {
      throw new RangeError(
        `Cannot set weights as the first must be "iter": current value is ${
          formatValue(iter?.name)
        }`,
      );
    }
    const iterations = (await iter.tensor.data())[0]!;
    const expAvg: PendingWeights["expAvg"] = new Map();
    for (const { name, tensor } of moments) {
      if (!name.endsWith(EXP_AVG_SUFFIX)) {
        throw new RangeError(
          `Cannot set weights as "${name}" is not named <variable>${EXP_AVG_SUFFIX}`,
        );
      }
      expAvg.set(name.slice(0, -EXP_AVG_SUFFIX.length), {
        values: Float32Array.from(await tensor.data()),
        shape: [...tensor.shape],
      });
    }
    const pending = { iterations, expAvg };
    if (this.#inner === undefined) {
      this.#pending = pending;
      this.iterations_ = iterations;
      return;
    }
    this.#load(pending);
  }

  /**
   * The options (without `groups` and `logger`, which are functions), for
   * `model.save(..., { includeOptimizer: true })`.
   *
   * @returns The serializable options.
   */
  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {};
    const options = this.#options as Record<string, unknown>;
    for (const key of SERIALIZED_KEYS) {
      const value = key === "metrics" ? this.metrics : options[key];
      if (value === undefined || value === Infinity) continue; // JSON has no Infinity: the default
      config[key] = (Array.isArray(value) ? [...value] : value) as tf.serialization.ConfigDictValue;
    }
    if (this.#options.workerUrl !== undefined) config.workerUrl = String(this.#options.workerUrl);
    const saved = this.#inner === undefined
      ? this.#savedGroups
      : saveGroups(this.#inner, [...this.#params.values()]);
    if (saved !== undefined) config.savedGroups = groupsConfig(saved);
    return config;
  }

  /**
   * Builds an optimizer from {@linkcode DecoupledLionWOptimizer.getConfig}'s
   * options (how tfjs-layers restores a saved model's optimizer).
   *
   * @param cls This class.
   * @param config The options.
   * @returns The optimizer.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    // only the options: tfjs-layers adds keys of its own (customObjects)
    const options = Object.fromEntries(
      Object.entries(config).filter(([key]) =>
        SERIALIZED_KEYS.includes(key) || key === "workerUrl" || key === "savedGroups"
      ),
    );
    return new cls(options);
  }

  /** Ends the inner optimizer's workers (without waiting; see {@linkcode DecoupledLionWOptimizer.close}). */
  override dispose(): void {
    void this.close();
    super.dispose();
  }

  /** Ends the inner optimizer's workers, and frees the moments a GPU backend holds; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#path?.dispose();
    await this.#inner?.close();
  }

  /** Same as {@linkcode DecoupledLionWOptimizer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error("Cannot apply gradients as the optimizer is closed");
  }

  /** Mirrors the variables in a new store and builds the inner optimizer over it. */
  #build(entries: readonly PathEntry[]): void {
    this.#assertOpen();
    if (this.#inner !== undefined) {
      throw new Error("Cannot prepare the optimizer twice: it is built already");
    }
    const pending = this.#pending;
    const onDevice = activeBackendRow().path === "device";
    if (onDevice) checkDeviceOptions(this.#options);
    const store = new ParameterStore();
    const params = new Map<string, Parameter>();
    for (const { name, variable } of entries) {
      checkFloat32(name, variable);
      // on a device, the store is filled when the state is pulled (a read now would stall, or fail)
      params.set(name, store.add(name, variable.shape, onDevice ? undefined : valuesOf(variable)));
    }
    const list = [...params.values()];
    const saved = this.#groups === undefined ? this.#savedGroups : undefined;
    const groups = this.#groups?.(list) ??
      (saved === undefined ? list : restoreGroups(saved, list));
    if (onDevice) {
      // the inner optimizer never steps here: no workers to start
      const inner = new MirroredLionW(groups, { ...this.#options, workers: 0 });
      this.#inner = inner;
      this.#path = new DevicePath(
        inner,
        params,
        new Map(entries.map(({ name, variable }) => [name, variable])),
        {
          nonFinite: inner.nonFinite,
          maxGradNorm: this.#options.maxGradNorm ?? Infinity,
          programs: this.#deviceUpdate === "fused" ? programsOfBackend() : undefined,
        },
      );
    } else {
      const inner = new DecoupledLionW(groups, this.#workersThatCanRun(this.#options));
      this.#inner = inner;
      this.#path = new HostPath(inner, params, entries);
    }
    if (saved !== undefined) restoreLrs(saved, this.#inner);
    this.#params = params;
    this.#store = store;
    if (pending !== undefined) {
      this.#pending = undefined;
      this.#load(pending);
    }
  }

  /** Where this thread may not block, workers could never step: run inline, and say so when asked for. */
  #workersThatCanRun(options: DecoupledLionWOptions): DecoupledLionWOptions {
    if (options.workers === 0 || threadMayBlock()) return options;
    if (typeof options.workers === "number") {
      (options.logger === undefined ? console : options.logger)?.warn(
        `Running inline instead of on ${options.workers} workers as this thread may not block in Atomics.wait (a browser's main thread), which tfjs's synchronous applyGradients() needs: train in a worker to use workers`,
      );
    }
    return { ...options, workers: 0 };
  }

  #checkKnown({ name, variable, gradient }: PathEntry): void {
    const param = this.#params.get(name);
    if (param === undefined) {
      throw new RangeError(
        `Cannot apply gradients as variable "${name}" is not among the ${this.#params.size} this optimizer was built with: build a new optimizer for a new set of variables`,
      );
    }
    if (!tf.util.arraysEqual(variable.shape, [...param.shape])) {
      throw new RangeError(
        `Cannot apply gradients as variable "${name}" has shape [${variable.shape}], not [${param.shape}] as when the optimizer was built`,
      );
    }
    if (gradient === null) return;
    if (gradient.dtype !== "float32" || !tf.util.arraysEqual(gradient.shape, [...param.shape])) {
      throw new RangeError(
        `Cannot apply gradients as the gradient of "${name}" must be float32 of shape [${param.shape}]: current value is ${gradient.dtype} of shape [${gradient.shape}]`,
      );
    }
  }

  /**
   * Loads saved moments into the path's state, all or none. By name; where the names are not this optimizer's but there is
   * one moment per variable, by position, as tfjs's own optimizers load
   * (a model reloaded in the same process gets suffixed variable names).
   */
  #load({ iterations, expAvg }: PendingWeights): void {
    const names = [...this.#params.keys()];
    const saved = [...expAvg.keys()];
    const byName = saved.every((name) => this.#params.has(name));
    if (!byName && saved.length !== names.length) {
      const unknown = saved.find((name) => !this.#params.has(name));
      throw new RangeError(
        `Cannot set weights as "${unknown}${EXP_AVG_SUFFIX}" names no variable of this optimizer (${
          names.map((name) => `"${name}"`).join(", ")
        }), and there are ${saved.length} moments for ${names.length} variables`,
      );
    }
    const moments = new Map(saved.map((name, i) => {
      const target = byName ? name : names[i]!;
      const { values } = expAvg.get(name)!;
      checkMomentSize(target, values, this.#params.get(target)!);
      return [target, values];
    }));
    this.#path!.load(iterations, moments);
  }
}

tf.serialization.registerClass(DecoupledLionWOptimizer);

/**
 * `new DecoupledLionWOptimizer(options)`, in the style of `tf.train.adam()`.
 *
 * @example In a tfjs-layers model
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import "@tensorflow/tfjs-backend-cpu";
 * import { lionw } from "@decoupled/lionw/tfjs";
 * import assert from "node:assert/strict";
 *
 * tf.env().set("PROD", true); // tfjs takes Deno for Node: no "use tfjs-node" banner
 * await tf.setBackend("cpu");
 * const optimizer = lionw({ lr: 3e-4, weightDecay: 0.1 });
 * assert.equal(optimizer.getClassName(), "DecoupledLionW");
 * assert.deepEqual(optimizer.getConfig(), { lr: 3e-4, weightDecay: 0.1, metrics: false });
 * ```
 *
 * @param options As for {@linkcode DecoupledLionWOptimizer}.
 * @returns The optimizer.
 */
export function lionw(options: DecoupledLionWOptimizerOptions = {}): DecoupledLionWOptimizer {
  return new DecoupledLionWOptimizer(options);
}

/** What the device path cannot do, refused when it is built (the backend is known then). */
function checkDeviceOptions(options: DecoupledLionWOptions): void {
  const backend = tf.getBackend();
  const refuse = (what: string) => {
    throw new RangeError(
      `Cannot build the optimizer as ${what} on the ${backend} backend, where the update runs on tfjs's own tensors: train on the cpu or wasm backend for it`,
    );
  };
  if (options.momentumDtype === "bfloat16") {
    refuse(`momentumDtype "bfloat16" is not available (tfjs has no bfloat16 tensors)`);
  }
  if (options.collective !== undefined) refuse("data-parallel training is not available");
}

function checkMomentSize(name: string, values: Float32Array, param: Parameter): void {
  if (values.length !== param.size) {
    throw new RangeError(
      `Cannot set weights as "${name}${EXP_AVG_SUFFIX}" has ${values.length} values, not ${param.size} as the variable`,
    );
  }
}

function checkFloat32(name: string, variable: tf.Variable): void {
  if (variable.dtype !== "float32") {
    throw new RangeError(
      `Cannot build the optimizer as variable "${name}" is ${variable.dtype}: DecoupledLionW updates float32 variables`,
    );
  }
}

/** The gradients as entries, with their registered variables. */
function gradientEntries(gradients: tf.NamedTensorMap | NamedTensor[]): PathEntry[] {
  const named: [string, tf.Tensor | null | undefined][] = Array.isArray(gradients)
    ? gradients.map(({ name, tensor }) => [name, tensor])
    : Object.entries(gradients);
  return named.map(([name, gradient]) => {
    const variable = tf.engine().registeredVariables[name];
    if (variable === undefined) {
      throw new RangeError(
        `Cannot apply gradients as "${name}" is not a registered variable`,
      );
    }
    return { name, variable, gradient: gradient ?? null };
  });
}
