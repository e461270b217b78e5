import assert from "node:assert/strict";
import { fmaF32, lerpF32, signF32 } from "../src/_internal/float32.ts";

/** Exact value of a finite double as a fraction n / 2^k (k ≥ 0). */
function toFraction(x: number): { n: bigint; k: bigint } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const sign = bits >> 63n ? -1n : 1n;
  const exponent = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let e = -1074;
  if (exponent !== 0) {
    mantissa |= 1n << 52n;
    e = exponent - 1075;
  }
  return e >= 0
    ? { n: sign * mantissa << BigInt(e), k: 0n }
    : { n: sign * mantissa, k: BigInt(-e) };
}

function nextFloat32(x: number, direction: 1 | -1): number {
  const f = new Float32Array([x]);
  const bits = new Int32Array(f.buffer);
  if (x === 0) bits[0] = direction > 0 ? 1 : -0x7fffffff;
  else bits[0]! += (x > 0) === (direction > 0) ? 1 : -1;
  return f[0]!;
}

/** The float32 nearest to the exact w·d + a, ties to even, by exact rational arithmetic. */
function exactFma(w: number, d: number, a: number): number {
  const K = 600n;
  const scaled = (x: number) => {
    const { n, k } = toFraction(x);
    return n << (K - k);
  };
  const fw = toFraction(w), fd = toFraction(d);
  const exact = (fw.n * fd.n << (K - fw.k - fd.k)) + scaled(a);
  const guess = Math.fround(w * d + a);
  let best = guess;
  let bestError = -1n;
  for (const candidate of [guess, nextFloat32(guess, 1), nextFloat32(guess, -1)]) {
    if (!Number.isFinite(candidate)) continue;
    let error = scaled(candidate) - exact;
    if (error < 0n) error = -error;
    const even = (new Uint32Array(new Float32Array([candidate]).buffer)[0]! & 1) === 0;
    if (bestError < 0n || error < bestError || (error === bestError && even)) {
      best = candidate;
      bestError = error;
    }
  }
  return best;
}

Deno.test("fmaF32() rounds once where fround(w * d + a) rounds twice", () => {
  // (2^23 + 2^12 + 1)(2^23 − 2^12 + 1) = 2^46 + 1, so w·d = 2^-24 + 2^-70:
  // 1 + w·d lies just above the midpoint between 1 and 1 + 2^-23, but its
  // float64 rounding lands exactly on that midpoint and then rounds to 1.
  const w = Math.fround((2 ** 23 + 2 ** 12 + 1) * 2 ** -35);
  const d = Math.fround((2 ** 23 - 2 ** 12 + 1) * 2 ** -35);
  assert.equal(Math.fround(w * d + 1), 1); // the double rounding
  assert.equal(fmaF32(w, d, 1), 1 + 2 ** -23);
  assert.equal(fmaF32(w, -d, -1), -1 - 2 ** -23);
  assert.equal(exactFma(w, d, 1), 1 + 2 ** -23);
});

Deno.test("fmaF32() equals the exact rounding on random float32 operands", () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const value = (range: number) =>
    Math.fround((random() - 0.5) * 2 ** Math.floor(random() * 2 * range - range));
  for (let i = 0; i < 20_000; i++) {
    const w = Math.fround(random()), d = value(40), a = value(40);
    assert.equal(fmaF32(w, d, a), exactFma(w, d, a), `fmaF32(${w}, ${d}, ${a})`);
  }
});

Deno.test("fmaF32() passes non-finite values through", () => {
  assert.ok(Number.isNaN(fmaF32(0.5, NaN, 1)));
  assert.equal(fmaF32(0.5, Infinity, 1), Infinity);
  assert.equal(fmaF32(2, 3.4e38, 0), Infinity); // overflows float32
});

Deno.test("lerpF32() takes torch's branch on the weight", () => {
  // weight < 0.5: a + w·(b − a); weight ≥ 0.5: b + (w − 1)·(b − a)
  assert.equal(lerpF32(1, 3, 0.25), 1.5);
  assert.equal(lerpF32(1, 3, 0.75), 2.5);
  assert.equal(lerpF32(2, 4, 1), 4); // exactly b, even where a + 1·(b − a) would round
  assert.equal(lerpF32(2, 4, 0), 2);
  const a = Math.fround(0.4214814305305481), b = Math.fround(2.5535695552825928);
  const w = Math.fround(0.7);
  const d = Math.fround(b - a);
  assert.equal(lerpF32(a, b, w), exactFma(w - 1, d, b));
  assert.notEqual(exactFma(w - 1, d, b), exactFma(w, d, a)); // the branches differ here
});

Deno.test("signF32() is torch 1.13's: 0 for zeros and NaN", () => {
  assert.deepEqual([2, -0.5, 0, -0, NaN, Infinity, -Infinity].map(signF32), [
    1,
    -1,
    0,
    0,
    0,
    1,
    -1,
  ]);
});
