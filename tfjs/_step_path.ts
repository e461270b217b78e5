/**
 * Where the adapter's steps run, behind one contract: {@linkcode HostPath}
 * (`_host_path.ts`) copies into the library's store and steps its engines
 * (tfjs's `cpu` and `wasm` backends); `DevicePath` (`_device_path.ts`) steps
 * on the backend's own tensors (`webgl`, `webgpu`). The adapter picks one
 * when it is built and hands every step and every state call to it.
 *
 * @module
 */

import type * as tf from "@tensorflow/tfjs-core";
import type { MetricRecord } from "../src/step/metrics.ts";
import type { LionParameterState, QuantizedMoments } from "../src/optimizer/state_dict.ts";

/** A variable, its gradient (none: `null`) and its name, as the adapter collects them. */
export interface PathEntry {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly gradient: tf.Tensor | null;
}

/** A moment by its variable's name. */
export interface NamedMoment {
  readonly name: string;
  /** Its values (8-bit moments: dequantized). */
  readonly tensor: tf.Tensor;
  /** 8-bit moments as they are kept, where they are. */
  readonly quantized?: QuantizedMoments;
}

/** What the adapter asks of the place its steps run. */
export interface StepPath {
  /** Steps applied, as far as the host knows. */
  readonly iterations: number;
  /** One step, synchronous (checked entries; variables without a gradient keep their state). */
  step(entries: readonly PathEntry[], metrics: boolean): void;
  /** Resolves once the host knows what every step did; raises a deferred error. */
  settle(): Promise<void>;
  /** The last step's metrics (empty without them). */
  metrics(): Promise<MetricRecord>;
  /** exp_avg of each variable with state, in build order, as new tensors. */
  moments(): Promise<NamedMoment[]>;
  /** Replaces moments (sizes checked by the caller) and the step count. */
  load(iterations: number, moments: ReadonlyMap<string, LionParameterState>): void;
  /** Frees what the path holds (the inner optimizer is closed by the adapter). */
  dispose(): void;
}
