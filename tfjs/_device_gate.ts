/**
 * The step gate on the device: the same gate as every engine's
 * (`src/step/step_decision.ts` says what it checks and what a non-finite
 * step does), computed on tfjs's tensors so that nothing is read back
 * inside a step: the gradients' verdict and their clipping coefficient.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { gateChecksFinite, gateNeedsSquares, type StepGate } from "../src/step/step_decision.ts";
import { allFinite, clipCoefficient } from "./_device_ops.ts";

/** The gate's verdict on the device. */
export interface DeviceVerdict {
  /** 1 or 0 per gradient, for whether it is finite (1 where the gate does not check). */
  readonly finite: tf.Scalar[];
  /** 1 where the step applies, else 0. */
  readonly ok: tf.Scalar;
  /** The gradients' clipping coefficient (1 where the gate does not clip). */
  readonly coefficient: tf.Scalar;
}

/**
 * The gate's verdict on the step's gradients, inside the caller's tidy.
 *
 * @param gate The policy and the clipping norm.
 * @param gradients The step's gradients, flat.
 * @param healthy 0 after a non-finite step whose error is not raised yet: no step applies.
 * @param finiteProgram The backend's fused verdict program, or the ops.
 * @returns The verdict.
 */
export function deviceVerdict(
  gate: StepGate,
  gradients: readonly tf.Tensor1D[],
  healthy: tf.Scalar,
  finiteProgram: (grad: tf.Tensor1D) => tf.Scalar = allFinite,
): DeviceVerdict {
  const checks = gateChecksFinite(gate);
  const finite = checks ? gradients.map(finiteProgram) : gradients.map(() => tf.scalar(1));
  const ok = checks ? tf.mul(tf.min(tf.stack(finite)), healthy) as tf.Scalar : tf.scalar(1);
  const coefficient = gateNeedsSquares(gate)
    ? clipCoefficient(gradients, gate.maxGradNorm)
    : tf.scalar(1);
  return { finite, ok, coefficient };
}
