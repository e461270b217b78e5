/**
 * The DecoupledLionW rule written with tfjs ops, for any backend: the update
 * where a backend runs no fused program (and for comparing with the fused
 * ones), and the reductions every device step needs (the gradients'
 * verdict and squared norm, the caution counts, the metrics' partial sums).
 * Every function runs on the tensors' own backend: nothing is read back.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { UpdateConstants, UpdateInputs, UpdateOutput } from "./_device_programs.ts";

/**
 * torch's `lerp(a, b, w)`, with its branch on `w` (a host number here):
 * `a + w·(b − a)` below one half, `b − (b − a)·(1 − w)` from there.
 *
 * @param a The start.
 * @param b The end.
 * @param w The weight.
 * @returns The interpolation.
 */
export function lerp(a: tf.Tensor, b: tf.Tensor, w: number): tf.Tensor {
  const difference = tf.sub(b, a);
  return w < 0.5
    ? tf.add(a, tf.mul(difference, w))
    : tf.sub(b, tf.mul(difference, Math.fround(1 - w)));
}

/**
 * 1 where the signs of `c` and `g` agree (both positive or both negative),
 * else 0: timm's `update * grad > 0`, without the product's underflow.
 *
 * @param c The update direction before its sign.
 * @param g The scaled gradient.
 * @returns The mask, as float32.
 */
export function agreement(c: tf.Tensor, g: tf.Tensor): tf.Tensor {
  // step(x) is 1 for x > 0, else 0, in float32: a cast of a bool tensor would not do, as
  // tfjs-backend-webgpu 4.22 casts bool to float32 by relabelling the integer buffer
  return tf.step(tf.mul(tf.sign(c), tf.sign(g)));
}

/**
 * One result of the update, as tfjs ops (the same rule as the fused programs).
 *
 * @param output Which result.
 * @param inputs The tensors.
 * @param k The constants.
 * @returns The new values, flat.
 */
export function opsUpdate(
  output: UpdateOutput,
  inputs: UpdateInputs,
  k: UpdateConstants,
): tf.Tensor1D {
  return tf.tidy((): tf.Tensor1D => {
    const [ok, gradScale, factor] = tf.unstack(inputs.scalars) as [tf.Scalar, tf.Scalar, tf.Scalar];
    const applies = tf.greater(ok, 0.5);
    const g = tf.mul(inputs.grad, gradScale);
    if (output === "moment") {
      return tf.where(
        applies,
        lerp(inputs.moment, g, k.momentWeight),
        inputs.moment,
      ) as tf.Tensor1D;
    }
    const c = lerp(inputs.moment, g, k.directionWeight);
    let direction = tf.sign(c);
    if (k.cautious) direction = tf.mul(direction, tf.mul(agreement(c, g), factor));
    const next = tf.sub(tf.mul(inputs.param, k.decayMultiplier), tf.mul(direction, k.lr));
    return tf.where(applies, next, inputs.param) as tf.Tensor1D;
  });
}

/**
 * timm's caution factor of one parameter, on the device:
 * `1 / max(agreeing / elements, 1e-3)`.
 *
 * @param moment Its exp_avg, flat.
 * @param g Its scaled gradient, flat.
 * @param directionWeight `f32(1 − β1)`.
 * @returns The factor, a scalar.
 */
export function cautionFactor(moment: tf.Tensor, g: tf.Tensor, directionWeight: number): tf.Scalar {
  const agreeing = tf.sum(agreement(lerp(moment, g, directionWeight), g));
  return tf.div(1, tf.maximum(tf.div(agreeing, g.size), Math.fround(1e-3)));
}

/**
 * torch's `clip_grad_norm_` coefficient over every gradient, on the device:
 * `min(1, maxNorm / (‖g‖ + 1e-6))` with `‖g‖` the global L2 norm.
 *
 * @param grads The gradients.
 * @param maxNorm The largest norm allowed.
 * @returns The coefficient, a scalar.
 */
export function clipCoefficient(grads: readonly tf.Tensor[], maxNorm: number): tf.Scalar {
  const squares = grads.map((g) => tf.sum(tf.square(g)));
  const norm = tf.sqrt(tf.addN(squares));
  return tf.minimum(tf.div(maxNorm, tf.add(norm, Math.fround(1e-6))), 1);
}

/**
 * 1 where every value of `grad` is finite, else 0.
 *
 * @param grad A gradient.
 * @returns A float32 scalar.
 */
export function allFinite(grad: tf.Tensor): tf.Scalar {
  return tf.where(tf.all(tf.isFinite(grad)), 1, 0) as tf.Scalar; // not a cast: see agreement()
}

/**
 * The six pre-reduce sums of one parameter's metrics, in `Partial` order:
 * `[Σm², Σp², Σu², Σg², Σu·g, Σm·g]` over the post-step `m` and `p`, the
 * scaled gradient `g` and the reference's step tensor
 * `u = lr · sign(lerp(m, g, 1 − β1)) + stepDecay · p`.
 *
 * @param param The post-step values, flat.
 * @param moment The post-step exp_avg, flat.
 * @param g The scaled gradient, flat.
 * @param k The constants, and `stepDecay`.
 * @returns The sums, a tensor of 6.
 */
export function partialSums(
  param: tf.Tensor,
  moment: tf.Tensor,
  g: tf.Tensor,
  k: UpdateConstants & { readonly stepDecay: number },
): tf.Tensor1D {
  const u = tf.add(
    tf.mul(tf.sign(lerp(moment, g, k.directionWeight)), k.lr),
    tf.mul(param, k.stepDecay),
  );
  const dot = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(a, b));
  return tf.stack([
    dot(moment, moment),
    dot(param, param),
    dot(u, u),
    dot(g, g),
    dot(u, g),
    dot(moment, g),
  ]) as tf.Tensor1D;
}
