/**
 * Reads tests/fixtures/reference.json, written by generate.py from the
 * PyTorch reference, and compares float32 arrays bit for bit.
 *
 * @module
 */

import assert from "node:assert/strict";

/** One parameter of a fixture case. */
export interface FixtureParam {
  name: string;
  shape: number[];
  requiresGrad: boolean;
  initial: string;
}

/** One group as given to the reference. */
export interface FixtureGroup {
  params: string[];
  lr?: number;
  betas?: [number, number];
  weightDecay?: number;
  maximize?: boolean;
  cautious?: boolean;
}

/** What the reference did and held after one step. */
export interface FixtureStep {
  lrs: number[];
  grads: Record<string, string | null>;
  params: Record<string, string>;
  expAvg: Record<string, string | null>;
  metricsReference: Record<string, number>;
  metricsOwnGroup: Record<string, number>;
  /** `clip_grad_norm_`'s return value, in the clipped cases. */
  gradNorm?: number;
}

/** A fixture case. */
export interface FixtureCase {
  name: string;
  description: string;
  defaults: { lr: number; betas: [number, number]; weightDecay: number };
  groups: FixtureGroup[];
  params: FixtureParam[];
  steps: FixtureStep[];
  /** The cases clipped with `clip_grad_norm_` before each step. */
  maxGradNorm?: number;
}

/** The fixture file. */
export interface Fixtures {
  torch: string;
  cpuCapability: string;
  cases: FixtureCase[];
  /** Cases with `clip_grad_norm_` before each step. */
  clipped: FixtureCase[];
  /** Cases with exp_avg in bfloat16 (`momentumDtype: "bfloat16"`), without metrics. */
  bfloat16: FixtureCase[];
  preReduce: { input: Record<string, number>; output: Record<string, number> };
}

/** The fixtures, parsed. */
export const fixtures: Fixtures = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/reference.json", import.meta.url)),
);

/** Decodes base64 little-endian float32 bytes. */
export function decodeF32(base64: string): Float32Array {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

/**
 * Asserts that two float32 arrays are identical bit for bit; NaN matches any
 * NaN (payloads differ between torch and JavaScript engines).
 */
export function assertBitsEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) continue;
    assert.fail(
      `${what}[${i}]: ${actual[i]} (0x${a[i]!.toString(16)}) but torch has ${expected[i]} (0x${
        e[i]!.toString(16)
      })`,
    );
  }
}

/** Asserts `actual` is within `rtol` of `expected` (relative), for each key of `expected`. */
export function assertMetricsClose(
  actual: Record<string, number>,
  expected: Record<string, number>,
  rtol: number,
  what: string,
): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${what}: names`);
  for (const [name, value] of Object.entries(expected)) {
    const got = actual[name]!;
    const scale = Math.max(Math.abs(value), Math.abs(got));
    // cosines near 0 are compared absolutely: their relative error is meaningless
    const tolerance = name.startsWith("cosine") ? rtol * Math.max(scale, 1) : rtol * scale;
    assert.ok(
      Math.abs(got - value) <= tolerance,
      `${what}: ${name} is ${got} but torch has ${value}`,
    );
  }
}

/** One case of the 8-bit fixtures (tests/fixtures/generate_uint8.py), its tensors as base64. */
export interface Uint8Case {
  name: string;
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  weightDecay: number;
  gradScale: number;
  p0: string;
  grads: string[];
  codes: string[];
  absmax: string[];
  params: string[];
}

/** The 8-bit fixtures: the block size and the cases. */
export const uint8Fixtures: { block: number; cases: Uint8Case[] } = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/uint8_reference.json", import.meta.url)),
);

/**
 * Bytes from base64.
 *
 * @param base64 The text.
 * @returns The bytes.
 */
export function decodeBytes(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}
