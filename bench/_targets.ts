/**
 * The bench's targets, as data: each is a ratio of two rows' medians, a
 * row's share of the C roof, or (the GPU's) a value computed from a row,
 * with its bound. `deno task bench` evaluates them on its results and says
 * which are met; a target whose rows did not run is "not measured".
 *
 * @module
 */

/** One row's numbers at one size, as the bench measured them. */
export interface MeasuredRow {
  readonly id: string;
  readonly medianMs: number | null;
  readonly gElementsPerS: number | null;
  readonly percentOfRoof: number | null;
}

/** The rows of one size. */
export interface MeasuredSize {
  readonly size: string;
  readonly rows: readonly MeasuredRow[];
}

/** How a target's value compares with its bound. */
export type TargetOp = "<=" | "<" | ">=";

/** A row at a size; `{main}` in the id stands for the main wasm row (`lionw-wasm-<workers>w`). */
type RowAt = readonly [size: string, id: string];

/** What the bench knows beside its rows. */
export interface TargetContext {
  /** The largest worker count of the run (the main rows run on it). */
  readonly maxWorkers: number;
  /** Whether the WebGPU adapter is a software one. */
  readonly softwareAdapter: boolean;
  /** The GPU's memory bandwidth in GB/s, where given. */
  readonly peakGbps: number | null;
  /** Bytes the gpujs kernels move per element. */
  readonly kernelBytesPerElement: number;
}

/** One target. */
export type Target =
  & { readonly name: string; readonly op: TargetOp; readonly bound: number }
  & (
    | { readonly ratio: readonly [RowAt, RowAt] }
    | { readonly roof: RowAt }
    | {
      readonly value: (
        find: (at: RowAt) => MeasuredRow | undefined,
        c: TargetContext,
      ) => number | null;
    }
  );

/** The targets, in the order the bench reports them. */
export const TARGETS: readonly Target[] = [
  {
    name: "gpujs webgpu / wasm ≤ 1 (16M, error; a real GPU only)",
    ratio: [["16M", "lionw-gpujs-webgpu-{workers}w-error"], ["16M", "{main}-error"]],
    op: "<=",
    bound: 1,
  },
  {
    name: "gpujs webgpu kernels ≥ 50 % of GPU memory bandwidth (16M; needs --gpu-peak-gbps)",
    value: (find, c) => {
      const kernels = find(["16M", "gpujs-webgpu-kernels"])?.gElementsPerS;
      return kernels && c.peakGbps ? (100 * c.kernelBytesPerElement * kernels) / c.peakGbps : null;
    },
    op: ">=",
    bound: 50,
  },
  {
    name: "wasm ×2 ignore ≥ 85 % of roof (16M)",
    roof: ["16M", "{main}-ignore"],
    op: ">=",
    bound: 85,
  },
  {
    name: "wasm ×2 error ≥ 80 % of roof (16M)",
    roof: ["16M", "{main}-error"],
    op: ">=",
    bound: 80,
  },
  {
    name: "metrics on / off ≤ 1.3 (16M, error)",
    ratio: [["16M", "{main}-error-metrics"], ["16M", "{main}-error"]],
    op: "<=",
    bound: 1.3,
  },
  {
    name: "metrics on / off ≤ 1.5 (1000x1K, error)",
    ratio: [["1000x1K", "{main}-error-metrics"], ["1000x1K", "{main}-error"]],
    op: "<=",
    bound: 1.5,
  },
  {
    name: "write+step error / ignore ≤ 1.08 (16M: the verdict taken as the setter copies)",
    ratio: [["16M", "{main}-write-error"], ["16M", "{main}-write-ignore"]],
    op: "<=",
    bound: 1.08,
  },
  {
    name: "bfloat16 / float32 moments ≤ 0.9 (16M, ignore: 16 bytes an element against 20)",
    ratio: [["16M", "{main}-ignore-bf16"], ["16M", "{main}-ignore"]],
    op: "<=",
    bound: 0.9,
  },
  {
    name: "8-bit / bfloat16 moments ≤ 1 (16M, error)",
    ratio: [["16M", "{main}-error-uint8"], ["16M", "{main}-error-bf16"]],
    op: "<=",
    bound: 1,
  },
  {
    name: "8-bit / float32 moments < 1 (16M, error)",
    ratio: [["16M", "{main}-error-uint8"], ["16M", "{main}-error"]],
    op: "<",
    bound: 1,
  },
  {
    name: "Node 20 / Deno ≤ 2 (16M, error; Node's build without relaxed SIMD)",
    ratio: [["16M", "node-error"], ["16M", "{main}-error"]],
    op: "<=",
    bound: 2,
  },
  {
    name: "clipping on / off ≤ 1.05 (16M, error: no extra pass over memory)",
    ratio: [["16M", "{main}-error-clip"], ["16M", "{main}-error"]],
    op: "<=",
    bound: 1.05,
  },
  {
    name: "speedup over PyTorch ≥ 5 (16M, error)",
    ratio: [["16M", "torch"], ["16M", "{main}-error"]],
    op: ">=",
    bound: 5,
  },
  {
    name: "speedup over tfjs-wasm ≥ 20 (16M, error)",
    ratio: [["16M", "tfjs"], ["16M", "{main}-error"]],
    op: ">=",
    bound: 20,
  },
  {
    name: "2 workers / 1 worker ≥ 1.8 (16M, ignore)",
    ratio: [["16M", "lionw-wasm-1w-ignore"], ["16M", "lionw-wasm-2w-ignore"]],
    op: ">=",
    bound: 1.8,
  },
  {
    name: "1,000 tensors / one tensor ≤ 1.5 (1M, error)",
    ratio: [["1000x1K", "{main}-error"], ["1M", "{main}-error"]],
    op: "<=",
    bound: 1.5,
  },
];

/** A target as evaluated: its value (null: not measured) and whether it is met. */
export interface TargetResult {
  readonly name: string;
  readonly value: number | null;
  readonly op: TargetOp;
  readonly bound: number;
  readonly met: boolean | null;
}

/**
 * Evaluates every target on the bench's results.
 *
 * @param results The sizes measured.
 * @param context What the bench knows beside its rows.
 * @returns Each target's value and verdict.
 */
export function evaluateTargets(
  results: readonly MeasuredSize[],
  context: TargetContext,
): TargetResult[] {
  const find = ([size, id]: RowAt) => {
    const resolved = id.replace("{main}", `lionw-wasm-${context.maxWorkers}w`)
      .replace("{workers}", String(context.maxWorkers));
    return results.find((r) => r.size === size)?.rows.find((row) => row.id === resolved);
  };
  return TARGETS.map((target) => {
    let value: number | null;
    if ("ratio" in target) {
      const [a, b] = target.ratio.map(find);
      value = a?.medianMs && b?.medianMs ? a.medianMs / b.medianMs : null;
    } else if ("roof" in target) {
      value = find(target.roof)?.percentOfRoof ?? null;
    } else {
      value = target.value(find, context);
    }
    const met = value === null
      ? null
      : target.op === ">="
      ? value >= target.bound
      : target.op === "<"
      ? value < target.bound
      : value <= target.bound;
    const name = target.name.startsWith("gpujs webgpu / wasm") && context.softwareAdapter
      ? target.name.replace("a real GPU only", "a real GPU only: this one is software")
      : target.name;
    return { name, value, op: target.op, bound: target.bound, met };
  });
}
