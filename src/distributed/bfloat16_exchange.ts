/**
 * The kernels of the bfloat16 exchange (`exchange: "bfloat16"`): each rank
 * rounds its gradients to bfloat16 (nearest even, as torch rounds) and the
 * ranks all-gather them, half the bytes of float32; every rank then adds
 * the ranks' values in rank order in float32 (so every rank gets the same
 * sums, bit for bit, run after run) before the average divides them.
 *
 * @module
 */

/**
 * Rounds `length` float32 values from `source` (at `from`) to bfloat16
 * words at `target` (from `at`): nearest even; NaN stays NaN; a value that
 * rounds past the largest bfloat16 becomes ±Infinity, as in torch.
 *
 * @param source The values, as their float32 bits.
 * @param from The first value.
 * @param length How many.
 * @param target Where the words go.
 * @param at The first word.
 */
export function packBfloat16(
  source: Uint32Array,
  from: number,
  length: number,
  target: Uint16Array,
  at: number,
): void {
  for (let i = 0; i < length; i++) {
    const bits = source[from + i]!;
    target[at + i] = (bits & 0x7fffffff) > 0x7f800000
      ? 0x7fc0
      : ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

/**
 * Adds the ranks' bfloat16 words in rank order, in float32: `out[i]` is
 * `((w_0 + w_1) + w_2) + …` for element `from + i` (rank `r`'s words start
 * at `r · stride`). A double sum of two float32 values rounded to float32 is
 * their float32 sum (53 ≥ 2·24 + 2 bits), so this is float32 arithmetic.
 *
 * @param words Every rank's words.
 * @param stride Words per rank.
 * @param worldSize The ranks.
 * @param from The first element.
 * @param length How many.
 * @param out Where the sums go (float32).
 * @param at Their first index in `out`.
 */
export function sumBfloat16(
  words: Uint16Array,
  stride: number,
  worldSize: number,
  from: number,
  length: number,
  out: Float32Array,
  at: number,
): void {
  const widened = new Float32Array(length);
  const bits = new Uint32Array(widened.buffer);
  for (let r = 0; r < worldSize; r++) {
    const start = r * stride + from;
    for (let i = 0; i < length; i++) bits[i] = words[start + i]! << 16;
    if (r === 0) out.set(widened, at);
    else for (let i = 0; i < length; i++) out[at + i] = out[at + i]! + widened[i]!;
  }
}
