/**
 * The Lion update in gpu.js's kernel language: one thread per element for
 * the new parameters and the new moment, one thread per (block, sum) for the
 * metric partials. gpu.js has no reductions, so each partials thread sums one
 * fixed block of {@linkcode DEVICE_BLOCK} elements; the caller adds the
 * blocks in order in float64.
 *
 * gpu.js also has no kernel maps on WebGPU (2.24.1 throws, webasm falls back
 * to its cpu mode), so parameters and moment are two kernels over the same
 * inputs rather than one kernel with two outputs.
 *
 * @module
 */

/**
 * The gpu.js modes this package drives: `webgpu` (WGSL compute shaders on a
 * WebGPU adapter), `webasm` (gpu.js's SIMD WebAssembly) and `cpu` (gpu.js's
 * JavaScript).
 *
 * @example Run the gpujs kernels without a GPU
 * ```ts
 * import { DecoupledLionW, type GpuJsMode, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const gpuMode: GpuJsMode = "webasm";
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { backend: "gpujs", gpuMode, workers: 0, lr: 0.5 });
 * w.grad = [1, -1];
 * await opt.step();
 * assert.deepEqual([...w.data], [0.5, 1.5]);
 * assert.equal((await opt.ready()).gpuMode, "webasm");
 * ```
 */
export type GpuJsMode = "webgpu" | "webasm" | "cpu";

/**
 * Elements per device partial-sum block (and per segment alignment on the
 * device): `1 << 8`, as the kernels find an element's block by `i >> 8`.
 * gpu.js computes `/` in float32 on webgpu and webasm, which is inexact past
 * 2^24 (measured: `Math.floor(i / 256)` wrong for 65,535 of 2^25 indices);
 * shifts stay in int32.
 */
export const DEVICE_BLOCK = 256;
/** Sums per device block, in `PARTIAL_COUNT` order. */
export const DEVICE_SUMS = 6;
/** Partials threads per block: 8 (two idle), so a thread finds its block and sum by shift and mask. */
export const DEVICE_SUM_SLOTS = 8;

/** What gpu.js gives a kernel as `this`. */
interface KernelThis {
  readonly thread: { readonly x: number };
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

// The kernel sources below are read by gpu.js's parser from their text: they
// use its subset of JavaScript (no closures, no Math.fround). `* 5` is
// GROUP_CONSTANT_FIELDS (src/kernel.ts) and `>> 8` is log2(DEVICE_BLOCK),
// written as literals for the parser. Element indices are written as
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

/** `p·decay − lr·sign(lerp(m, g, 1 − β1))`. */
function paramsKernel(
  this: KernelThis,
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  blockGroup: Float32Array,
  constants: Float32Array,
): number {
  const k = blockGroup[this.thread.x >> 8]! * 5;
  const c = torchLerp(m[this.thread.x]!, g[this.thread.x]!, constants[k + 1]!);
  return p[this.thread.x]! * constants[k + 3]! - constants[k]! * Math.sign(c);
}

/** `lerp(m, g, 1 − β2)`. */
function momentKernel(
  this: KernelThis,
  g: Float32Array,
  m: Float32Array,
  blockGroup: Float32Array,
  constants: Float32Array,
): number {
  const k = blockGroup[this.thread.x >> 8]! * 5;
  return torchLerp(m[this.thread.x]!, g[this.thread.x]!, constants[k + 2]!);
}

/**
 * Sum `x & 7` of block `x >> 3` over the post-step `p` and `m` and the
 * step's `g`: Σm², Σp², Σu², Σg², Σu·g, Σm·g (sums 6 and 7 are 0), with the
 * reference's step tensor `u = lr·sign(lerp(m, g, 1 − β1)) + stepDecay·p`.
 */
function partialsKernel(
  this: KernelThis,
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  blockGroup: Float32Array,
  constants: Float32Array,
): number {
  const sum = this.thread.x & 7;
  if (sum > 5) {
    return 0;
  }
  const k = blockGroup[this.thread.x >> 3]! * 5;
  const lr = constants[k]!;
  const w = constants[k + 1]!;
  const stepDecay = constants[k + 4]!;
  let total = 0;
  for (let j = 0; j < 256; j++) {
    // the block's first element, (x >> 3) << 8, stays an integer expression
    const mi = m[((this.thread.x >> 3) << 8) + j]!;
    const gi = g[((this.thread.x >> 3) << 8) + j]!;
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
  /** Partial sums, {@linkcode DEVICE_SUM_SLOTS} per block. */
  readonly partials: RunKernel;
  /** Frees the kernels' device memory. */
  destroy(): void;
}

/**
 * Compiles the kernels for a device layout of `elements` elements (a
 * multiple of {@linkcode DEVICE_BLOCK}). Results stay on the device
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
  const resident = { pipeline: true, immutable: true };
  const kernels = [
    gpu.createKernel(copyKernel, { ...resident, output: [elements] }),
    gpu.createKernel(paramsKernel, { ...resident, output: [elements] }),
    gpu.createKernel(momentKernel, { ...resident, output: [elements] }),
    gpu.createKernel(partialsKernel, {
      ...resident,
      output: [(elements / DEVICE_BLOCK) * DEVICE_SUM_SLOTS],
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
