/**
 * Copies between tfjs tensors and the parameter store, with as few fresh
 * buffers as each tfjs backend allows: a fresh buffer costs its first-touch
 * page faults, which for large tensors cost far more than the copy itself
 * (docs/tfjs.md).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";

/** What this file uses of tfjs-backend-wasm's backend (public methods of its class, in 4.22). */
interface WasmHeap {
  readonly dataIdMap: { has(dataId: object): boolean };
  typedArrayFromHeap(tensor: tf.TensorInfo): Float32Array;
}

function wasmHeap(tensor: tf.Tensor): WasmHeap | undefined {
  if (tf.getBackend() !== "wasm") return undefined;
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
  const copiesOnWrite = tf.getBackend() === "wasm";
  return tf.tensor(copiesOnWrite ? values : values.slice(), [...shape], "float32");
}
