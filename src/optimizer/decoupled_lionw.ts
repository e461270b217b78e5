/**
 * {@linkcode DecoupledLionW}: Lion with decoupled, lr-scaled weight decay,
 * bit-exact with MosaicML's PyTorch `DecoupledLionW`.
 *
 * The data path of a step: store → shards (the step plan's blocks) →
 * kernel (scan, decide, update in place with the partial sums in the same
 * pass) → partial sums → metrics (finalized here, on the calling thread).
 * This class composes its parts (optimizer_parts.ts), guards the step in
 * flight, plans and books each step, and owns the lifecycle: the book
 * (optimizer_book.ts) keeps the groups, the state, the state dict and the
 * count; an engine (engine/engine_factory.ts) runs the kernels and knows
 * which copy of exp_avg is newest; a step driver (distributed/step_driver.ts)
 * runs what surrounds them, the ranks' exchanges in data-parallel training;
 * the rules about options are in option_rules.ts.
 *
 * @module
 */

import type { MomentumDtype } from "../store/moment_dtype.ts";
import {
  checkStepArguments,
  checkStepCombination,
  checkZeroGradOptions,
  describeNames,
} from "./option_rules.ts";
import { assertNoStepInFlight, type SlotOwner, zeroGradient } from "../store/slots.ts";
import {
  type LocalStep,
  runStep,
  runStepSync,
  type StepDriver,
} from "../distributed/step_driver.ts";
import type { BackendChoice, BackendName } from "../engine/backends.ts";
import type { StepEngine, StepRequest, StepResult } from "../engine/engine.ts";
import type { StartedEngine } from "../engine/engine_factory.ts";
import { decayFlipWarning } from "./hyperparameters.ts";
import type { Logger } from "../_internal/logger.ts";
import type { MetricPartials, MetricRecord } from "../step/metrics.ts";
import { LastStepMetrics } from "../step/last_step_metrics.ts";
import type { DecoupledLionWOptions, StepOptions, StepReport, SyncStepOptions } from "./options.ts";
import type { ParamGroup, ParamGroupOptions } from "./param_group.ts";
import type { Parameter } from "../store/parameter.ts";
import type { LionParameterState, LionStateDict } from "./state_dict.ts";
import {
  gateNeedsSquares,
  globalGradNorm,
  type NonFinitePolicy,
  type StepDecision,
} from "../step/step_decision.ts";
import { nonFiniteParameters, partialsByParameter } from "../step/step_plan.ts";
import { StepPlanner } from "../step/step_planner.ts";
import type { OptimizerBook } from "./optimizer_book.ts";
import { assembleParts, type OptimizerParts } from "./optimizer_parts.ts";

/**
 * The parts the next `DecoupledLionW` is built over, set only inside
 * {@linkcode composeDecoupledLionW}: the public constructor keeps torch's
 * signature, `(params, options)`.
 */
let handedParts: OptimizerParts | undefined;

const NO_STEP: StepReport = Object.freeze({
  applied: false,
  nonFinite: [],
  metrics: false,
  gradNorm: null,
  gradScale: 1,
});
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
  /** The groups, which parameters have state, the count. */
  readonly #book: OptimizerBook;
  readonly #started: StartedEngine;
  readonly #engine: StepEngine;
  readonly #nonFinite: NonFinitePolicy;
  readonly #maxGradNorm: number;
  readonly #logger: Logger | null;
  readonly #planner: StepPlanner;
  /** Shared with the parameters' slots: their writes throw while a step is in flight. */
  readonly #guard: SlotOwner = { stepInFlight: false };
  readonly #metrics = new LastStepMetrics();
  #lastStep: StepReport = NO_STEP;
  #busy = false;
  /** The warning for a decay multiplier <= 0 was given. */
  #warnedSignFlip = false;
  #closing: Promise<void> | undefined;
  /** Set when a step failed in a kernel or worker: steps are refused until a state dict is loaded. */
  #fault: Error | undefined;
  /** exp_avg is sharded across the ranks (the step rules refuse caution then). */
  readonly #shardState: boolean;
  /** What runs around the engine: nothing on one process, the ranks' exchanges across several. */
  readonly #driver: StepDriver;
  /** What the driver calls back: prepare a step, run it, book it. */
  readonly #local: LocalStep;

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
    const parts = handedParts ?? assembleParts(params, options);
    const { book, started, rules } = parts;
    this.#book = book;
    this.#logger = parts.logger;
    this.#nonFinite = rules.nonFinite;
    this.#maxGradNorm = rules.maxGradNorm;
    this.#shardState = rules.shardState;
    this.#planner = new StepPlanner(book.entries, book.layout);
    this.#started = started;
    this.#engine = started.engine;
    this.#driver = parts.driver;
    this.#local = this.#localStep();
    // a strategy that takes the writes' scans: the engine's writer scans each gradient as it copies
    const writer = rules.strategy.capabilities.writtenScans
      ? started.gradientWriter(rules)
      : undefined;
    if (writer !== undefined) this.#guard.writeGradient = writer;
    for (const slots of book.slots.values()) slots.owner = this.#guard;
    book.memory.users++;
  }

  /**
   * Settles the backend: resolves once the gpu.js mode of the `gpujs`
   * backend is known (it probes the WebGPU adapter) and the shard workers
   * have started. Steps wait for this themselves; call it to read the
   * choice before the first, or before the first {@linkcode DecoupledLionW.stepSync}
   * where a thread cannot start workers while it blocks (a browser's worker).
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
    await this.#started.ready.catch(() => {});
    await this.#engine.started();
    return this.backendChoice;
  }

  /**
   * The backend running the steps and why it was chosen, with the gpu.js
   * mode and the adapter under `gpujs`.
   */
  get backendChoice(): BackendChoice {
    return this.#started.choice();
  }

  /**
   * The parameter groups, in order. Their `lr`, `betas` and `weightDecay`
   * may be changed; a loaded state dict updates these same objects.
   */
  get paramGroups(): readonly ParamGroup[] {
    return this.#book.groups;
  }

  /** The kernel backend in use (what `"auto"` chose). */
  get backend(): BackendName {
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
    return this.#book.iterations;
  }

  /** What the last step did. */
  get lastStep(): StepReport {
    return this.#lastStep;
  }

  /** How exp_avg is stored (the `momentumDtype` option). */
  get momentumDtype(): MomentumDtype {
    return this.#book.momentumDtype;
  }

  /**
   * The exp_avg elements this rank keeps up to date: every stepped
   * parameter's, or with `shardState` only this rank's part of the last
   * step's (its memory per rank is `4 × stateElements` bytes of exp_avg;
   * under `momentumDtype: "bfloat16"` a step reads and writes half of it).
   */
  get stateElements(): number {
    return this.#driver.stateElements ?? this.#book.stateElements;
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
    const setToNone = checkZeroGradOptions(options);
    for (const slots of this.#book.slots.values()) zeroGradient(slots, setToNone);
  }

  /**
   * Applies one update to every parameter that has a gradient and requires
   * one; the others, and their state, stay as they are. A step in which no
   * parameter has a gradient applies nothing and is not counted in
   * {@linkcode DecoupledLionW.iterations} (`lastStep.applied` is `false`).
   *
   * With a `collective`, this is a collective operation: every rank calls
   * it, in the same order as its other collectives (the gradients are
   * averaged over the ranks first).
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
    const { closure, metrics, clipTo } = this.#beginStep(closureOrOptions, false);
    try {
      await this.#started.ready; // a gpu.js mode that cannot run here is a usage error, not a fault
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
      await runStep(this.#driver, this.#local, metrics, clipTo);
      return loss;
    } finally {
      this.#endStep();
    }
  }

  /**
   * {@linkcode DecoupledLionW.step} for callers that cannot await (a
   * TensorFlow.js optimizer's `applyGradients`): returns once the step is
   * applied. With workers, the calling thread blocks in `Atomics.wait` while
   * they run it, which Deno, Node and workers allow and a browser's main
   * thread does not (use `workers: 0` there). The results, metrics and
   * errors are those of `step()`.
   *
   * @example Step without awaiting
   * ```ts
   * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
   * import assert from "node:assert/strict";
   *
   * const w = new ParameterStore().add("w", [2], [1, 1]);
   * await using opt = new DecoupledLionW([w], { lr: 0.5, weightDecay: 0 });
   * w.grad = [1, -1];
   * opt.stepSync();
   * assert.deepEqual([...w.data], [0.5, 1.5]);
   * ```
   *
   * @param options Metrics and this step's clipping norm.
   * @throws {RangeError} On the `gpujs` backend, which reads back from the
   * device asynchronously; and as `step()` does.
   * @throws {TypeError} As `step()` does.
   * @throws {Error} As `step()` does; and a `ShardError` when the workers
   * do not start within 30 s or finish within two minutes (a blocked thread
   * cannot hear that a worker died), or, in Deno, at once when they may not
   * read their module (no `--allow-read`).
   */
  stepSync(options?: SyncStepOptions): void {
    if (typeof options === "function" || (options as StepOptions<unknown>)?.closure !== undefined) {
      throw new TypeError("Cannot step synchronously with a closure: compute the gradients first");
    }
    const { metrics, clipTo } = this.#beginStep(options, true);
    try {
      runStepSync(this.#driver, this.#local, metrics, clipTo);
    } finally {
      this.#endStep();
    }
  }

  /**
   * The prologue of `step()` and `stepSync()`: the arguments and the
   * combination rules checked, then the step marked in flight. From then
   * until {@linkcode DecoupledLionW.#endStep}, writes the step could tear
   * throw (a forgotten `await` before the next gradient), except in a
   * closure, whose job is to write this step's gradients.
   */
  #beginStep<T>(
    args: (() => T | Promise<T>) | StepOptions<T> | undefined,
    sync: boolean,
  ): { closure: (() => T | Promise<T>) | undefined; metrics: boolean; clipTo: number } {
    const { closure, metrics, maxGradNorm } = checkStepArguments(args);
    this.#assertIdle("step");
    if (sync) checkStepCombination(this.#engine.backend, this.#shardState, [], true);
    this.#busy = true;
    this.#guard.stepInFlight = true;
    return { closure, metrics, clipTo: maxGradNorm ?? this.#maxGradNorm };
  }

  #endStep(): void {
    this.#busy = false;
    this.#guard.stepInFlight = false;
  }

  /**
   * The metrics of the last step, if it computed them (`step({ metrics: true })`):
   * `l2_norm/{moment,param,update,grad}/name` and
   * `cosine/{update_grad,moment_grad}/name` for each parameter stepped, with
   * its own group's hyperparameters, and Composer's global norms
   * `l2_norm/{moment,param,update,grad}/global` over all of them. Empty
   * after a step without metrics.
   *
   * @returns A fresh record.
   */
  getMetrics(): MetricRecord {
    return this.#metrics.record();
  }

  /**
   * The pre-reduced sums behind {@linkcode DecoupledLionW.getMetrics}: add
   * them across ranks, then call `finalizeMetrics`.
   *
   * @returns A copy.
   */
  getMetricPartials(): MetricPartials {
    return this.#metrics.partials();
  }

  /**
   * The state of `param`: a live view of its exp_avg in shared memory
   * (with `momentumDtype: "bfloat16"`, an exact float32 copy).
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
    return this.#book.state(param);
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
    return this.#book.stateDict();
  }

  /**
   * Replaces the state and hyperparameters with those of `dict`, as torch's
   * `load_state_dict`. Everything is checked first: a bad dict changes nothing.
   * The groups are updated in place: `paramGroups[i]` is the same object
   * after a load, so a schedule holding it keeps working.
   *
   * With `momentumDtype: "bfloat16"`, exp_avg is rounded to bfloat16 (to
   * nearest even; exact for a dict of a bfloat16 optimizer).
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
    this.#book.load(dict);
    this.#started.copies.wroteHost(); // a copy the engine keeps is stale now
    this.#driver.stateLoaded();
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
   * With `shardState`, it gathers every rank's part of exp_avg (an
   * all-gather): call it on every rank, before a checkpoint that one rank
   * writes.
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
    this.#busy = true;
    try {
      await this.#driver.pullState();
      const { copies } = this.#started;
      if (copies.deviceNewer) {
        await this.#runEngine(() => this.#engine.pullState());
        copies.synced();
      }
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
    const { copies } = this.#started;
    if (copies.deviceNewer && this.#fault === undefined && !this.#busy) {
      // leave the store as the device had it
      await this.#engine.pullState().then(() => copies.synced(), () => {});
    }
    for (const slots of this.#book.slots.values()) {
      if (slots.owner === this.#guard) slots.owner = undefined;
    }
    this.#book.memory.users--;
    await this.#engine.close();
  }

  #assertOpen(action: string): void {
    if (this.#closing !== undefined) {
      throw new Error(`Cannot ${action} as the optimizer is closed`);
    }
  }

  #assertStateOnHost(action: string): void {
    const away = this.#driver.stateAway;
    if (away !== undefined) throw new Error(`Cannot ${action} as ${away}`);
    const { copies } = this.#started;
    if (copies.deviceNewer) {
      throw new Error(
        `Cannot ${action} as ${copies.keeper} keeps exp_avg on the device between steps: await opt.pullState() first`,
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

  /** The optimizer's side of a step, as its driver calls it. */
  #localStep(): LocalStep {
    return {
      prepare: (metrics, maxGradNorm) => this.#prepareStep(metrics, maxGradNorm),
      run: (request) => this.#runEngine(() => this.#engine.run(request)),
      runSync: (request) => this.#runEngine(() => this.#engine.runSync(request)),
      finish: (request, result, partials) => this.#finishStep(request, result, partials),
      iterations: () => this.#book.iterations,
    };
  }

  /** The engine's request for this step, or `undefined` when no parameter takes part. */
  #prepareStep(metrics: boolean, maxGradNorm: number): StepRequest | undefined {
    this.#metrics.clear();
    const plan = this.#planner.plan();
    if (plan.params.length === 0) {
      // torch's step() does nothing here either; not counted as an iteration
      this.#lastStep = NO_STEP;
      return undefined;
    }
    const { groups } = this.#book;
    const constants = this.#book.constants();
    checkStepCombination(this.#engine.backend, this.#shardState, groups, false);
    if (!this.#warnedSignFlip) {
      const warning = decayFlipWarning(groups, constants);
      this.#warnedSignFlip = warning !== undefined;
      if (warning !== undefined) this.#logger?.warn(warning);
    }
    // A parameter's first step starts from m = 0. Zeroing before the step is
    // harmless if the step is refused: a parameter without state has no m.
    const fresh = this.#book.fresh(plan);
    if (fresh.length > 0) this.#driver.startState(plan, fresh);
    const writes = {
      params: plan.params.some(({ slots }) => slots.written),
      state: this.#started.copies.hostWritten,
    };
    return {
      plan,
      groups: constants,
      gate: { nonFinite: this.#nonFinite, maxGradNorm },
      metrics,
      writes,
    };
  }

  /** Runs the engine; a failure there is a fault that refuses later steps. */
  #runEngine<R>(run: () => R): R {
    const fault = (error: unknown): never => {
      // a RangeError is a refusal that changed nothing (no sync runner; a device
      // path's non-finite step, raised as its state is pulled): no fault
      if (!(error instanceof RangeError)) {
        this.#fault = error instanceof Error ? error : new Error(String(error));
      }
      throw error;
    };
    try {
      const result = run();
      return (result instanceof Promise ? result.catch(fault) : result) as R;
    } catch (error) {
      return fault(error);
    }
  }

  /**
   * Books the engine's result: state, iterations, metrics (`partials`, where
   * the driver reduced them across ranks), the report.
   *
   * @returns Whether the update was applied.
   */
  #finishStep(
    { plan, metrics, gate }: StepRequest,
    result: StepResult,
    partials?: MetricPartials,
  ): boolean {
    // the norm exists where the scan summed squares; otherwise it found non-finite values only
    const gradNorm = result.gradSquares === null || !gateNeedsSquares(gate)
      ? null
      : globalGradNorm(result.gradSquares);
    if (result.decision.action !== "update") {
      this.#refuse(result.decision, nonFiniteParameters(plan, result.gradSquares!), gradNorm);
      return false;
    }
    this.#book.applied(plan);
    // the engine has taken the host's writes
    for (const { slots } of plan.params) slots.written = false;
    this.#started.copies.stepped();
    const sums = partials ??
      (result.partials === null ? undefined : partialsByParameter(plan, result.partials));
    if (sums !== undefined) this.#metrics.set(sums);
    this.#lastStep = Object.freeze({
      applied: true,
      nonFinite: [],
      metrics,
      gradNorm,
      gradScale: result.decision.gradScale,
    });
    return true;
  }

  /** A step the gate stopped: reported as skipped (`"skip"`), or thrown (`"abort"`). */
  #refuse(decision: StepDecision, nonFinite: string[], gradNorm: number | null): void {
    this.#lastStep = Object.freeze({
      applied: false,
      nonFinite,
      metrics: false,
      gradNorm,
      gradScale: 1,
    });
    const message = `the gradient of ${describeNames(nonFinite)} holds NaN or Infinity`;
    if (decision.action === "abort") {
      throw new RangeError(`Cannot step as ${message}: parameters and state are unchanged`);
    }
    this.#logger?.warn(`Skipped step as ${message}`);
  }
}

/**
 * A `DecoupledLionW` over parts assembled elsewhere: the tfjs device path's
 * book and engine, whose steps run on tfjs's tensors.
 *
 * @param parts The parts (`assembleParts()` with an engine of its own).
 * @returns The optimizer.
 */
export function composeDecoupledLionW(parts: OptimizerParts): DecoupledLionW {
  handedParts = parts;
  try {
    return new DecoupledLionW([], {});
  } finally {
    handedParts = undefined;
  }
}
