/**
 * Copies between tfjs tensors and the parameter store, with as few fresh
 * buffers as each tfjs backend allows: a fresh buffer costs its first-touch
 * page faults, which for large tensors cost far more than the copy itself
 * (docs/tfjs.md).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import { activeBackendRow } from "./_tfjs_backends.ts";

/** What this file uses of tfjs-backend-cpu's backend (public in 4.22). */
interface CpuStorage {
  readonly data: { get(dataId: object): { values?: unknown } | undefined };
}

/** Both backends count the tensors that share a data id (clones, reshapes, a variable's start). */
interface RefCounting {
  refCount(dataId: object): number;
}

/** What this file uses of tfjs-backend-wasm's backend (public methods of its class, in 4.22). */
interface WasmHeap {
  readonly dataIdMap: { has(dataId: object): boolean };
  typedArrayFromHeap(tensor: tf.TensorInfo): Float32Array;
}

function wasmHeap(tensor: tf.Tensor): WasmHeap | undefined {
  if (!activeBackendRow().heapViews) return undefined;
  const backend = tf.backend() as unknown as Partial<WasmHeap>;
  const holds = typeof backend.typedArrayFromHeap === "function" &&
    backend.dataIdMap?.has(tensor.dataId) === true;
  return holds ? backend as WasmHeap : undefined;
}

/**
 * A float32 tensor's values to copy from at once: on the wasm backend a
 * view on its heap (no copy); on the cpu backend the stored array (no
 * copy); elsewhere `dataSync()`'s copy.
 *
 * @param tensor A float32 tensor.
 * @returns Its values; read them before the next tfjs call.
 */
export function valuesOf(tensor: tf.Tensor): Float32Array {
  return wasmHeap(tensor)?.typedArrayFromHeap(tensor) ?? (tensor.dataSync() as Float32Array);
}

/**
 * A new tensor holding a copy of `values`: the wasm backend copies them into
 * its heap as the tensor is made, so the view goes as it is; the other
 * backends keep the array they are given, so they get a copy.
 *
 * @param values The values (a view on the store).
 * @param shape The shape.
 * @returns The tensor.
 */
export function tensorOf(values: Float32Array, shape: readonly number[]): tf.Tensor {
  const { copiesOnCreate } = activeBackendRow();
  return tf.tensor(copiesOnCreate ? values : values.slice(), [...shape], "float32");
}

/**
 * Writes `values` into a variable's own storage, where that is safe: on a
 * backend that derives nothing from a tensor's data (the cpu backend's
 * stored array), and where no other tensor shares it (the backend's
 * reference count for its data is 1). A new tensor instead would be a fresh
 * array per step, whose first-touch page faults cost far more than the copy
 * on large variables (docs/tfjs.md).
 *
 * @param variable A float32 variable of `values.length` elements.
 * @param values The new values.
 * @returns Whether it wrote; where it did not (shared data, another
 * backend), assign a new tensor instead.
 */
export function writeInPlace(variable: tf.Variable, values: Float32Array): boolean {
  if (!activeBackendRow().writableInPlace) return false;
  const backend = tf.backend() as unknown as Partial<RefCounting & CpuStorage>;
  if (typeof backend.refCount !== "function" || backend.refCount(variable.dataId) !== 1) {
    return false;
  }
  const stored = backend.data?.get(variable.dataId)?.values;
  if (!(stored instanceof Float32Array) || stored.length !== values.length) return false;
  stored.set(values);
  return true;
}
