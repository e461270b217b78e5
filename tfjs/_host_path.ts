/**
 * The adapter's path on tfjs's CPU backends (`cpu`, `wasm`): each step
 * copies the gradients into the library's {@linkcode ParameterStore}, steps
 * the inner `DecoupledLionW` there (on its workers or inline) with
 * `stepSync()`, and assigns the new values back to the variables.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { DecoupledLionW } from "../src/optimizer/decoupled_lionw.ts";
import type { LionParameterState } from "../src/optimizer/state_dict.ts";
import type { MetricRecord } from "../src/step/metrics.ts";
import type { Parameter } from "../src/store/parameter.ts";
import { tensorOf, valuesOf, writeInPlace } from "./_tensor_io.ts";
import type { NamedMoment, PathEntry, StepPath } from "./_step_path.ts";

/** Steps in the store, on the library's engines. */
export class HostPath implements StepPath {
  readonly #inner: DecoupledLionW;
  /** Parameters by variable name, in build order. */
  readonly #params: ReadonlyMap<string, Parameter>;
  /** The tensor data each variable held after our last write: another means a write from outside. */
  readonly #written = new Map<string, object>();

  /**
   * @param inner The inner optimizer, over a store that mirrors the variables.
   * @param params Its parameters by variable name.
   * @param entries The variables it was built from (their data now is the store's).
   */
  constructor(
    inner: DecoupledLionW,
    params: ReadonlyMap<string, Parameter>,
    entries: readonly PathEntry[],
  ) {
    this.#inner = inner;
    this.#params = params;
    for (const { name, variable } of entries) this.#written.set(name, variable.dataId);
  }

  /** The inner optimizer's count. */
  get iterations(): number {
    return this.#inner.iterations;
  }

  /**
   * Copies the gradients in, steps, and assigns the new values back.
   *
   * @param entries The variables and gradients.
   * @param metrics Whether the step computes the metrics.
   */
  step(entries: readonly PathEntry[], metrics: boolean): void {
    const inner = this.#inner;
    inner.zeroGrad();
    for (const { name, variable, gradient } of entries) {
      const param = this.#params.get(name)!;
      this.#syncWrittenVariable(name, variable, param);
      if (gradient !== null) param.grad = valuesOf(gradient);
    }
    inner.stepSync({ metrics });
    if (inner.lastStep.applied) this.#assignBack(entries);
  }

  /** Steps are synchronous here: the host knows at once. */
  settle(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * The inner optimizer's record.
   *
   * @returns The record.
   */
  metrics(): Promise<MetricRecord> {
    return Promise.resolve(this.#inner.getMetrics());
  }

  /**
   * Copies of the moments.
   *
   * @returns Each variable's with state, in build order.
   */
  async moments(): Promise<NamedMoment[]> {
    await this.#inner.pullState();
    const { state } = this.#inner.stateDict();
    return [...this.#params].flatMap(([name, param]) => {
      const entry = state[name];
      if (entry === undefined) return [];
      const tensor = tf.tensor(entry.expAvg, [...param.shape]);
      const { quantized } = entry;
      return [quantized === undefined ? { name, tensor } : { name, tensor, quantized }];
    });
  }

  /**
   * Loads moments into the inner optimizer's state (the others keep theirs).
   *
   * @param iterations The step count.
   * @param moments States by variable name (8-bit moments as they were kept, where they were).
   */
  load(iterations: number, moments: ReadonlyMap<string, LionParameterState>): void {
    const current = this.#inner.stateDict();
    const state: Record<string, LionParameterState> = {
      ...current.state,
      ...Object.fromEntries(moments),
    };
    this.#inner.loadStateDict({ ...current, state, iterations });
  }

  /** Nothing of its own to free. */
  dispose(): void {}

  /** A variable assigned from outside since our last write (loaded weights): copy it in. */
  #syncWrittenVariable(name: string, variable: tf.Variable, param: Parameter): void {
    if (this.#written.get(name) === variable.dataId) return;
    param.data.set(valuesOf(variable));
    param.markWritten();
    this.#written.set(name, variable.dataId);
  }

  /**
   * The new values into the variables: in place where that is safe (the
   * cpu backend, a variable whose data is its own: its data id stays, so it
   * still reads as our write), else as a new tensor (on wasm always, whose
   * kernels cache what they derive from a data id; elsewhere a clone of the
   * variable, say, keeps the old values).
   */
  #assignBack(entries: readonly PathEntry[]): void {
    tf.tidy(() => {
      for (const { name, variable, gradient } of entries) {
        if (gradient === null) continue;
        const param = this.#params.get(name)!;
        if (writeInPlace(variable, param.data)) continue;
        variable.assign(tensorOf(param.data, variable.shape));
        this.#written.set(name, variable.dataId);
      }
    });
  }
}
