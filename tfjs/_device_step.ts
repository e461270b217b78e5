/**
 * One DecoupledLionW step on tfjs's own tensors, where they live (a `webgl`
 * or `webgpu` backend): the gradients' verdict and their clipping
 * coefficient are reduced on the device, each parameter is updated by the
 * fused programs (or tfjs ops), the update applies only where the verdict
 * says so, and the metrics' partial sums are reduced there too. What the
 * host needs later (the verdict, per-parameter finiteness, the sums) comes
 * out packed in one small tensor, read back asynchronously by the caller,
 * never here.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { GroupConstants } from "../src/kernels/kernel.ts";
import type { StepGate } from "../src/step/step_decision.ts";
import type { DevicePrograms, UpdateConstants, UpdateInputs } from "./_device_programs.ts";
import { cautionFactor, opsUpdate, partialSums } from "./_device_ops.ts";
import { deviceVerdict } from "./_device_gate.ts";

/** One parameter of a device step. */
export interface DeviceParam {
  /** The variable updated. */
  readonly variable: tf.Variable;
  /** Its gradient. */
  readonly gradient: tf.Tensor;
  /** Its exp_avg, a variable of the same shape on the same backend. */
  readonly moment: tf.Variable;
  /** Its group's float32 constants (a negative `gradScale`: the group maximizes). */
  readonly constants: UpdateConstants & Pick<GroupConstants, "stepDecay" | "gradScale">;
}

/** How a device step decides and what it computes. */
export interface DeviceStepOptions {
  /** The gate: the non-finite policy ("ignore": no verdict is computed) and the clipping norm. */
  readonly gate: StepGate;
  /** Whether to reduce the metrics' partial sums. */
  readonly metrics: boolean;
  /** 1, or 0 after a non-finite step under "error": no step applies until the error is raised. */
  readonly healthy: tf.Scalar;
  /** The backend's fused programs, or `undefined` for tfjs ops. */
  readonly programs: DevicePrograms | undefined;
}

/** What a device step leaves: new values to assign, and the packed results. */
export interface DeviceStepResult {
  /** Each parameter's new values, in its variable's shape. */
  readonly values: tf.Tensor[];
  /** Each parameter's new exp_avg, in its shape. */
  readonly moments: tf.Tensor[];
  /** 1 where the step applied, else 0. */
  readonly ok: tf.Scalar;
  /**
   * `[ok, finite_0 … finite_{k−1}, sums_0 … sums_{k−1}]`: the verdict, then
   * 1 or 0 per parameter for whether its gradient is finite, then (with
   * metrics) six partial sums per parameter.
   */
  readonly packed: tf.Tensor1D;
}

/** Offset of the per-parameter finiteness flags in {@linkcode DeviceStepResult.packed}. */
export const FINITE_OFFSET = 1;

/**
 * Runs one step on the device. Returns new tensors (the caller assigns and
 * disposes them); reads nothing back.
 *
 * @param params The parameters with a gradient.
 * @param options The policy, clipping and metrics.
 * @returns The new values, the verdict and the packed results.
 */
export function deviceStep(
  params: readonly DeviceParam[],
  options: DeviceStepOptions,
): DeviceStepResult {
  return tf.tidy(() => {
    const flat = (t: tf.Tensor) => tf.reshape(t, [t.size]) as tf.Tensor1D;
    const { finite, ok, coefficient } = deviceVerdict(
      options.gate,
      params.map(({ gradient }) => flat(gradient)),
      options.healthy,
      options.programs?.allFinite,
    );
    const update = options.programs?.update ?? opsUpdate;
    const values: tf.Tensor[] = [];
    const moments: tf.Tensor[] = [];
    const sums: tf.Tensor[] = [];
    const scales = [coefficient, tf.neg(coefficient)];
    // `[ok, gradScale, 0]`, made once per sign: only a cautious parameter needs its own
    const shared = scales.map((scale) => tf.stack([ok, scale, tf.scalar(0)]) as tf.Tensor1D);
    for (const { variable, gradient, moment, constants } of params) {
      // the group's scale (-1: maximize) meets the clipping coefficient on the device
      const maximize = constants.gradScale < 0;
      const gradScale = scales[maximize ? 1 : 0]!;
      // the scaled gradient, for the caution count and the metrics only (the update scales its own)
      const scaled = constants.cautious || options.metrics
        ? tf.mul(flat(gradient), gradScale)
        : null;
      const inputs: UpdateInputs = {
        param: flat(variable),
        moment: flat(moment),
        grad: flat(gradient),
        scalars: constants.cautious
          ? tf.stack([
            ok,
            gradScale,
            cautionFactor(flat(moment), scaled!, constants.directionWeight),
          ]) as tf.Tensor1D
          : shared[maximize ? 1 : 0]!,
      };
      const value = update("param", inputs, constants);
      const next = update("moment", inputs, constants);
      values.push(tf.reshape(value, variable.shape));
      moments.push(tf.reshape(next, moment.shape));
      if (options.metrics) sums.push(partialSums(value, next, scaled!, constants));
    }
    const packed = tf.concat([tf.reshape(ok, [1]), tf.stack(finite), ...sums]) as tf.Tensor1D;
    return { values, moments, ok, packed };
  });
}
