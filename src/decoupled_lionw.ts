/**
 * {@linkcode DecoupledLionW}: Lion with decoupled, lr-scaled weight decay,
 * bit-exact with MosaicML's PyTorch `DecoupledLionW`.
 *
 * The data path of a step: store → shards (the step plan's segments) →
 * kernel (update in place, partial sums in the same pass) → partial sums →
 * metrics (finalized here, on the calling thread).
 *
 * @module
 */

import { formatValue } from "./_format.ts";
import {
  checkBackend,
  checkFma,
  checkGpuMode,
  checkPolicy,
  checkWorkers,
  collectParameters,
  CREATE,
  makeGroup,
  OPTION_KEYS,
  toGroupOptions,
} from "./_options.ts";
import { checkBetas, checkKnownKeys, checkLr, checkWeightDecay } from "./_validate.ts";
import type { StepEngine } from "./engine.ts";
import { InlineEngine } from "./inline_engine.ts";
import { jsKernel } from "./js_kernel.ts";
import { type GroupConstants, groupConstants, PARTIAL_COUNT } from "./kernel.ts";
import { createWasmKernel, wasmKernelAvailable } from "./wasm_kernel.ts";
import { WorkerPool } from "../workers/worker_pool.ts";
import { DeviceEngine } from "../gpu/device_engine.ts";
import { type GpuModeOption, type ResolvedGpuMode, resolveGpuMode } from "../gpu/gpujs_runtime.ts";
import type { BackendChoice } from "../gpu/backend_choice.ts";
import type { Logger } from "./logger.ts";
import { finalizeMetrics, type MetricPartials, type MetricRecord } from "./metrics.ts";
import {
  type GroupHyperparameters,
  ParamGroup,
  type ParamGroupOptions,
  warnIfHighWeightDecay,
} from "./param_group.ts";
import {
  assertNoStepInFlight,
  type Parameter,
  type ParameterSlots,
  type SlotOwner,
} from "./parameter.ts";
import { type ParameterStore, storeArenas, useStore } from "./parameter_store.ts";
import { checkStateDict, type LionParameterState, type LionStateDict } from "./state_dict.ts";
import { type ActiveParameter, BLOCK_ELEMENTS, planStep, type StepPlan } from "./step_plan.ts";

/**
 * Kernel backends: `wasm` (WebAssembly SIMD, the default), `gpujs` (gpu.js
 * kernels: WebGPU on a GPU, or gpu.js's webasm/cpu modes) and `js` (the
 * scalar oracle).
 *
 * @example Ask for the scalar backend
 * ```ts
 * import { type BackendName, DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const backend: BackendName = "js";
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [1])], { backend });
 * assert.equal(opt.backend, "js");
 * ```
 */
export type BackendName = "js" | "wasm" | "gpujs";

/**
 * What a step does when a gradient holds NaN or ±Infinity:
 * - `"error"`: throw a `RangeError` naming the parameters, changing nothing;
 * - `"skip"`: skip the whole step, report it in `lastStep` and the logger;
 * - `"ignore"`: apply it as torch does (the moment becomes NaN).
 *
 * @example Skip steps with bad gradients instead of throwing
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { nonFinite: "skip", logger: null });
 * w.grad = [NaN, 1];
 * await opt.step();
 * assert.deepEqual(opt.lastStep.nonFinite, ["w"]);
 * assert.deepEqual([...w.data], [1, 1]);
 * ```
 */
export type NonFinitePolicy = "error" | "skip" | "ignore";

/**
 * Options of {@linkcode DecoupledLionW}: group defaults and engine choices.
 *
 * @example Defaults for every group, a silent logger
 * ```ts
 * import { DecoupledLionW, type DecoupledLionWOptions, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const options: DecoupledLionWOptions = { lr: 3e-4, betas: [0.95, 0.98], weightDecay: 0.1, logger: null };
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [4])], options);
 * assert.equal(opt.paramGroups[0]!.weightDecay, 0.1);
 * assert.equal(opt.workers, 0);
 * ```
 */
export interface DecoupledLionWOptions extends GroupHyperparameters {
  /**
   * Shard workers: Web Workers that each update a contiguous share of the
   * elements in place. `0` runs the kernels on the calling thread. `"auto"`
   * takes one worker per 2^18 elements (below that, dispatch costs more than
   * it saves), at most `navigator.hardwareConcurrency`, and `0` where there
   * is no `Worker` or no shared memory (Node, Deno Deploy, a page that is not
   * cross-origin isolated). Asking for workers there logs a warning and runs
   * inline, with the same results.
   *
   * @default {"auto"}
   */
  workers?: number | "auto";
  /**
   * The kernel backend: `"wasm"` (WebAssembly SIMD), `"gpujs"` (gpu.js
   * kernels, see `gpuMode`) or `"js"` (the scalar oracle). `"auto"` takes
   * `"wasm"` where WebAssembly relaxed SIMD runs, else `"js"`: only backends
   * that update the store in place, so a program behaves the same on every
   * machine. `"gpujs"` keeps state on a device (pull it, announce host
   * writes), so it is used only when named; `recommendBackend()` measures
   * whether it would be faster here. `backendChoice` says what was taken
   * and why.
   *
   * @default {"auto"}
   */
  backend?: BackendName | "auto";
  /**
   * The gpu.js mode of the `gpujs` backend: `"webgpu"` (WGSL compute
   * shaders; needs a WebGPU adapter), `"webasm"` (gpu.js's WebAssembly) or
   * `"cpu"` (gpu.js's JavaScript). `"auto"` takes `"webgpu"` on a hardware
   * adapter and `"webasm"` otherwise.
   *
   * @default {"auto"}
   */
  gpuMode?: GpuModeOption;
  /**
   * How the `wasm` kernel computes torch's fused multiply-add: `"auto"` uses
   * `f32x4.relaxed_madd` where a start-up probe shows it is fused (x86 with
   * FMA, ARM64) and an exact float64 path elsewhere; `"exact"` always takes
   * the float64 path (slower; both are bit-exact).
   *
   * @default {"auto"}
   */
  fma?: "auto" | "exact";
  /**
   * What to do with NaN or infinite gradients.
   *
   * @default {"error"}
   */
  nonFinite?: NonFinitePolicy;
  /**
   * Where warnings go; `null` silences them.
   *
   * @default {console}
   */
  logger?: Logger | null;
}

/**
 * Options of one {@linkcode DecoupledLionW.step}.
 *
 * @example Metrics and a closure in one step
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [1], [2]);
 * await using opt = new DecoupledLionW([w]);
 * const loss = await opt.step({
 *   metrics: true,
 *   closure: () => {
 *     w.grad = [2 * w.data[0]!]; // ∂(w²)/∂w
 *     return w.data[0]! ** 2;
 *   },
 * });
 * assert.equal(loss, 4);
 * assert.equal(opt.getMetrics()["l2_norm/grad/w"], 4);
 * ```
 */
export interface StepOptions<T> {
  /**
   * Compute the per-parameter metrics in the same pass as the update.
   *
   * @default {false}
   */
  metrics?: boolean;
  /** Called (and awaited) before the update, like torch's closure; its result is returned. */
  closure?: () => T | Promise<T>;
}

/**
 * What the last {@linkcode DecoupledLionW.step} did.
 *
 * @example After an applied step
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [1]);
 * await using opt = new DecoupledLionW([w]);
 * w.grad = [1];
 * await opt.step();
 * assert.deepEqual(opt.lastStep, { applied: true, nonFinite: [], metrics: false });
 * ```
 */
export interface StepReport {
  /**
   * Whether the update was applied: `false` for a skipped step, a step in
   * which no parameter had a gradient, or before any step.
   */
  readonly applied: boolean;
  /** Parameters whose gradient held NaN or ±Infinity (empty under `"ignore"`). */
  readonly nonFinite: readonly string[];
  /** Whether metrics were computed. */
  readonly metrics: boolean;
}

const DEFAULTS = { lr: 1e-4, betas: [0.9, 0.99] as const, weightDecay: 0 };
/** Elements per worker below which `workers: "auto"` adds no worker. */
const ELEMENTS_PER_WORKER = 2 ** 18;
const NO_STEP: StepReport = Object.freeze({ applied: false, nonFinite: [], metrics: false });
const NO_PARTIALS: MetricPartials = Object.freeze({ names: [], sums: new Float64Array(0) });
const engines = new WeakMap<DecoupledLionW, StepEngine>();

/**
 * The engine behind `opt`; internal to this package (tests inject faults
 * through it).
 *
 * @param opt An optimizer.
 * @returns Its step engine.
 */
export function optimizerEngine(opt: DecoupledLionW): StepEngine {
  return engines.get(opt)!;
}

/**
 * The DecoupledLionW optimizer over parameters of one {@linkcode ParameterStore}.
 *
 * Each step, for every parameter with a gradient (float32, like torch):
 * `p ← p·(1 − (lr/initialLr)·wd)`, `p ← p − lr·sign(lerp(m, g, 1 − β1))`,
 * `m ← lerp(m, g, 1 − β2)`.
 *
 * @example Train a parameter towards a target
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("w", [3], [1, -1, 0.5]);
 * await using opt = new DecoupledLionW([w], { lr: 0.1, weightDecay: 0 });
 *
 * const target = [0, 0, 0];
 * for (let i = 0; i < 5; i++) {
 *   opt.zeroGrad();
 *   w.grad = w.data.map((x, j) => 2 * (x - target[j]!)); // ∂/∂w of (w − target)²
 *   await opt.step();
 * }
 * // Lion moves each weight by lr per step, in the sign of its momentum
 * assert.ok(Math.abs(w.data[0]! - 0.5) < 1e-6);
 * assert.ok(Math.abs(w.data[1]! + 0.5) < 1e-6);
 * assert.equal(opt.iterations, 5);
 * ```
 *
 * @example Groups, metrics and the state dict
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("fc.weight", [2, 2], [0.5, -0.5, 0.25, 1]);
 * const b = store.add("fc.bias", [2]);
 * await using opt = new DecoupledLionW(
 *   [{ params: [w], weightDecay: 1e-4 }, { params: [b], lr: 3e-4 }],
 *   { lr: 1e-4 },
 * );
 * w.grad = [1, -1, 0, 2];
 * b.grad = [0.5, 0.5];
 * await opt.step({ metrics: true });
 *
 * const metrics = opt.getMetrics();
 * assert.equal(metrics["l2_norm/grad/fc.bias"], Math.sqrt(0.5));
 * // after one step the moment is 0.01·g: parallel to the gradient
 * assert.ok(Math.abs(metrics["cosine/moment_grad/fc.weight"]! - 1) < 1e-6);
 *
 * const saved = opt.stateDict();
 * assert.deepEqual(Object.keys(saved.state), ["fc.weight", "fc.bias"]);
 * assert.equal(saved.paramGroups[1]!.lr, 3e-4);
 * ```
 */
export class DecoupledLionW implements AsyncDisposable {
  readonly #store: ParameterStore;
  readonly #slots: Map<Parameter, ParameterSlots>;
  readonly #engine: StepEngine;
  /** The backend and why. */
  readonly #choice: BackendChoice;
  /** The gpujs engine's mode, being resolved. */
  #gpuResolving: Promise<ResolvedGpuMode> | undefined;
  #gpuResolved: ResolvedGpuMode | undefined;
  readonly #nonFinite: NonFinitePolicy;
  readonly #logger: Logger | null;
  #groups: ParamGroup[];
  #withState = new Set<Parameter>();
  #metrics: MetricRecord = {};
  #partials: MetricPartials = NO_PARTIALS;
  #lastStep: StepReport = NO_STEP;
  #iterations = 0;
  #busy = false;
  /** Shared with the parameters' slots: their writes throw while a step is in flight. */
  readonly #guard: SlotOwner = { stepInFlight: false };
  /** The warning for a decay multiplier <= 0 was given. */
  #warnedSignFlip = false;
  #closing: Promise<void> | undefined;
  /** Set when a step failed in a kernel or worker: steps are refused until a state dict is loaded. */
  #fault: Error | undefined;
  /** Every parameter in group order, and which of them took part in the last plan. */
  #entries: ActiveParameter[] = [];
  #takesPart = new Uint8Array(0);
  /** exp_avg was loaded on the host: a device-resident engine must upload it. */
  #stateWritten = false;
  /** The engine holds exp_avg newer than the store's (gpujs between steps). */
  #stateOnDevice = false;
  #plan: StepPlan | undefined;
  /** The plan whose parameters all have state (so the step needs no state bookkeeping). */
  #planWithState: StepPlan | undefined;

  /**
   * Builds the optimizer. Parameters must all come from one store, which
   * then takes no new parameters until {@linkcode DecoupledLionW.close}.
   *
   * @param params A list of parameters (one group), or a list of groups.
   * @param options Defaults for the groups' hyperparameters, and engine choices.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a hyperparameter is out of range, a parameter
   * is listed twice or is used by another optimizer, the parameters come
   * from several stores, or the backend is not available here.
   */
  constructor(
    params: readonly Parameter[] | readonly ParamGroupOptions[],
    options: DecoupledLionWOptions = {},
  ) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(
        `${CREATE} as 'options' must be an object: current value is ${formatValue(options)}`,
      );
    }
    checkKnownKeys(CREATE, "options", options, OPTION_KEYS);
    this.#logger = options.logger === undefined ? console : options.logger;
    this.#nonFinite = checkPolicy(options.nonFinite ?? "error");
    const backend = checkBackend(options.backend ?? "auto");
    const workers = checkWorkers(options.workers ?? "auto");
    const fma = checkFma(options.fma ?? "auto");
    const gpuMode = checkGpuMode(options.gpuMode ?? "auto");
    const defaults = {
      lr: checkLr(CREATE, "lr", options.lr ?? DEFAULTS.lr),
      betas: checkBetas(CREATE, "betas", options.betas ?? DEFAULTS.betas),
      weightDecay: checkWeightDecay(
        CREATE,
        "weightDecay",
        options.weightDecay ?? DEFAULTS.weightDecay,
      ),
    };
    const groupOptions = toGroupOptions(params);
    this.#slots = collectParameters(groupOptions);
    const stores = new Set([...this.#slots.values()].map((slots) => slots.store));
    if (stores.size !== 1) {
      throw new RangeError(
        stores.size === 0
          ? `${CREATE} as it got an empty parameter list`
          : `${CREATE} as its parameters come from ${stores.size} stores: use one ParameterStore per optimizer`,
      );
    }
    this.#store = [...stores][0]!;
    this.#groups = groupOptions.map((group, g) => makeGroup(group, g, defaults, this.#logger));
    this.#entries = this.#groups.flatMap((group, g) =>
      group.params.map((param) => ({ param, slots: this.#slots.get(param)!, group: g }))
    );
    this.#takesPart = new Uint8Array(this.#entries.length);
    for (const group of this.#groups) warnIfHighWeightDecay(group.weightDecay, this.#logger);
    this.#engine = this.#startEngine(backend, workers, fma, gpuMode);
    engines.set(this, this.#engine);
    for (const slots of this.#slots.values()) slots.owner = this.#guard;
    useStore(this.#store, 1);
    this.#choice = (options.backend ?? "auto") === "auto"
      ? autoChoice(backend as "js" | "wasm")
      : { backend, reason: "asked for" };
  }

  /**
   * Settles the backend: resolves once the gpu.js mode of the `gpujs`
   * backend is known (it probes the WebGPU adapter); at once for the others.
   * Steps wait for this themselves; call it to read the choice before the
   * first.
   *
   * @example Which backend, and why
   * ```ts
   * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
   * import assert from "node:assert/strict";
   *
   * await using opt = new DecoupledLionW([new ParameterStore().add("w", [8])], { backend: "js" });
   * assert.deepEqual(await opt.ready(), { backend: "js", reason: "asked for" });
   * ```
   *
   * @returns The choice, as {@linkcode DecoupledLionW.backendChoice}.
   */
  async ready(): Promise<BackendChoice> {
    await this.#gpuResolving?.catch(() => {});
    return this.backendChoice;
  }

  /**
   * The backend running the steps and why it was chosen, with the gpu.js
   * mode and the adapter under `gpujs`.
   */
  get backendChoice(): BackendChoice {
    const resolved = this.#engine.backend === "gpujs" ? this.#gpuResolved : undefined;
    return {
      ...this.#choice,
      ...(resolved === undefined ? {} : {
        gpuMode: resolved.mode,
        reason: this.#choice.reason === "asked for"
          ? `asked for; gpu.js mode ${resolved.mode}: ${resolved.reason}`
          : this.#choice.reason,
        ...(resolved.adapter.available ? { adapter: resolved.adapter.description } : {}),
      }),
    };
  }

  /** The parameter groups, in order. Their `lr`, `betas` and `weightDecay` may be changed. */
  get paramGroups(): readonly ParamGroup[] {
    return this.#groups;
  }

  /** The kernel backend in use (what `"auto"` chose). */
  get backend(): string {
    return this.#engine.backend;
  }

  /** The number of shard workers (0: the calling thread), as `"auto"` chose. */
  get workers(): number {
    return this.#engine.workers;
  }

  /** The non-finite gradient policy. */
  get nonFinite(): NonFinitePolicy {
    return this.#nonFinite;
  }

  /**
   * Steps applied so far: skipped steps, and steps in which no parameter had
   * a gradient, do not count.
   */
  get iterations(): number {
    return this.#iterations;
  }

  /** What the last step did. */
  get lastStep(): StepReport {
    return this.#lastStep;
  }

  /**
   * Clears the gradients of every parameter of the optimizer.
   *
   * @param options `setToNone` (default `true`, torch 2's default) marks
   * gradients absent; `false` fills present gradients with zeros.
   * @throws {TypeError} When `options` has an unknown key or a non-boolean `setToNone`.
   * @throws {Error} When a step is in flight (outside its closure).
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    assertNoStepInFlight(this.#guard, "zero gradients");
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
    for (const slots of this.#slots.values()) {
      if (setToNone) slots.hasGrad = false;
      else if (slots.hasGrad) slots.gradView.fill(0);
    }
  }

  /**
   * Applies one update to every parameter that has a gradient and requires
   * one; the others, and their state, stay as they are. A step in which no
   * parameter has a gradient applies nothing and is not counted in
   * {@linkcode DecoupledLionW.iterations} (`lastStep.applied` is `false`).
   *
   * Until the returned promise settles, do not write parameter values, and
   * do not set gradients, `zeroGrad()`, `markWritten()` or take a
   * `stateDict()`: workers are reading and updating that memory. Those calls
   * throw while a step is in flight, except inside the step's own closure.
   *
   * @param closureOrOptions A closure (torch's), or {@linkcode StepOptions}.
   * @returns The closure's (awaited) result, or `undefined` without one.
   * @throws {RangeError} Under `nonFinite: "error"`, when a gradient holds
   * NaN or ±Infinity: nothing changes.
   * @throws {TypeError} When the argument is neither a closure nor step
   * options, or the options have an unknown key.
   * @throws {Error} When another step is in flight, the optimizer is closed,
   * or a kernel or worker failed (in this step or an earlier one: parameters
   * may then be partly updated, and steps are refused until a state dict is
   * loaded).
   */
  async step<T = undefined>(
    closureOrOptions?: (() => T | Promise<T>) | StepOptions<T>,
  ): Promise<T | undefined> {
    const { closure, metrics } = parseStepArguments(closureOrOptions);
    this.#assertIdle("step");
    this.#busy = true;
    // From here until the promise settles, writes the step could tear throw
    // (a forgotten `await` before the next gradient), except in the closure,
    // whose job is to write this step's gradients.
    this.#guard.stepInFlight = true;
    try {
      await this.#gpuResolving; // a gpu.js mode that cannot run here is a usage error, not a fault
      let loss: T | undefined;
      if (closure !== undefined) {
        this.#guard.stepInFlight = false;
        try {
          loss = await closure();
        } finally {
          this.#guard.stepInFlight = true;
        }
      }
      this.#assertOpen("step");
      await this.#applyStep(metrics);
      return loss;
    } finally {
      this.#busy = false;
      this.#guard.stepInFlight = false;
    }
  }

  /**
   * The metrics of the last step, if it computed them (`step({ metrics: true })`):
   * `l2_norm/{moment,param,update,grad}/name` and
   * `cosine/{update_grad,moment_grad}/name` for each parameter stepped, with
   * its own group's hyperparameters. Empty after a step without metrics.
   *
   * @returns A fresh record.
   */
  getMetrics(): MetricRecord {
    return { ...this.#metrics };
  }

  /**
   * The pre-reduced sums behind {@linkcode DecoupledLionW.getMetrics}: add
   * them across ranks, then call `finalizeMetrics`.
   *
   * @returns A copy.
   */
  getMetricPartials(): MetricPartials {
    return { names: [...this.#partials.names], sums: this.#partials.sums.slice() };
  }

  /**
   * The state of `param`: a live view of its exp_avg in shared memory.
   * Under `gpujs`, exp_avg lives on the device between steps: call
   * {@linkcode DecoupledLionW.pullState} first, and write state through
   * {@linkcode DecoupledLionW.loadStateDict}, not through the view.
   *
   * @param param A parameter of this optimizer.
   * @returns The state, or `undefined` before its first gradient.
   * @throws {RangeError} When `param` is not in this optimizer.
   * @throws {Error} When the state is on the device (`gpujs`) and was not pulled.
   */
  state(param: Parameter): LionParameterState | undefined {
    this.#assertStateOnHost("get state");
    const slots = this.#slots.get(param);
    if (slots === undefined) {
      throw new RangeError(
        `Cannot get state as parameter ${formatValue(param?.name)} is not in this optimizer`,
      );
    }
    return this.#withState.has(param) ? { expAvg: slots.expAvgView } : undefined;
  }

  /**
   * A snapshot of the optimizer: copies of the state, keyed by parameter
   * name, and the groups' hyperparameters. Under `gpujs`, call
   * {@linkcode DecoupledLionW.pullState} first.
   *
   * @returns The state dict.
   * @throws {Error} When a step is in flight, or the state is on the device
   * (`gpujs`) and was not pulled.
   */
  stateDict(): LionStateDict {
    assertNoStepInFlight(this.#guard, "get state dict");
    this.#assertStateOnHost("get state dict");
    const state: Record<string, LionParameterState> = {};
    for (const [param, slots] of this.#slots) {
      if (this.#withState.has(param)) state[param.name] = { expAvg: slots.expAvgView.slice() };
    }
    return {
      state,
      paramGroups: this.#groups.map((group) => ({
        params: group.params.map((p) => p.name),
        lr: group.lr,
        betas: [group.betas[0], group.betas[1]],
        weightDecay: group.weightDecay,
        initialLr: group.initialLr,
      })),
      iterations: this.#iterations,
    };
  }

  /**
   * Replaces the state and hyperparameters with those of `dict`, as torch's
   * `load_state_dict`. Everything is checked first: a bad dict changes nothing.
   *
   * @param dict A state dict of an optimizer with the same groups and names.
   * @throws {TypeError} When `dict` is not shaped like a state dict.
   * @throws {RangeError} When its groups, names, sizes or values do not fit.
   * @throws {Error} When a step is in flight or the optimizer is closed.
   */
  loadStateDict(dict: LionStateDict): void {
    this.#assertOpen("load state dict");
    if (this.#busy) {
      throw new Error("Cannot load state dict as a step() is in flight: await it first");
    }
    checkStateDict(dict, this.#groups);
    this.#groups = dict.paramGroups.map((loaded, g) =>
      new ParamGroup(
        g,
        this.#groups[g]!.params,
        loaded.lr,
        Object.freeze([loaded.betas[0], loaded.betas[1]]),
        loaded.weightDecay,
        loaded.initialLr,
        this.#logger,
      )
    );
    this.#withState.clear();
    this.#planWithState = undefined;
    this.#stateWritten = true; // the device's copy, if any, is stale now
    this.#stateOnDevice = false;
    for (const [param, slots] of this.#slots) {
      const entry = dict.state[param.name];
      if (entry === undefined) continue;
      slots.expAvgView.set(entry.expAvg);
      this.#withState.add(param);
    }
    this.#iterations = dict.iterations;
    if (this.#fault !== undefined) {
      this.#fault = undefined;
      this.#engine.reset();
    }
  }

  /**
   * Brings the state a device holds (exp_avg under `gpujs`, which keeps it
   * there between steps) back into the store's shared memory, so that
   * {@linkcode DecoupledLionW.state} and {@linkcode DecoupledLionW.stateDict}
   * can read it. Resolves at once for the CPU backends, which update in place.
   *
   * @example Save a checkpoint, whatever the backend
   * ```ts
   * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
   * import assert from "node:assert/strict";
   *
   * const w = new ParameterStore().add("w", [2]);
   * await using opt = new DecoupledLionW([w]);
   * w.grad = [1, -1];
   * await opt.step();
   * await opt.pullState();
   * const saved = opt.stateDict();
   * assert.equal(saved.state["w"]!.expAvg.length, 2);
   * ```
   *
   * @throws {Error} When a step is in flight or the optimizer is closed.
   */
  async pullState(): Promise<void> {
    this.#assertIdle("pull state");
    if (!this.#stateOnDevice) return;
    this.#busy = true;
    try {
      await this.#engine.pullState();
      this.#stateOnDevice = false;
    } catch (error) {
      this.#fault = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Ends the workers and releases the store and the parameters, which
   * another optimizer may then use. Under `gpujs`, exp_avg comes back from
   * the device first. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#release();
    return this.#closing;
  }

  /** Same as {@linkcode DecoupledLionW.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #release(): Promise<void> {
    if (this.#stateOnDevice && this.#fault === undefined && !this.#busy) {
      // leave the store as the device had it
      await this.#engine.pullState().then(() => (this.#stateOnDevice = false), () => {});
    }
    for (const slots of this.#slots.values()) {
      if (slots.owner === this.#guard) slots.owner = undefined;
    }
    useStore(this.#store, -1);
    await this.#engine.close();
  }

  #assertOpen(action: string): void {
    if (this.#closing !== undefined) {
      throw new Error(`Cannot ${action} as the optimizer is closed`);
    }
  }

  #assertStateOnHost(action: string): void {
    if (this.#stateOnDevice) {
      throw new Error(
        `Cannot ${action} as the ${this.#engine.backend} backend keeps exp_avg on the device between steps: await opt.pullState() first`,
      );
    }
  }

  #assertIdle(action: string): void {
    this.#assertOpen(action);
    if (this.#busy) {
      throw new Error(`Cannot ${action} as a step() is in flight: await it first`);
    }
    if (this.#fault !== undefined) {
      throw new Error(
        `Cannot ${action} as an earlier step failed (${this.#fault.message}): parameters may be partly updated, so load a state dict (and your parameters) to go on`,
      );
    }
  }

  /** The engine: workers sharing the store's memory, or the calling thread. */
  #startEngine(
    backend: BackendName,
    workers: number | "auto",
    fma: "auto" | "exact",
    gpuMode: GpuModeOption,
  ): StepEngine {
    const arenas = storeArenas(this.#store);
    const all = [...this.#slots.values()];
    const size = all.reduce((total, s) => total + s.dataView.length, 0);
    const canUseWorkers = typeof Worker === "function" && this.#store.shared;
    let count = workers === "auto" ? (canUseWorkers ? autoWorkers(size) : 0) : workers;
    if (count > 0 && !canUseWorkers) {
      this.#logger?.warn(
        `Running inline instead of on ${count} workers as ${
          this.#store.shared ? "this runtime has no Worker" : "the store's memory is not shared"
        }`,
      );
      count = 0;
    }
    // gpujs scans gradients on the host, with the fastest CPU kernel here
    const hostKernel = backend === "js" || !wasmKernelAvailable()
      ? jsKernel
      : createWasmKernel(fma);
    const mode = backend === "gpujs" ? resolveGpuMode(gpuMode) : undefined;
    this.#gpuResolving = mode;
    mode?.then((resolved) => (this.#gpuResolved = resolved), () => {}); // errors: the first step
    if (count === 0) {
      return mode === undefined
        ? new InlineEngine(hostKernel, arenas)
        : new DeviceEngine(mode, hostKernel, arenas);
    }
    return new WorkerPool({
      workers: count,
      backend,
      gpuMode: mode,
      fma,
      arenas,
      groups: this.#groups.length,
      maxBlocks: all.reduce((total, s) => total + Math.ceil(s.dataView.length / BLOCK_ELEMENTS), 0),
    });
  }

  async #applyStep(metrics: boolean): Promise<void> {
    this.#metrics = {};
    this.#partials = NO_PARTIALS;
    const plan = this.#stepPlan();
    if (plan.params.length === 0) {
      // torch's step() does nothing here either; not counted as an iteration
      this.#lastStep = NO_STEP;
      return;
    }
    const constants: GroupConstants[] = this.#groups.map((group) =>
      groupConstants(group.lr, group.initialLr, group.betas[0], group.betas[1], group.weightDecay)
    );
    this.#warnIfDecayFlipsSigns(constants);
    // A parameter's first step starts from m = 0. Zeroing before the step is
    // harmless if the step is refused: a parameter without state has no m.
    if (plan !== this.#planWithState) {
      for (const { param, slots } of plan.params) {
        if (!this.#withState.has(param)) slots.expAvgView.fill(0);
      }
    }
    const writes = { params: paramsWritten(plan), state: this.#stateWritten };
    let result;
    try {
      result = await this.#engine.run({
        plan,
        groups: constants,
        scan: this.#nonFinite !== "ignore",
        metrics,
        writes,
      });
    } catch (error) {
      this.#fault = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
    const nonFinite = result.applied ? [] : nonFiniteNames(plan, result.gradSquares!);
    if (nonFinite.length > 0) {
      const message = `the gradient of ${describeNames(nonFinite)} holds NaN or Infinity`;
      if (this.#nonFinite === "error") {
        this.#lastStep = Object.freeze({ applied: false, nonFinite, metrics: false });
        throw new RangeError(`Cannot step as ${message}: parameters and state are unchanged`);
      }
      this.#logger?.warn(`Skipped step as ${message}`);
      this.#lastStep = Object.freeze({ applied: false, nonFinite, metrics: false });
      return;
    }
    if (plan !== this.#planWithState) {
      for (const { param } of plan.params) this.#withState.add(param);
      this.#planWithState = plan;
    }
    // the engine has taken the host's writes
    for (const { slots } of plan.params) slots.written = false;
    this.#stateWritten = false;
    this.#stateOnDevice = this.#engine.backend === "gpujs";
    this.#iterations++;
    if (result.partials !== null) {
      this.#partials = sumPerParameter(plan, result.partials);
      this.#metrics = finalizeMetrics(this.#partials);
    }
    this.#lastStep = Object.freeze({ applied: true, nonFinite: [], metrics });
  }

  /**
   * Warns, once, when a group's decay multiplier `1 − (lr / initialLr)·wd`
   * is <= 0: the reference's rule then flips the weights' signs and grows
   * them. It happens when the optimizer was built with a schedule's small
   * starting lr and the schedule raised it.
   */
  #warnIfDecayFlipsSigns(constants: readonly GroupConstants[]): void {
    if (this.#warnedSignFlip) return;
    const g = constants.findIndex((k) => k.decayMultiplier <= 0);
    if (g < 0) return;
    this.#warnedSignFlip = true;
    const { lr, initialLr, weightDecay } = this.#groups[g]!;
    this.#logger?.warn(
      `Weight decay multiplies the parameters of group ${g} by ${
        constants[g]!.decayMultiplier
      } this step (1 - lr ${lr} / initialLr ${initialLr} * weightDecay ${weightDecay}): weights flip sign and grow. Build the optimizer with the peak lr; schedules multiply it`,
    );
  }

  /**
   * The plan of this step: the last one again while the same parameters take
   * part (checked flag by flag, allocating nothing).
   */
  #stepPlan(): StepPlan {
    let changed = this.#plan === undefined;
    this.#entries.forEach(({ slots }, i) => {
      const takesPart = slots.hasGrad && slots.requiresGrad ? 1 : 0;
      if (this.#takesPart[i] !== takesPart) {
        this.#takesPart[i] = takesPart;
        changed = true;
      }
    });
    if (changed) {
      const active = this.#entries.filter((_, i) => this.#takesPart[i] === 1);
      this.#plan = planStep(active, storeArenas(this.#store).length);
    }
    return this.#plan!;
  }
}

/**
 * What `backend: "auto"` takes, and why: only backends that update the
 * store in place (`wasm`, else `js`), so code behaves the same on every
 * machine. `gpujs` keeps state on a device, with rules of its own (pull
 * state, announce host writes): it is taken only when asked for by name, and
 * `recommendBackend()` says whether it would be faster here.
 */
function autoChoice(cpu: "js" | "wasm"): BackendChoice {
  return cpu === "wasm"
    ? { backend: cpu, reason: "auto: WebAssembly relaxed SIMD runs here (the wasm kernel)" }
    : {
      backend: cpu,
      reason:
        "auto: this runtime lacks WebAssembly relaxed SIMD, which the wasm kernel needs, so the scalar js kernel",
    };
}

/** Whether a parameter of the plan was written on the host (`markWritten`). */
function paramsWritten(plan: StepPlan): boolean {
  return plan.params.some(({ slots }) => slots.written);
}

/** Names of the parameters whose gradient holds a non-finite value. */
function nonFiniteNames(plan: StepPlan, gradSquares: Float64Array): string[] {
  return plan.params
    .filter(({ firstSlot, slotCount }) => {
      for (let slot = firstSlot; slot < firstSlot + slotCount; slot++) {
        if (!Number.isFinite(gradSquares[slot]!)) return true;
      }
      return false;
    })
    .map(({ param }) => param.name);
}

/** `workers: "auto"`: one worker per 2^18 elements, at most one per core. */
function autoWorkers(elements: number): number {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.min(cores, Math.floor(elements / ELEMENTS_PER_WORKER));
}

/** Adds each parameter's block partials in block order. */
function sumPerParameter(plan: StepPlan, partials: Float64Array): MetricPartials {
  const sums = new Float64Array(plan.params.length * PARTIAL_COUNT);
  plan.params.forEach(({ firstSlot, slotCount }, i) => {
    for (let slot = firstSlot; slot < firstSlot + slotCount; slot++) {
      for (let k = 0; k < PARTIAL_COUNT; k++) {
        sums[i * PARTIAL_COUNT + k]! += partials[slot * PARTIAL_COUNT + k]!;
      }
    }
  });
  return { names: plan.params.map(({ param }) => param.name), sums };
}

function describeNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).map((name) => `'${name}'`).join(", ");
  const more = names.length > 5 ? ` and ${names.length - 5} more` : "";
  return `${names.length === 1 ? "parameter" : "parameters"} ${shown}${more}`;
}

function parseStepArguments<T>(
  arg: (() => T | Promise<T>) | StepOptions<T> | undefined,
): { closure: (() => T | Promise<T>) | undefined; metrics: boolean } {
  if (arg === undefined) return { closure: undefined, metrics: false };
  if (typeof arg === "function") return { closure: arg, metrics: false };
  if (arg === null || typeof arg !== "object") {
    throw new TypeError(
      `Cannot step as the argument must be a closure or step options: current value is ${
        formatValue(arg)
      }`,
    );
  }
  checkKnownKeys("Cannot step", "options", arg, ["metrics", "closure"]);
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
  return { closure: arg.closure, metrics };
}
