// The 8-bit momentum's rule (the tests' scalar reference, _uint8_reference.ts)
// against fixtures from bitsandbytes' rule in torch ops
// (tests/fixtures/generate_uint8.py), bit for bit, and its codebook against
// the shared map and hand-made cases.
import assert from "node:assert/strict";
import { DYNAMIC_MAP, DYNAMIC_MAP_MIDPOINTS } from "../src/store/dynamic_map.ts";
import { constants, ReferenceTensor } from "./_uint8_reference.ts";
import {
  quantizeUint8Block,
  UINT8_BLOCK,
  uint8Code,
  uint8CodeOfBits,
} from "../src/store/uint8_moments.ts";
import { assertBitsEqual, decodeBytes, decodeF32, uint8Fixtures } from "./_fixtures.ts";
import { seededValues } from "./_util.ts";

const FIXTURES = uint8Fixtures;

Deno.test("the dynamic map is bitsandbytes' (the shared file, where it is beside the checkout): ascending, 0 at 127, 1 at 255", () => {
  assert.equal(DYNAMIC_MAP.length, 256);
  for (let q = 1; q < 256; q++) assert.ok(DYNAMIC_MAP[q - 1]! < DYNAMIC_MAP[q]!, `code ${q}`);
  assert.equal(DYNAMIC_MAP[127], 0);
  assert.equal(DYNAMIC_MAP[255], 1);
  assert.equal(DYNAMIC_MAP_MIDPOINTS.length, 255);
  let shared: { float32_bits_hex: string[] } | undefined;
  try {
    shared = JSON.parse(
      Deno.readTextFileSync(new URL("../../shared/bnb_dynamic_map_signed.json", import.meta.url)),
    );
  } catch {
    console.log("the shared map is not beside the checkout: compared with the fixtures only");
  }
  if (shared !== undefined) {
    const bits = new Uint32Array(DYNAMIC_MAP.buffer, DYNAMIC_MAP.byteOffset, 256);
    assert.deepEqual(
      [...bits].map((b) => b.toString(16).padStart(8, "0")),
      shared.float32_bits_hex,
    );
  }
});

Deno.test("a code is the count of midpoints below the value: on a midpoint, the lower code", () => {
  assert.equal(uint8Code(-1), 0);
  assert.equal(uint8Code(1), 255);
  assert.equal(uint8Code(0), 127);
  for (let i = 0; i < 255; i++) {
    const m = DYNAMIC_MAP_MIDPOINTS[i]!;
    assert.equal(uint8Code(m), i, `midpoint ${i}`);
    // the next float32 above a midpoint takes the upper code
    const above = new Float32Array([m]);
    new Int32Array(above.buffer)[0]! += m >= 0 ? 1 : -1;
    assert.equal(uint8Code(above[0]!), i + 1, `above midpoint ${i}`);
  }
});

Deno.test("a block's quantization: full blocks keep absmax as it is (0 when all zero), the tail clamps it to 1e-38", () => {
  const zeros = new Float32Array(UINT8_BLOCK);
  const codes = new Uint8Array(UINT8_BLOCK).fill(9);
  assert.equal(quantizeUint8Block(zeros, codes, true), 0);
  assert.ok(codes.every((q) => q === 127), "all zero: the code of 0");
  assert.equal(quantizeUint8Block(zeros.subarray(0, 10), codes, false), Math.fround(1e-38));
  // a block whose largest moment is -0.5: it gets code 0's neighbour of -1, the others their nearest
  const block = new Float32Array([-0.5, 0.25, 0.5 * DYNAMIC_MAP[200]!, 0]);
  const out = new Uint8Array(4);
  assert.equal(quantizeUint8Block(block, out, false), 0.5);
  assert.deepEqual([...out], [uint8Code(-1), uint8Code(0.5), 200, 127]);
});

for (const c of FIXTURES.cases) {
  Deno.test(`the 8-bit rule equals bitsandbytes' in torch ops, bit for bit: ${c.name}`, () => {
    assert.equal(FIXTURES.block, UINT8_BLOCK);
    // torch rounds each scalar to float32 (1 − β and the decay in float64 first)
    const k = constants(c.lr, [c.beta1, c.beta2], c.weightDecay);
    const tensor = new ReferenceTensor(decodeF32(c.p0));
    assert.ok(tensor.uint8);
    c.grads.forEach((grad, t) => {
      // the gradient scale (clipping, maximize) rounds once, as g·scale in float32
      tensor.step(decodeF32(grad).map((g) => g * c.gradScale), k, false);
      assert.deepEqual(tensor.codes, decodeBytes(c.codes[t]!), `step ${t}: codes`);
      assertBitsEqual(tensor.absmax, decodeF32(c.absmax[t]!), `step ${t}: absmax`);
      assertBitsEqual(tensor.p, decodeF32(c.params[t]!), `step ${t}: parameters`);
    });
  });
}

/** Normal values (Box–Muller over a seeded uniform stream), times `scale`. */
function normals(count: number, seed: number, scale: number): Float32Array {
  const u = seededValues(2 * count, seed).map((x) => (x + 1) / 2);
  return new Float32Array(count).map((_, i) =>
    scale * Math.sqrt(-2 * Math.log(Math.max(u[2 * i]!, 1e-12))) *
    Math.cos(2 * Math.PI * u[2 * i + 1]!)
  );
}

Deno.test("bitsandbytes' acceptance test of Lion8bit against float32 Lion: lr 1e-4, 50 steps, 1024×1024", () => {
  const n = 1024 * 1024;
  const k = constants(1e-4, [0.9, 0.99], 0); // no decay: bitsandbytes' test has none
  const p0 = normals(n, 1, 0.1);
  // two runs of float32 and 8-bit Lion: apart for 50 steps; and re-synced (the 8-bit
  // parameters set to float32's every step)
  const runs = [0, 1].map(() => ({
    float32: new ReferenceTensor(p0, false),
    uint8: new ReferenceTensor(p0, true),
  }));
  const [apart, synced] = runs as [(typeof runs)[0], (typeof runs)[0]];
  let worstOutside = 0;
  for (let step = 0; step < 50; step++) {
    const g = normals(n, 100 + step, 0.01);
    for (const run of runs) {
      run.float32.step(g, k, false);
      run.uint8.step(g, k, false);
    }
    // the synced run's state: elements outside atol 3e-3 / rtol 1e-3 of float32's moment
    const [s, m32] = [synced.uint8.moments(), synced.float32.m];
    let outside = 0;
    for (let i = 0; i < n; i++) {
      if (Math.abs(s[i]! - m32[i]!) > 3e-3 + 1e-3 * Math.abs(m32[i]!)) outside++;
    }
    worstOutside = Math.max(worstOutside, outside);
    synced.uint8.p.set(synced.float32.p);
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.abs(apart.uint8.p[i]! - apart.float32.p[i]!);
  const meanDifference = sum / n;
  console.log(
    `mean |Δp| after 50 steps: ${
      meanDifference.toExponential(3)
    }; state elements outside the tolerance, worst step: ${worstOutside}`,
  );
  assert.ok(meanDifference < 6e-5, `mean |Δp| ${meanDifference}`);
  assert.ok(worstOutside < 20, `${worstOutside} state elements outside the tolerance`);
});

Deno.test("the kernels' code by the map's structure equals the count of midpoints below, everywhere near a midpoint and across magnitudes", () => {
  const bits = new Uint32Array(1);
  const value = new Float32Array(bits.buffer);
  const fast = (x: number) => {
    value[0] = Math.abs(x);
    return uint8CodeOfBits(x, bits[0]!);
  };
  const check = (x: number) => assert.equal(fast(x), uint8Code(x), `x = ${x}`);
  for (const x of [0, -0, 1, -1, 2 ** -149, -(2 ** -149)]) check(x);
  const near = new Float32Array(1);
  const nearBits = new Int32Array(near.buffer);
  for (const m of [...DYNAMIC_MAP_MIDPOINTS, ...DYNAMIC_MAP]) {
    for (let step = -3; step <= 3; step++) {
      near[0] = m;
      nearBits[0]! += step;
      if (Math.abs(near[0]!) <= 1) check(near[0]!);
    }
  }
  // magnitudes log-uniform from 1e-9 to 1, both signs
  const u = seededValues(200_000, 99);
  for (let i = 0; i < u.length; i += 2) {
    check(Math.fround(Math.sign(u[i]!) * 10 ** (-9 * Math.abs(u[i + 1]!))));
  }
});
