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
import { composeDecoupledLionW, DecoupledLionW } from "../src/optimizer/decoupled_lionw.ts";
import { assembleParts } from "../src/optimizer/optimizer_parts.ts";
import { StateCopies } from "../src/engine/state_copies.ts";
import type { DecoupledLionWOptions } from "../src/optimizer/options.ts";
import type { ParamGroupOptions } from "../src/optimizer/param_group.ts";
import type { Parameter } from "../src/store/parameter.ts";
import { ParameterStore } from "../src/store/parameter_store.ts";
import type { MetricRecord } from "../src/step/metrics.ts";
import { restoreGroups, restoreLrs, type SavedGroups, saveGroups } from "./_saved_groups.ts";
import { valuesOf } from "./_tensor_io.ts";
import { activeBackendRow } from "./_tfjs_backends.ts";
import { DevicePath } from "./_device_path.ts";
import { HostPath } from "./_host_path.ts";
import type { NamedMoment, PathEntry, StepPath } from "./_step_path.ts";
import { programsOfBackend } from "./_device_programs.ts";
import { deviceEngine } from "./_device_engine.ts";
import {
  checkAdapterOptions,
  checkDeviceOptions,
  type DecoupledLionWOptimizerOptions,
  type DeviceUpdate,
  workersThatCanRun,
} from "./optimizer_options.ts";
import {
  momentsToLoad,
  type NamedTensor,
  pendingMoments,
  type PendingWeights,
  readWeights,
  weightTensors,
} from "./optimizer_weights.ts";
import { configOf, optionsOfConfig } from "./_config.ts";

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
    const { core: rest, groups, metrics, savedGroups, deviceUpdate } = checkAdapterOptions(options);
    this.#options = rest;
    this.#groups = groups;
    this.#savedGroups = savedGroups;
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
    const pending = pendingMoments(this.#pending);
    // a path first settles (on a GPU backend: raises a non-finite step's error, fixes the count)
    const moments: NamedMoment[] = this.#path === undefined ? pending : await this.#path.moments();
    return weightTensors(this.iterations, moments);
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
    const pending = await readWeights(weightValues);
    if (this.#inner === undefined) {
      this.#pending = pending;
      this.iterations_ = pending.iterations;
      return;
    }
    this.#path!.load(pending.iterations, momentsToLoad(this.#params, pending));
  }

  /**
   * The options (without `groups` and `logger`, which are functions), for
   * `model.save(..., { includeOptimizer: true })`.
   *
   * @returns The serializable options.
   */
  override getConfig(): tf.serialization.ConfigDict {
    const saved = this.#inner === undefined
      ? this.#savedGroups
      : saveGroups(this.#inner, [...this.#params.values()]);
    return configOf(this.#options, this.metrics, saved);
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
    const options = optionsOfConfig(config);
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
      // the inner optimizer keeps the book; the steps run on the device, so it starts no engine
      const variables = new Map(entries.map(({ name, variable }) => [name, variable]));
      const parts = assembleParts(groups, this.#options, (book, rules) => {
        const backend = tf.getBackend();
        const copies = new StateCopies(
          `the tfjs ${backend} backend`,
          "device",
          () => path.loaded(),
        );
        const path = new DevicePath(book, copies, params, variables, {
          gate: { nonFinite: rules.nonFinite, maxGradNorm: rules.maxGradNorm },
          programs: this.#deviceUpdate === "fused" ? programsOfBackend() : undefined,
        });
        this.#path = path;
        return deviceEngine(path, copies, backend);
      });
      this.#inner = composeDecoupledLionW(parts);
    } else {
      const inner = new DecoupledLionW(groups, workersThatCanRun(this.#options));
      this.#inner = inner;
      this.#path = new HostPath(inner, params, entries);
    }
    if (saved !== undefined) restoreLrs(saved, this.#inner);
    this.#params = params;
    this.#store = store;
    if (pending !== undefined) {
      this.#pending = undefined;
      this.#path!.load(pending.iterations, momentsToLoad(params, pending));
    }
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
