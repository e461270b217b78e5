/**
 * The demo's model: a makemore-style MLP over characters (Bengio et al.
 * 2003): embed the `context` previous characters, one hidden layer with
 * tanh, logits over the alphabet. Plain tfjs-core ops, so the same code runs
 * in Deno and in a page.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
// tfjs-layers registers the gradients of tfjs-core's ops (tfjs-core alone has none)
import "@tensorflow/tfjs-layers";
import { ALPHABET } from "./dataset.ts";
import { normal, type Random } from "./rng.ts";

/** The model's sizes. */
export interface ModelShape {
  /** Characters of context. */
  readonly context: number;
  /** Width of a character's embedding. */
  readonly embedding: number;
  /** Units of the hidden layer. */
  readonly hidden: number;
}

const VOCAB = ALPHABET.length;

/** The MLP's variables (named as in PyTorch, under a prefix) and its forward pass. */
export class NameModel {
  readonly shape: ModelShape;
  readonly embed: tf.Variable;
  readonly hiddenWeight: tf.Variable;
  readonly hiddenBias: tf.Variable;
  readonly outWeight: tf.Variable;
  readonly outBias: tf.Variable;

  /**
   * Makes the variables from `initial` (see {@linkcode initialWeights}).
   *
   * @param prefix Prefix of the variables' names (tfjs names are global).
   * @param shape The sizes.
   * @param initial The starting values, by name without the prefix.
   */
  constructor(prefix: string, shape: ModelShape, initial: ReadonlyMap<string, Float32Array>) {
    this.shape = shape;
    const { context, embedding, hidden } = shape;
    const make = (name: string, dims: number[]) =>
      tf.variable(tf.tensor(initial.get(name)!, dims), true, `${prefix}/${name}`);
    this.embed = make("embed.weight", [VOCAB, embedding]);
    this.hiddenWeight = make("hidden.weight", [context * embedding, hidden]);
    this.hiddenBias = make("hidden.bias", [hidden]);
    this.outWeight = make("out.weight", [hidden, VOCAB]);
    this.outBias = make("out.bias", [VOCAB]);
  }

  /** Every variable, in a fixed order. */
  get variables(): tf.Variable[] {
    return [this.embed, this.hiddenWeight, this.hiddenBias, this.outWeight, this.outBias];
  }

  /** Parameters, all told. */
  get size(): number {
    return this.variables.reduce((total, v) => total + v.size, 0);
  }

  /**
   * Logits of the next character.
   *
   * @param x Contexts, `[batch, context]` int32.
   * @returns `[batch, vocab]`.
   */
  logits(x: tf.Tensor2D): tf.Tensor2D {
    const { context, embedding } = this.shape;
    // the lookup as a one-hot product: its gradient is a matMul too, which
    // every tfjs backend has (wasm lacks gather's gradient, UnsortedSegmentSum)
    const oneHot = tf.oneHot(tf.reshape(x, [-1]), VOCAB);
    const embedded = tf.reshape(tf.matMul(oneHot, this.embed), [-1, context * embedding]);
    const hidden = tf.tanh(tf.add(tf.matMul(embedded, this.hiddenWeight), this.hiddenBias));
    return tf.add(tf.matMul(hidden, this.outWeight), this.outBias);
  }

  /**
   * The mean cross-entropy of the next characters, in nats.
   *
   * @param x Contexts, `[batch, context]` int32.
   * @param y Next characters, `[batch]` int32.
   * @returns A scalar.
   */
  loss(x: tf.Tensor2D, y: tf.Tensor1D): tf.Scalar {
    return tf.losses.softmaxCrossEntropy(tf.oneHot(y, VOCAB), this.logits(x)) as tf.Scalar;
  }

  /**
   * Samples names, one character at a time, until `.`.
   *
   * @param count How many.
   * @param random The generator.
   * @returns The names.
   */
  sample(count: number, random: Random): string[] {
    const names: string[] = [];
    for (let n = 0; n < count; n++) {
      const window = new Array<number>(this.shape.context).fill(0);
      let name = "";
      for (let length = 0; length < 30; length++) {
        const probs = tf.tidy(() =>
          tf.softmax(this.logits(tf.tensor2d([window], undefined, "int32"))).dataSync()
        );
        const next = pick(probs, random());
        if (next === 0) break;
        name += ALPHABET[next];
        window.shift();
        window.push(next);
      }
      names.push(name);
    }
    return names;
  }

  dispose(): void {
    tf.dispose(this.variables);
  }
}

/**
 * The starting weights, drawn from `random` (so identical wherever the seed
 * is): embeddings N(0, 1); the hidden layer Kaiming-scaled for tanh (gain
 * 5/3); the output layer and the biases small, so the first loss is close
 * to ln 27 (the uniform guess).
 *
 * @param shape The sizes.
 * @param random The generator.
 * @returns The values by name.
 */
export function initialWeights(shape: ModelShape, random: Random): Map<string, Float32Array> {
  const { context, embedding, hidden } = shape;
  const draw = (count: number, scale: number) =>
    Float32Array.from({ length: count }, () => normal(random) * scale);
  const fanIn = context * embedding;
  return new Map([
    ["embed.weight", draw(VOCAB * embedding, 1)],
    ["hidden.weight", draw(fanIn * hidden, 5 / 3 / Math.sqrt(fanIn))],
    ["hidden.bias", draw(hidden, 0.01)],
    ["out.weight", draw(hidden * VOCAB, 0.01)],
    ["out.bias", new Float32Array(VOCAB)],
  ]);
}

/** The index where the cumulative probability passes `u`. */
function pick(probs: ArrayLike<number>, u: number): number {
  let cumulative = 0;
  for (let i = 0; i < probs.length; i++) {
    cumulative += probs[i]!;
    if (u < cumulative) return i;
  }
  return probs.length - 1;
}
