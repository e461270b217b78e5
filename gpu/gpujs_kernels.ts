/**
 * The Lion update in gpu.js's kernel language: one thread per element for
 * the new parameters and the new moment, one thread per (tile, sum) for the
 * metric partials. gpu.js has no reductions, so each partials thread sums one
 * fixed tile of {@linkcode DEVICE_TILE} elements; the caller adds the
 * tiles in order in float64.
 *
 * gpu.js also has no kernel maps on WebGPU (2.24.1 throws, webasm falls back
 * to its cpu mode), so parameters and moment are two kernels over the same
 * inputs rather than one kernel with two outputs.
 *
 * @module
 */

import { GROUP_CONSTANT_FIELDS, GROUP_CONSTANT_NAMES } from "../src/kernels/kernel.ts";

/**
 * Elements per tile, the device's unit of partial sums (and of segment
 * alignment on the device): `1 << 8`, as the kernels find an element's tile
 * by `i >> 8`.
 * gpu.js computes `/` in float32 on webgpu and webasm, which is inexact past
 * 2^24 (measured: `Math.floor(i / 256)` wrong for 65,535 of 2^25 indices);
 * shifts stay in int32.
 */
export const DEVICE_TILE = 256;
/** Sums per tile, in `PARTIAL_COUNT` order. */
export const DEVICE_SUMS = 6;
/** Partials threads per tile: 8 (two idle), so a thread finds its tile and sum by shift and mask. */
export const SUM_THREADS_PER_TILE = 8;

/** What gpu.js gives a kernel as `this`. */
interface KernelThis {
  readonly thread: { readonly x: number };
  /** {@linkcode KERNEL_CONSTANTS}, baked into the kernel by gpu.js. */
  readonly constants: { readonly [name: string]: number };
}

/** A device buffer (webgpu) or a plain array (cpu, webasm), as gpu.js passes them. */
export type DeviceArray = Float32Array | { toArray(): Promise<Float32Array>; delete(): void };

/** A compiled kernel; its result may be a Promise (webgpu). */
export type RunKernel = (...args: unknown[]) => DeviceArray | Promise<DeviceArray>;

/** The part of gpu.js's `GPU` this package uses. */
export interface GpuJs {
  addFunction(source: (...args: never[]) => number): unknown;
  createKernel(source: (...args: never[]) => number, settings: object): RunKernel & {
    destroy(): unknown;
  };
  destroy(): Promise<void>;
}

/**
 * The layout of the packed group constants, as gpu.js constants the kernels
 * read (`this.constants.stride`, `this.constants.lr`, …): the stride and
 * each constant's offset come from src/kernels/kernel.ts's packing order.
 */
const KERNEL_CONSTANTS: Readonly<Record<string, number>> = Object.fromEntries([
  ["stride", GROUP_CONSTANT_FIELDS],
  ...GROUP_CONSTANT_NAMES.map((name, i) => [name, i]),
]);

// The kernel sources below are read by gpu.js's parser from their text: they
// use its subset of JavaScript (no closures, no Math.fround). `>> 8` is
// log2(DEVICE_TILE), written as a literal for the parser. Element indices are written as
// `this.thread.x` in every lookup, never kept in a variable: gpu.js 2.24.1
// declares `const i = this.thread.x` as an f32 in WGSL, and an f32 index is
// wrong past 2^24 (odd elements read their even neighbour; measured, 384 of
// 768 elements past 2^24 in a copy kernel).

/** torch's `lerp`, with its branch on the weight (added to gpu.js as a helper). */
function torchLerp(start: number, end: number, weight: number): number {
  if (weight < 0.5) {
    return start + weight * (end - start);
  }
  return end - (end - start) * (1 - weight);
}

/** Copies an array into a device buffer (the upload). */
function copyKernel(this: KernelThis, values: Float32Array): number {
  return values[this.thread.x]!;
}

/** `p·decay − lr·sign(lerp(m, g·gradScale, 1 − β1))`. */
function paramsKernel(
  this: KernelThis,
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  tileGroup: Float32Array,
  groupConstants: Float32Array,
): number {
  const k = tileGroup[this.thread.x >> 8]! * this.constants.stride!;
  const c = torchLerp(
    m[this.thread.x]!,
    g[this.thread.x]! * groupConstants[k + this.constants.gradScale!]!,
    groupConstants[k + this.constants.directionWeight!]!,
  );
  return p[this.thread.x]! * groupConstants[k + this.constants.decayMultiplier!]! -
    groupConstants[k + this.constants.lr!]! * Math.sign(c);
}

/** `lerp(m, g·gradScale, 1 − β2)`. */
function momentKernel(
  this: KernelThis,
  g: Float32Array,
  m: Float32Array,
  tileGroup: Float32Array,
  groupConstants: Float32Array,
): number {
  const k = tileGroup[this.thread.x >> 8]! * this.constants.stride!;
  return torchLerp(
    m[this.thread.x]!,
    g[this.thread.x]! * groupConstants[k + this.constants.gradScale!]!,
    groupConstants[k + this.constants.momentWeight!]!,
  );
}

/**
 * Sum `x & 7` of tile `x >> 3` over the post-step `p` and `m` and the
 * step's `g`: Σm², Σp², Σu², Σg², Σu·g, Σm·g (sums 6 and 7 are 0), with the
 * reference's step tensor `u = lr·sign(lerp(m, g, 1 − β1)) + stepDecay·p`.
 */
function partialsKernel(
  this: KernelThis,
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  tileGroup: Float32Array,
  groupConstants: Float32Array,
): number {
  const sum = this.thread.x & 7;
  if (sum > 5) {
    return 0;
  }
  const k = tileGroup[this.thread.x >> 3]! * this.constants.stride!;
  const lr = groupConstants[k + this.constants.lr!]!;
  const w = groupConstants[k + this.constants.directionWeight!]!;
  const stepDecay = groupConstants[k + this.constants.stepDecay!]!;
  const gradScale = groupConstants[k + this.constants.gradScale!]!;
  let total = 0;
  for (let j = 0; j < 256; j++) {
    // the tile's first element, (x >> 3) << 8, stays an integer expression
    const mi = m[((this.thread.x >> 3) << 8) + j]!;
    const gi = g[((this.thread.x >> 3) << 8) + j]! * gradScale;
    const pi = p[((this.thread.x >> 3) << 8) + j]!;
    const u = lr * Math.sign(torchLerp(mi, gi, w)) + stepDecay * pi;
    let term = 0;
    if (sum === 0) {
      term = mi * mi;
    } else if (sum === 1) {
      term = pi * pi;
    } else if (sum === 2) {
      term = u * u;
    } else if (sum === 3) {
      term = gi * gi;
    } else if (sum === 4) {
      term = u * gi;
    } else {
      term = mi * gi;
    }
    total += term;
  }
  return total;
}

/** gpu.js instances that have `torchLerp` already (adding it twice would define it twice). */
const withHelpers = new WeakSet<GpuJs>();

/** The four kernels, compiled for `elements` device elements. */
export interface LionDeviceKernels {
  /** Host array → device buffer. */
  readonly copy: RunKernel;
  /** New parameters. */
  readonly params: RunKernel;
  /** New moment. */
  readonly moment: RunKernel;
  /** Partial sums, {@linkcode SUM_THREADS_PER_TILE} per tile. */
  readonly partials: RunKernel;
  /** Frees the kernels' device memory. */
  destroy(): void;
}

/**
 * Compiles the kernels for a device layout of `elements` elements (a
 * multiple of {@linkcode DEVICE_TILE}). Results stay on the device
 * (`pipeline`), each call in a buffer of its own (`immutable`), so a kernel
 * can take the previous step's output as input.
 *
 * @param gpu A gpu.js instance.
 * @param elements Device elements.
 * @returns The kernels.
 */
export function compileLionKernels(gpu: GpuJs, elements: number): LionDeviceKernels {
  if (!withHelpers.has(gpu)) {
    gpu.addFunction(torchLerp);
    withHelpers.add(gpu);
  }
  const resident = { pipeline: true, immutable: true, constants: KERNEL_CONSTANTS };
  const kernels = [
    gpu.createKernel(copyKernel, { ...resident, output: [elements] }),
    gpu.createKernel(paramsKernel, { ...resident, output: [elements] }),
    gpu.createKernel(momentKernel, { ...resident, output: [elements] }),
    gpu.createKernel(partialsKernel, {
      ...resident,
      output: [(elements / DEVICE_TILE) * SUM_THREADS_PER_TILE],
    }),
  ] as const;
  return {
    copy: kernels[0],
    params: kernels[1],
    moment: kernels[2],
    partials: kernels[3],
    destroy: () => kernels.forEach((kernel) => kernel.destroy()),
  };
}
