/**
 * The adapter's weights as tfjs saves them: `iter`, then
 * `${variable}/exp_avg` for each variable with state, in the order the
 * optimizer was built with (as tfjs's own optimizers), and how saved
 * moments are matched to the variables when they are set. 8-bit moments
 * are saved as they are kept, so that a reload continues bit for bit:
 * `${variable}/exp_avg_codes` (int32, one code an element: tfjs has no
 * uint8 tensors) and `${variable}/exp_avg_absmax` (float32, one a block of
 * 256) in place of `${variable}/exp_avg`.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { formatValue } from "../src/errors/error_grammar.ts";
import type { Parameter } from "../src/store/parameter.ts";
import type { LionParameterState, QuantizedMoments } from "../src/optimizer/state_dict.ts";
import { dequantizeUint8 } from "../src/store/uint8_moments.ts";
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
/** The suffixes of an 8-bit moment's codes and scales. */
export const CODES_SUFFIX = "/exp_avg_codes";
export const ABSMAX_SUFFIX = "/exp_avg_absmax";

/** A saved moment: its values and shape, and 8-bit moments as they were kept. */
export interface SavedMoment {
  /** The values (8-bit moments: dequantized). */
  readonly values: Float32Array;
  /** The variable's shape. */
  readonly shape: number[];
  /** The codes and scales of 8-bit moments. */
  readonly quantized?: QuantizedMoments;
}

/** What `setWeights()` gave: the step count, and the moments by variable name. */
export interface PendingWeights {
  /** The step count. */
  readonly iterations: number;
  /** Each moment, by variable name. */
  readonly expAvg: Map<string, SavedMoment>;
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
    ...moments.flatMap(({ name, tensor, quantized }) => {
      if (quantized === undefined) return [{ name: `${name}${EXP_AVG_SUFFIX}`, tensor }];
      const codes = tf.tensor(Int32Array.from(quantized.codes), tensor.shape, "int32");
      tensor.dispose();
      return [
        { name: `${name}${CODES_SUFFIX}`, tensor: codes },
        { name: `${name}${ABSMAX_SUFFIX}`, tensor: tf.tensor1d(quantized.absmax.slice()) },
      ];
    }),
  ];
}

/**
 * Weights set but not yet used, as moments again (a load then a save keeps every one).
 *
 * @param pending What `setWeights()` gave, if anything.
 * @returns The moments as new tensors.
 */
export function pendingMoments(pending: PendingWeights | undefined): NamedMoment[] {
  return [...pending?.expAvg ?? []].map(([name, { values, shape, quantized }]) => ({
    name,
    tensor: tf.tensor(values.slice(), shape),
    ...(quantized === undefined ? {} : { quantized }),
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
  // each variable's tensors by suffix, the variables in the order saved (a reload with other
  // variable names matches them by position)
  const saved = new Map<string, Map<string, tf.Tensor>>();
  for (const { name, tensor } of moments) {
    const suffix = [EXP_AVG_SUFFIX, CODES_SUFFIX, ABSMAX_SUFFIX].find((s) => name.endsWith(s));
    if (suffix === undefined) {
      throw new RangeError(
        `Cannot set weights as "${name}" is not named <variable>${EXP_AVG_SUFFIX} (or ${CODES_SUFFIX} and ${ABSMAX_SUFFIX})`,
      );
    }
    const variable = name.slice(0, -suffix.length);
    if (!saved.has(variable)) saved.set(variable, new Map());
    saved.get(variable)!.set(suffix, tensor);
  }
  const expAvg: PendingWeights["expAvg"] = new Map();
  for (const [variable, tensors] of saved) {
    const values = tensors.get(EXP_AVG_SUFFIX);
    const codes = tensors.get(CODES_SUFFIX);
    if (values !== undefined) {
      expAvg.set(variable, {
        values: Float32Array.from(await values.data()),
        shape: [...values.shape],
      });
    } else if (codes !== undefined) {
      expAvg.set(variable, await quantizedMoment(variable, codes, tensors.get(ABSMAX_SUFFIX)));
    } else {
      throw new RangeError(
        `Cannot set weights as "${variable}${ABSMAX_SUFFIX}" comes without ${variable}${CODES_SUFFIX}`,
      );
    }
  }
  return { iterations, expAvg };
}

/** An 8-bit moment saved as codes and scales: both checked, its values dequantized. */
async function quantizedMoment(
  variable: string,
  codesTensor: tf.Tensor,
  absmaxTensor: tf.Tensor | undefined,
): Promise<SavedMoment> {
  const size = codesTensor.size;
  const blocks = Math.ceil(size / 256);
  if (absmaxTensor === undefined || absmaxTensor.size !== blocks) {
    throw new RangeError(
      `Cannot set weights as "${variable}${CODES_SUFFIX}" needs ${variable}${ABSMAX_SUFFIX} of ${blocks} values: current value is ${
        absmaxTensor === undefined ? "missing" : `${absmaxTensor.size} values`
      }`,
    );
  }
  const raw = await codesTensor.data();
  const bad = raw.findIndex((q) => !(Number.isInteger(q) && q >= 0 && q <= 255));
  if (bad >= 0) {
    throw new RangeError(
      `Cannot set weights as "${variable}${CODES_SUFFIX}"[${bad}] must be a code in [0, 255]: current value is ${
        raw[bad]
      }`,
    );
  }
  const quantized = {
    codes: Uint8Array.from(raw),
    absmax: Float32Array.from(await absmaxTensor.data()),
  };
  const values = dequantizeUint8(quantized);
  return { values, shape: [...codesTensor.shape], quantized };
}

/**
 * The saved moments by the variable each loads into, all or none. By name;
 * where the names are not this optimizer's but there is one moment per
 * variable, by position, as tfjs's own optimizers load (a model reloaded in
 * the same process gets suffixed variable names).
 *
 * @param params The optimizer's parameters by variable name, in build order.
 * @param pending What `setWeights()` gave.
 * @returns The states by variable name.
 * @throws {RangeError} When a moment names no variable and the counts differ, or a size does not fit.
 */
export function momentsToLoad(
  params: ReadonlyMap<string, Parameter>,
  { expAvg }: PendingWeights,
): Map<string, LionParameterState> {
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
    const { values, quantized } = expAvg.get(name)!;
    checkMomentSize(target, values, params.get(target)!);
    return [target, quantized === undefined ? { expAvg: values } : { expAvg: values, quantized }];
  }));
}

function checkMomentSize(name: string, values: Float32Array, param: Parameter): void {
  if (values.length !== param.size) {
    throw new RangeError(
      `Cannot set weights as "${name}${EXP_AVG_SUFFIX}" has ${values.length} values, not ${param.size} as the variable`,
    );
  }
}
