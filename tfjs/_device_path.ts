/**
 * The adapter's device path: on a tfjs backend whose tensors live on a GPU
 * (`webgl`, `webgpu`), exp_avg stays there as tfjs variables and each step
 * runs on the device ({@linkcode deviceStep}); nothing is read back inside
 * `applyGradients`. What the host must learn later (the verdict of each
 * step, the metrics' sums) is read asynchronously, once per step at most,
 * after the step has returned; a non-finite step under `"error"` is raised
 * by the next call into the optimizer, naming the step, and until then no
 * step applies (the device holds the verdict).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { kernelConstants } from "../src/optimizer/hyperparameters.ts";
import { groupValues, type ParamGroup } from "../src/optimizer/param_group.ts";
import type { OptimizerBook } from "../src/optimizer/optimizer_book.ts";
import type { StateCopies } from "../src/engine/state_copies.ts";
import type { LionParameterState } from "../src/optimizer/state_dict.ts";
import { finalizeMetrics, type MetricRecord } from "../src/step/metrics.ts";
import { gateChecksFinite, nonFiniteDecision, type StepGate } from "../src/step/step_decision.ts";
import type { Parameter } from "../src/store/parameter.ts";
import type { DevicePrograms } from "./_device_programs.ts";
import { type DeviceParam, deviceStep, FINITE_OFFSET } from "./_device_step.ts";
import type { DeviceKeeper } from "./_device_engine.ts";
import type { NamedMoment, PathEntry, StepPath } from "./_step_path.ts";
import { PARTIAL_COUNT } from "../src/kernels/kernel.ts";

/** How the device path steps. */
export interface DevicePathOptions {
  /** The gate: the non-finite policy and the global gradient norm clipped to. */
  readonly gate: StepGate;
  /** The backend's fused programs, or `undefined` for tfjs ops. */
  readonly programs: DevicePrograms | undefined;
}

/** One step's packed results, until they are read. */
interface StepRecord {
  /** The step's number (1 for the first). */
  readonly step: number;
  /** Steps before a raised error belong to an older generation: their verdicts no longer count. */
  readonly generation: number;
  /** The names of the parameters stepped, in packed order. */
  readonly names: readonly string[];
  readonly metrics: boolean;
  readonly packed: tf.Tensor1D;
  read?: Promise<Float32Array>;
}

/**
 * The device side of the adapter. Its host copy is the inner optimizer's
 * book (groups, the store's state, the count), which it writes when pulled
 * and reads when the book was loaded; `copies` says which copy is newest.
 */
export class DevicePath implements StepPath, DeviceKeeper {
  readonly #book: OptimizerBook;
  readonly #copies: StateCopies;
  /** Parameters by variable name, in build order. */
  readonly #params: ReadonlyMap<string, Parameter>;
  readonly #variables: Map<string, tf.Variable>;
  readonly #options: DevicePathOptions;
  readonly #moments = new Map<string, tf.Variable>();
  readonly #healthy: tf.Variable<tf.Rank.R0> = tf.variable(tf.scalar(1), false);
  readonly #groupOf = new Map<Parameter, ParamGroup>();
  readonly #reads = new Set<Promise<unknown>>();
  /** Steps whose verdict is to be read once the step has returned. */
  readonly #unread: StepRecord[] = [];
  #iterations: number;
  #generation = 0;
  #last: StepRecord | undefined;
  #fault: { step: number; names: string[] } | undefined;
  /** The store holds the device's values: pulled, and no step since. */
  #storeCurrent = false;
  #disposed = false;

  /**
   * @param book The inner optimizer's book, over a store mirroring the variables.
   * @param copies Which copy of exp_avg is newest (the book's or the device's).
   * @param params Its parameters by variable name.
   * @param variables The variables by name.
   * @param options The policy and update.
   */
  constructor(
    book: OptimizerBook,
    copies: StateCopies,
    params: ReadonlyMap<string, Parameter>,
    variables: Map<string, tf.Variable>,
    options: DevicePathOptions,
  ) {
    this.#book = book;
    this.#copies = copies;
    this.#params = params;
    this.#variables = variables;
    this.#options = options;
    this.#iterations = book.iterations;
    for (const group of book.groups) {
      for (const param of group.params) this.#groupOf.set(param, group);
    }
    // the variables are the newest values: the store holds none until it is pulled
    copies.stepped();
  }

  /** Steps applied, as far as the host knows (a skipped step counts until its verdict is read). */
  get iterations(): number {
    return this.#iterations;
  }

  /**
   * One step on the device; throws a non-finite error of an earlier step first.
   *
   * @param entries The variables and gradients.
   * @param metrics Whether to reduce the metrics' sums.
   */
  step(entries: readonly PathEntry[], metrics: boolean): void {
    this.#raiseFault();
    if (this.#copies.hostWritten) this.#push();
    const stepped = entries.filter((entry) => entry.gradient !== null);
    if (stepped.length === 0) return;
    this.#storeCurrent = false;
    this.#copies.stepped();
    const params = stepped.map((entry) => this.#deviceParam(entry));
    const result = deviceStep(params, { ...this.#options, metrics, healthy: this.#healthy });
    params.forEach(({ variable, moment }, i) => {
      variable.assign(result.values[i]!);
      moment.assign(result.moments[i]!);
    });
    // a step that must fail holds every later one until its error is raised
    if (nonFiniteDecision(this.#options.gate).action === "abort") this.#healthy.assign(result.ok);
    tf.dispose([...result.values, ...result.moments, result.ok]);
    this.#iterations++;
    this.#record({
      step: this.#iterations,
      generation: this.#generation,
      names: stepped.map(({ name }) => name),
      metrics,
      packed: tf.keep(result.packed), // outlives the caller's tidy (tfjs-layers steps in one)
    });
  }

  /**
   * The metrics of the last step (empty when it computed none, or did not
   * apply), read back once.
   *
   * @returns The record.
   */
  async metrics(): Promise<MetricRecord> {
    await this.settle();
    const last = this.#last;
    if (last === undefined || !last.metrics) return {};
    const values = await this.#read(last);
    this.#raiseFault();
    if (values[0]! < 0.5) return {};
    const offset = FINITE_OFFSET + last.names.length;
    const sums = Float64Array.from(
      values.subarray(offset, offset + PARTIAL_COUNT * last.names.length),
    );
    return finalizeMetrics({ names: last.names, sums });
  }

  /** Waits for every verdict in flight, and raises a non-finite error among them. */
  async settle(): Promise<void> {
    this.#readQueued(); // steps just taken, whose reads would start after this call
    while (this.#reads.size > 0) await Promise.all(this.#reads);
    this.#raiseFault();
  }

  /**
   * exp_avg of each variable with state, in build order: copies made on the
   * device (nothing is read back), once every verdict is in.
   *
   * @returns Names (variable names) and tensors.
   */
  async moments(): Promise<NamedMoment[]> {
    await this.settle();
    if (this.#copies.hostWritten) this.#push();
    return [...this.#params.keys()].flatMap((name) => {
      const moment = this.#moments.get(name);
      return moment === undefined ? [] : [{ name, tensor: tf.clone(moment) }];
    });
  }

  /**
   * Replaces the moments (the others keep theirs) and the step count.
   *
   * @param iterations The step count.
   * @param moments States by variable name, sizes checked by the caller (8-bit ones by their values).
   */
  load(iterations: number, moments: ReadonlyMap<string, LionParameterState>): void {
    for (const [name, { expAvg }] of moments) {
      this.#momentOf(name).assign(tf.tensor(expAvg, this.#variables.get(name)!.shape));
    }
    this.#restart(iterations);
    this.#copies.stepped(); // the device's copy is the newer, as after a step
  }

  /** Writes the variables' values and exp_avg into the book's store (the inner optimizer's `pullState`). */
  async pull(): Promise<void> {
    await this.settle();
    if (this.#disposed) return;
    const state: Record<string, LionParameterState> = {};
    for (const [name, param] of this.#params) {
      param.data.set(await this.#variables.get(name)!.data() as Float32Array);
      param.markWritten();
      const moment = this.#moments.get(name);
      if (moment !== undefined) state[name] = { expAvg: await moment.data() as Float32Array };
    }
    // the groups as they are, the device's state: no copy of the store's stale state is read
    this.#book.load({ paramGroups: this.#book.savedGroups(), state, iterations: this.#iterations });
    this.#storeCurrent = true;
  }

  /** The book was loaded: the device takes it at once (after the loader's synchronous writes). */
  loaded(): void {
    queueMicrotask(() => this.#copies.hostWritten && !this.#disposed && this.#push());
  }

  /** Frees the moments and the verdict. */
  dispose(): void {
    this.#disposed = true;
    tf.dispose([...this.#moments.values(), this.#healthy]);
    this.#moments.clear();
    if (this.#last?.read === undefined) this.#last?.packed.dispose();
  }

  #deviceParam({ name, variable, gradient }: PathEntry): DeviceParam {
    const group = this.#groupOf.get(this.#params.get(name)!)!;
    return {
      variable,
      gradient: gradient!,
      moment: this.#momentOf(name),
      // the host engines' constants (the device takes their gradScale with the clipping scale)
      constants: kernelConstants(groupValues(group)),
    };
  }

  /** exp_avg of `name`, zeros at its first gradient as torch's lazy state. */
  #momentOf(name: string): tf.Variable {
    let moment = this.#moments.get(name);
    if (moment === undefined) {
      moment = tf.variable(tf.zerosLike(this.#variables.get(name)!), false);
      this.#moments.set(name, moment);
    }
    return moment;
  }

  /** Keeps the step's packed results; its verdict is read after the step returns. */
  #record(record: StepRecord): void {
    const previous = this.#last;
    this.#last = record;
    if (!gateChecksFinite(this.#options.gate)) {
      // no verdict to read: the sums wait for getMetrics(), the last step's only
      if (previous !== undefined && previous.read === undefined) previous.packed.dispose();
      return;
    }
    // read after the step has returned (each step's verdict counts; the read disposes)
    this.#unread.push(record);
    queueMicrotask(() => this.#readQueued());
  }

  /** Starts the reads of the steps that returned since. */
  #readQueued(): void {
    for (const record of this.#unread.splice(0)) void this.#read(record).catch(() => undefined);
  }

  #read(record: StepRecord): Promise<Float32Array> {
    if (record.read !== undefined) return record.read;
    const read = record.packed.data() as Promise<Float32Array>;
    record.read = read.then((values) => {
      this.#judge(record, values);
      return values;
    }).finally(() => {
      record.packed.dispose();
      this.#reads.delete(pending);
    });
    const pending = record.read.catch(() => undefined);
    this.#reads.add(pending);
    return record.read;
  }

  /** What a step's verdict means for the count and the policy. */
  #judge(record: StepRecord, values: Float32Array): void {
    if (values[0]! >= 0.5 || record.generation !== this.#generation) return;
    const names = record.names.filter((_, i) => values[FINITE_OFFSET + i]! < 0.5);
    if (names.length === 0) return; // held back by an earlier step's verdict
    if (nonFiniteDecision(this.#options.gate).action === "skip") this.#iterations--;
    else if (this.#fault === undefined) this.#fault = { step: record.step, names };
  }

  #raiseFault(): void {
    const fault = this.#fault;
    if (fault === undefined) return;
    const later = this.#iterations - fault.step;
    this.#restart(fault.step - 1);
    throw new RangeError(
      `Cannot apply step ${fault.step} as the gradient of ${
        fault.names.map((name) => `"${name}"`).join(", ")
      } is not finite (NaN or infinite): nothing changed in that step${
        later > 0 ? ` or the ${later} after it, which ran before its verdict was read back` : ""
      } (on a GPU backend a step cannot wait for its verdict, so the error comes at the next call)`,
    );
  }

  /** A new count, with every verdict in flight disregarded and the device healthy. */
  #restart(iterations: number): void {
    this.#fault = undefined;
    this.#generation++;
    this.#iterations = iterations;
    this.#healthy.assign(tf.scalar(1));
  }

  /**
   * Sends the book's state to the device, and the store's values too where
   * they are the device's own, pulled since the last step (a checkpoint's
   * loader pulls, then writes the values; a bare `loadStateDict` writes
   * only state).
   */
  #push(): void {
    const book = this.#book;
    tf.tidy(() => {
      for (const [name, param] of this.#params) {
        const variable = this.#variables.get(name)!;
        if (this.#storeCurrent) variable.assign(tf.tensor(param.data.slice(), variable.shape));
        const state = book.state(param);
        if (state !== undefined) {
          this.#momentOf(name).assign(tf.tensor(state.expAvg.slice(), variable.shape));
        } else {
          this.#moments.get(name)?.dispose();
          this.#moments.delete(name);
        }
      }
    });
    this.#restart(book.iterations);
    this.#copies.synced();
  }
}
