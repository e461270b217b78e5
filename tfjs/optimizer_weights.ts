/**
 * The adapter's weights as tfjs saves them: `iter`, then
 * `${variable}/exp_avg` for each variable with state, in the order the
 * optimizer was built with (as tfjs's own optimizers), and how saved
 * moments are matched to the variables when they are set.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { formatValue } from "../src/errors/error_grammar.ts";
import type { Parameter } from "../src/store/parameter.ts";
import type { NamedMoment } from "./_step_path.ts";

/** A tensor and its name, as `tf.Optimizer.getWeights()` returns them (tfjs-core does not export the type). */
export interface NamedTensor {
  /** The name. */
  name: string;
  /** The tensor. */
  tensor: tf.Tensor;
}

/** The suffix of a moment's name in {@linkcode DecoupledLionWOptimizer.getWeights}. */
export const EXP_AVG_SUFFIX = "/exp_avg";

/** What `setWeights()` gave: the step count, and the moments by variable name. */
export interface PendingWeights {
  /** The step count. */
  readonly iterations: number;
  /** Each moment's values and shape, by variable name. */
  readonly expAvg: Map<string, { readonly values: Float32Array; readonly shape: number[] }>;
}

/**
 * The tensors `getWeights()` returns: `iter`, then each moment.
 *
 * @param iterations The step count.
 * @param moments The moments, by variable name, in build order.
 * @returns New tensors; the caller disposes them.
 */
export function weightTensors(iterations: number, moments: readonly NamedMoment[]): NamedTensor[] {
  return [
    { name: "iter", tensor: tf.scalar(iterations, "int32") },
    ...moments.map(({ name, tensor }) => ({ name: `${name}${EXP_AVG_SUFFIX}`, tensor })),
  ];
}

/**
 * Weights set but not yet used, as moments again (a load then a save keeps every one).
 *
 * @param pending What `setWeights()` gave, if anything.
 * @returns The moments as new tensors.
 */
export function pendingMoments(pending: PendingWeights | undefined): NamedMoment[] {
  return [...pending?.expAvg ?? []].map(([name, { values, shape }]) => ({
    name,
    tensor: tf.tensor(values.slice(), shape),
  }));
}

/**
 * Reads what `getWeights()` saved (the values are copied).
 *
 * @param weightValues `iter`, then `${variable}/exp_avg` tensors.
 * @returns The step count and the moments by variable name.
 * @throws {RangeError} When the first is not `iter` or a name is not `<variable>/exp_avg`.
 */
export async function readWeights(weightValues: readonly NamedTensor[]): Promise<PendingWeights> {
  const [iter, ...moments] = weightValues;
  if (iter === undefined || iter.name !== "iter") {
    throw new RangeError(
      `Cannot set weights as the first must be "iter": current value is ${formatValue(iter?.name)}`,
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
  return { iterations, expAvg };
}

/**
 * The saved moments by the variable each loads into, all or none. By name;
 * where the names are not this optimizer's but there is one moment per
 * variable, by position, as tfjs's own optimizers load (a model reloaded in
 * the same process gets suffixed variable names).
 *
 * @param params The optimizer's parameters by variable name, in build order.
 * @param pending What `setWeights()` gave.
 * @returns The values by variable name.
 * @throws {RangeError} When a moment names no variable and the counts differ, or a size does not fit.
 */
export function momentsToLoad(
  params: ReadonlyMap<string, Parameter>,
  { expAvg }: PendingWeights,
): Map<string, Float32Array> {
  const names = [...params.keys()];
  const saved = [...expAvg.keys()];
  const byName = saved.every((name) => params.has(name));
  if (!byName && saved.length !== names.length) {
    const unknown = saved.find((name) => !params.has(name));
    throw new RangeError(
      `Cannot set weights as "${unknown}${EXP_AVG_SUFFIX}" names no variable of this optimizer (${
        names.map((name) => `"${name}"`).join(", ")
      }), and there are ${saved.length} moments for ${names.length} variables`,
    );
  }
  return new Map(saved.map((name, i) => {
    const target = byName ? name : names[i]!;
    const { values } = expAvg.get(name)!;
    checkMomentSize(target, values, params.get(target)!);
    return [target, values];
  }));
}

function checkMomentSize(name: string, values: Float32Array, param: Parameter): void {
  if (values.length !== param.size) {
    throw new RangeError(
      `Cannot set weights as "${name}${EXP_AVG_SUFFIX}" has ${values.length} values, not ${param.size} as the variable`,
    );
  }
}
