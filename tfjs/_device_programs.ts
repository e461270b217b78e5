/**
 * The DecoupledLionW update as one fused program per output on tfjs's GPU
 * backends: a WGSL compute shader on `webgpu`, a fragment shader on `webgl`.
 * Each reads the parameter, its exp_avg and its gradient once and writes one
 * of the two results, where tfjs ops would make about a dozen passes over
 * memory (docs/tfjs.md has the measurements). The backends are reached
 * through their public program runners (`runWebGPUProgram`,
 * `compileAndRun`), so this file imports neither backend.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import type { GroupConstants } from "../src/kernels/kernel.ts";

/**
 * The host-side constants of one parameter's update: its group's
 * `GroupConstants` that the programs take as uniforms
 * ({@linkcode DEVICE_CONSTANTS}).
 */
export type UpdateConstants = Pick<
  GroupConstants,
  "lr" | "directionWeight" | "momentWeight" | "decayMultiplier" | "cautious"
>;

/**
 * The tensors of one parameter's update, all flat float32 of one length but
 * `scalars`: `[ok, gradScale, cautionFactor]`, computed on the device (the
 * step's verdict, its clipping coefficient with the maximize sign, and the
 * parameter's caution factor).
 */
export interface UpdateInputs {
  /** The parameter's values. */
  readonly param: tf.Tensor1D;
  /** Its exp_avg. */
  readonly moment: tf.Tensor1D;
  /** Its gradient, as computed (not yet scaled). */
  readonly grad: tf.Tensor1D;
  /** `[ok, gradScale, cautionFactor]`. */
  readonly scalars: tf.Tensor1D;
}

/** Which result a program writes. */
export type UpdateOutput = "param" | "moment";

/** Runs one fused update program. */
export type FusedUpdate = (
  output: UpdateOutput,
  inputs: UpdateInputs,
  constants: UpdateConstants,
) => tf.Tensor1D;

/**
 * The programs of one backend: the update, and the gradient's verdict in
 * one pass (1 where every value is finite, else 0), where tfjs ops take
 * three (a finiteness map written, then reduced).
 */
export interface DevicePrograms {
  /** One result of the update. */
  readonly update: FusedUpdate;
  /** Whether a gradient is all finite, as a float32 scalar 1 or 0. */
  readonly allFinite: (grad: tf.Tensor1D) => tf.Scalar;
}

/**
 * Threads of a verdict pass: each checks every `VERDICT_THREADS`-th value (a
 * grid stride, so neighbouring threads read neighbouring values), and the
 * threads' flags are reduced by `tf.min`.
 */
const VERDICT_THREADS = 16384;

/** What this file uses of tfjs-backend-webgpu's backend (public in 4.22). */
interface WebGpuRunner {
  runWebGPUProgram(
    program: object,
    inputs: tf.TensorInfo[],
    outputDtype: "float32",
    uniforms: { type: "float32" | "int32"; data: number[] }[],
  ): tf.TensorInfo;
}

/** What this file uses of tfjs-backend-webgl's backend (public in 4.22). */
interface WebGlRunner {
  compileAndRun(
    program: object,
    inputs: tf.TensorInfo[],
    outputDtype: "float32",
    customUniformValues: number[][],
  ): tf.TensorInfo;
}

/**
 * How the device path takes each of the kernels' group constants: as a
 * uniform of the fused programs (`"uniform"`), as the step's gradient scale
 * (`"scale"`: it is multiplied with the clipping coefficient on the device),
 * in the metrics' sums only (`"metrics"`), or not at all, where the
 * optimizer refuses the option on a GPU backend (`"refused"`: bfloat16
 * and 8-bit moments, and β1 and β2 themselves, which only the 8-bit rule
 * reads). One entry per constant, so a new constant does not type-check
 * until the device path says what it does with it.
 */
export const DEVICE_CONSTANTS: {
  readonly [K in keyof GroupConstants]: "uniform" | "scale" | "metrics" | "refused";
} = Object.freeze({
  lr: "uniform",
  directionWeight: "uniform",
  momentWeight: "uniform",
  decayMultiplier: "uniform",
  stepDecay: "metrics",
  gradScale: "scale",
  cautious: "uniform",
  momentBfloat16: "refused",
  momentUint8: "refused",
  beta1: "refused",
  beta2: "refused",
});

/** The uniforms, in the order both shaders declare them. */
const UNIFORM_NAMES = (Object.keys(DEVICE_CONSTANTS) as (keyof GroupConstants)[])
  .filter((name) => DEVICE_CONSTANTS[name] === "uniform") as (keyof UpdateConstants)[];

/** The names of the fused programs in tfjs's kernel registry. */
const UPDATE_KERNEL = "DecoupledLionWUpdate";
const ALL_FINITE_KERNEL = "DecoupledLionWAllFinite";

/** The attributes of an update kernel: which result, and the uniforms. */
type UpdateAttrs = UpdateConstants & { readonly output: UpdateOutput };

/** An update kernel's inputs, by name, in the order the programs read them. */
function updateInputs({ param, moment, grad, scalars }: tf.NamedTensorInfoMap): tf.TensorInfo[] {
  return [param!, moment!, grad!, scalars!];
}

/**
 * The fused programs, registered per backend as tfjs registers its own
 * kernels (`registerKernel`): the step runs whichever the active backend
 * has, and a backend without them runs the update as tfjs ops. Only this
 * table names backends.
 */
const KERNELS: readonly tf.KernelConfig[] = [
  ...kernelsOf<WebGpuRunner>("webgpu", wgslUpdateProgram, wgslAllFinite),
  ...kernelsOf<WebGlRunner>("webgl", glslUpdateProgram, glslAllFinite),
];

/** The two kernels of one backend, over its program runner. */
function kernelsOf<R>(
  backendName: string,
  update: (runner: R, inputs: tf.TensorInfo[], attrs: UpdateAttrs) => tf.TensorInfo,
  allFinite: (runner: R, grad: tf.TensorInfo) => tf.TensorInfo,
): tf.KernelConfig[] {
  return [
    {
      kernelName: UPDATE_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend, attrs }) =>
        update(backend as unknown as R, updateInputs(inputs), attrs as unknown as UpdateAttrs),
    },
    {
      kernelName: ALL_FINITE_KERNEL,
      backendName,
      kernelFunc: ({ inputs, backend }) => allFinite(backend as unknown as R, inputs.grad!),
    },
  ];
}

for (const kernel of KERNELS) {
  if (tf.getKernel(kernel.kernelName, kernel.backendName) === undefined) tf.registerKernel(kernel);
}

/**
 * The fused programs of the current tfjs backend, or `undefined` where it
 * has none registered (then everything runs as tfjs ops).
 *
 * @returns The programs.
 */
export function programsOfBackend(): DevicePrograms | undefined {
  const backend = tf.getBackend();
  const registered = [UPDATE_KERNEL, ALL_FINITE_KERNEL]
    .every((name) => tf.getKernel(name, backend) !== undefined);
  if (!registered) return undefined;
  return {
    update: (output, { param, moment, grad, scalars }, constants) => {
      const attrs: Record<string, number | string> = { output };
      for (const name of UNIFORM_NAMES) attrs[name] = constants[name];
      return tf.engine().runKernel(
        UPDATE_KERNEL,
        { param, moment, grad, scalars },
        attrs,
      ) as tf.Tensor1D;
    },
    allFinite: (grad) => tf.min(tf.engine().runKernel(ALL_FINITE_KERNEL, { grad }) as tf.Tensor1D),
  };
}

/** An IEEE-754 float32 is not finite when its exponent bits are all ones (NaN, ±Infinity). */
const NOT_FINITE_BITS = "0x7f800000u";

function wgslAllFinite(backend: WebGpuRunner, grad: tf.TensorInfo): tf.TensorInfo {
  const size = grad.shape.reduce((a, b) => a * b, 1);
  const threads = Math.min(size, VERDICT_THREADS);
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const program = {
    variableNames: ["G"],
    outputShape: [threads],
    shaderKey: "decoupled_lionw_all_finite",
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(threads / workgroupSize[0]), 1, 1],
    workgroupSize,
    size: true,
    uniforms: "length : i32,",
    // bits, not arithmetic: WGSL lets a compiler assume that no value is NaN or infinite
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var finite = 1.0;
          for (var j = index; j < uniforms.length; j = j + uniforms.size) {
            if ((bitcast<u32>(G[j]) & ${NOT_FINITE_BITS}) == ${NOT_FINITE_BITS}) { finite = 0.0; }
          }
          setOutputAtIndex(index, finite);
        }
      }`,
  };
  const length = [{ type: "int32" as const, data: [size] }];
  return backend.runWebGPUProgram(program, [grad], "float32", length);
}

function glslAllFinite(backend: WebGlRunner, grad: tf.TensorInfo): tf.TensorInfo {
  const size = grad.shape.reduce((a, b) => a * b, 1);
  const threads = Math.min(size, VERDICT_THREADS);
  const program = {
    variableNames: ["G"],
    outputShape: [threads],
    customUniforms: [{ name: "length", type: "int" }],
    userCode: `
      void main() {
        int index = getOutputCoords();
        float finite = 1.0;
        for (int j = index; j < length; j += ${threads}) {
          if ((floatBitsToUint(getG(j)) & ${NOT_FINITE_BITS}) == ${NOT_FINITE_BITS}) { finite = 0.0; }
        }
        setOutput(finite);
      }`,
  };
  return backend.compileAndRun(program, [grad], "float32", [[size]]);
}

/**
 * The element-wise rule both shading languages share, as the js kernel
 * computes it: `g = grad · gradScale`; `c = lerp(m, g, 1 − β1)`; the
 * direction `sign(c)` (cautious: kept where it agrees with `g`, times the
 * factor); `p = p · decay − lr · direction`; `m = lerp(m, g, 1 − β2)`;
 * either result only where the step is `ok`, else the old value. `lerp`
 * branches on its weight as torch's does.
 */
function wgslUpdateProgram(
  backend: WebGpuRunner,
  inputs: tf.TensorInfo[],
  { output, ...constants }: UpdateAttrs,
): tf.TensorInfo {
  const size = inputs[0]!.shape.reduce((a, b) => a * b, 1);
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const program = {
    variableNames: ["P", "M", "G", "S"],
    outputShape: [size],
    shaderKey: `decoupled_lionw_${output}`,
    dispatchLayout: { x: [0] },
    dispatch: [Math.ceil(size / workgroupSize[0]), 1, 1],
    workgroupSize,
    size: true,
    uniforms: UNIFORM_NAMES.map((name) => `${name} : f32,`).join(" "),
    getUserCode: () => wgslUpdate(output),
  };
  const uniforms = UNIFORM_NAMES.map((name) => ({
    type: "float32" as const,
    data: [constants[name]],
  }));
  return backend.runWebGPUProgram(program, inputs, "float32", uniforms);
}

function wgslUpdate(output: UpdateOutput): string {
  const result = output === "param"
    ? `var direction = sign(c);
        if (uniforms.cautious > 0.5) {
          direction = select(0.0, direction * factor, sign(c) * sign(g) > 0.0);
        }
        setOutputAtIndex(index, select(p, p * uniforms.decayMultiplier - uniforms.lr * direction, ok));`
    : `setOutputAtIndex(index, select(m, lionLerp(m, g, uniforms.momentWeight), ok));`;
  // both programs read every input: WebGPU's automatic layout drops the bindings a shader
  // does not use, and tfjs binds them all, which would fail (and write nothing)
  return `
    fn lionLerp(a : f32, b : f32, w : f32) -> f32 {
      if (w < 0.5) { return a + w * (b - a); }
      return b - (b - a) * (1.0 - w);
    }
    fn main(index : i32) {
      if (index < uniforms.size) {
        let p = P[index];
        let m = M[index];
        let g = G[index] * S[1];
        let ok = S[0] > 0.5;
        let factor = S[2];
        let c = lionLerp(m, g, uniforms.directionWeight);
        ${result}
      }
    }`;
}

function glslUpdateProgram(
  backend: WebGlRunner,
  inputs: tf.TensorInfo[],
  { output, ...constants }: UpdateAttrs,
): tf.TensorInfo {
  const program = {
    variableNames: ["P", "M", "G", "S"],
    outputShape: [inputs[0]!.shape.reduce((a, b) => a * b, 1)],
    userCode: glslUpdate(output),
    customUniforms: UNIFORM_NAMES.map((name) => ({ name, type: "float" })),
  };
  const uniforms = UNIFORM_NAMES.map((name) => [constants[name]]);
  return backend.compileAndRun(program, inputs, "float32", uniforms);
}

function glslUpdate(output: UpdateOutput): string {
  const result = output === "param"
    ? `float direction = sign(c);
      if (cautious > 0.5) {
        direction = sign(c) * sign(g) > 0.0 ? direction * getS(2) : 0.0;
      }
      float next = p * decayMultiplier - lr * direction;
      setOutput(ok ? next : p);`
    : `setOutput(ok ? lionLerp(m, g, momentWeight) : m);`;
  return `
    float lionLerp(float a, float b, float w) {
      if (w < 0.5) { return a + w * (b - a); }
      return b - (b - a) * (1.0 - w);
    }
    void main() {
      float p = getPAtOutCoords();
      float m = getMAtOutCoords();
      float g = getGAtOutCoords() * getS(1);
      bool ok = getS(0) > 0.5;
      float c = lionLerp(m, g, directionWeight);
      ${result}
    }`;
}
