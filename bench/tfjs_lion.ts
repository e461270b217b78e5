/**
 * Lion written with TensorFlow.js ops on its WebAssembly backend: the peer a
 * JavaScript user would otherwise reach for. Same rule (lerp as
 * `m + (g - m)·w`, decoupled decay), op by op, each op a pass over memory.
 *
 * @module
 */

import * as tf from "npm:@tensorflow/tfjs-core@4.22.0";
import { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";

/** The tfjs version the bench reports. */
export const TFJS_VERSION: string = tf.version_core;

/** Loads the wasm backend from the npm package's own files. */
export async function useTfjsWasm(): Promise<void> {
  const dist = new URL(".", import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0"));
  setWasmPaths(dist.pathname);
  await tf.setBackend("wasm");
  await tf.ready();
}

/** A Lion step over tfjs variables. */
export class TfjsLion {
  readonly #params: tf.Variable[];
  readonly #moments: tf.Variable[];
  readonly #grads: tf.Tensor[];

  /**
   * @param sizes Elements of each parameter.
   */
  constructor(sizes: number[]) {
    this.#params = sizes.map((n) => tf.variable(tf.randomNormal([n])));
    this.#moments = sizes.map((n) => tf.variable(tf.zeros([n])));
    this.#grads = sizes.map((n) => tf.randomNormal([n]));
  }

  /** One step. The wasm backend runs ops eagerly and synchronously. */
  step(lr = 1e-4, beta1 = 0.9, beta2 = 0.99, weightDecay = 1e-4): void {
    tf.tidy(() => {
      this.#params.forEach((p, i) => {
        const m = this.#moments[i]!, g = this.#grads[i]!;
        const diff = tf.sub(g, m);
        const direction = tf.sign(tf.add(m, tf.mul(diff, 1 - beta1)));
        p.assign(tf.sub(tf.mul(p, 1 - lr * weightDecay), tf.mul(direction, lr)));
        m.assign(tf.add(m, tf.mul(diff, 1 - beta2)));
      });
    });
  }

  /** Frees the tensors. */
  dispose(): void {
    for (const t of [...this.#params, ...this.#moments, ...this.#grads]) t.dispose();
  }
}
