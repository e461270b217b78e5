/**
 * The bench's rows: each implementation measured, as data the run loop
 * opens per size and times round by round. This library's engines are
 * here; the peers (the C roof, Node, PyTorch, tfjs) are in `_peer_rows.ts`.
 *
 * @module
 */

import { DecoupledLionW, type NonFinitePolicy, ParameterStore } from "../mod.ts";
import type { MomentumDtype } from "../src/store/moment_dtype.ts";
import type { GpuAdapterReport, GpuJsMode } from "../src/engine/backends.ts";
import { gpujsKernelRow } from "./gpujs_kernel_row.ts";
import { timeSteps, warmUp } from "./_timing.ts";

/** A size: one tensor of `size` elements, or `count` tensors of `size`. */
export interface Size {
  label: string;
  count: number;
  size: number;
}

/** One implementation's set-up for one size, kept for all rounds. */
export interface Session {
  /** Runs warm-up steps, then `steps` timed steps; returns each one's ms. */
  run(steps: number): Promise<number[]>;
  close(): Promise<void>;
}

/** One implementation measured, or the reason it cannot be here. */
export interface Row {
  id: string;
  label: string;
  /** Why the row cannot run on this machine at all (a peer that is not installed). */
  unavailable?: string;
  open(size: Size): Promise<Session>;
}

/** How the rows run: the run's flags. */
export interface RowSettings {
  /** A smoke test: fewer warm-up steps, a shorter budget. */
  readonly quick: boolean;
  /** Warm-up time per row and round, at least. */
  readonly warmUpMs: number;
  /** The time after which a slow row stops. */
  readonly budgetMs: number;
  /** The worker counts of the plain rows. */
  readonly workerCounts: readonly number[];
  /** The largest: every other row runs on it. */
  readonly maxWorkers: number;
  /** Leave out the scalar js kernel's row. */
  readonly noJs: boolean;
  /** The gpu.js modes to measure. */
  readonly gpujsModes: readonly GpuJsMode[];
  /** The WebGPU adapter, for the gpu.js webgpu rows. */
  readonly adapter: GpuAdapterReport;
}

/**
 * This library's rows: inline and on each worker count, the policies,
 * metrics, clipping, gradients through the setter, bfloat16 and 8-bit moments, the
 * js kernel and the gpu.js modes.
 *
 * @param settings The run's flags.
 * @returns The rows, in the order the tables list them.
 */
export function lionwRows(settings: RowSettings): Row[] {
  const { maxWorkers } = settings;
  const rows: Row[] = [];
  for (const workers of [0, ...settings.workerCounts]) {
    rows.push(lionRow(settings, "wasm", workers, "ignore", false));
    if (workers > 0) rows.push(lionRow(settings, "wasm", workers, "error", false));
  }
  rows.push(lionRow(settings, "wasm", maxWorkers, "error", true));
  // clipping to a norm far below the gradients' (every step clipped): the scan
  // the "error" policy runs anyway gives the norm, the update scales g in its pass
  rows.push(lionRow(settings, "wasm", maxWorkers, "error", false, "webasm", 1e-3));
  rows.push(lionRow(settings, "wasm", maxWorkers, "ignore", true));
  // gradients through the setter, which takes the verdict as it copies: the step skips its scan
  rows.push(writeStepRow(settings, maxWorkers, "ignore"));
  rows.push(writeStepRow(settings, maxWorkers, "error"));
  // exp_avg in bfloat16: 16 instead of 20 bytes of traffic per element
  rows.push(lionRow(settings, "wasm", maxWorkers, "ignore", false, "webasm", Infinity, "bfloat16"));
  rows.push(lionRow(settings, "wasm", maxWorkers, "error", false, "webasm", Infinity, "bfloat16"));
  // exp_avg in 8 bits (1.016 bytes an element; "error" or "skip" keep NaN from the quantizer)
  rows.push(lionRow(settings, "wasm", maxWorkers, "error", false, "webasm", Infinity, "uint8"));
  if (!settings.noJs) rows.push(lionRow(settings, "js", maxWorkers, "ignore", false));
  const { adapter } = settings;
  for (const mode of settings.gpujsModes) {
    if (mode === "webgpu" && !adapter.available) {
      const reason = `no WebGPU adapter: ${adapter.description}`;
      rows.push(
        unavailableRow(`lionw-gpujs-webgpu-${maxWorkers}w-error`, "lionw gpujs webgpu", reason),
      );
      rows.push(unavailableRow("gpujs-webgpu-kernels", "gpujs webgpu kernels only", reason));
      continue;
    }
    rows.push(lionRow(settings, "gpujs", maxWorkers, "error", false, mode));
    if (mode === "webgpu") rows.push(gpujsKernelRow(settings.budgetMs));
  }
  return rows;
}

/** The store of the current size, shared by every lionw row (one optimizer at a time). */
let shared: { size: Size; store: ParameterStore } | undefined;

function storeFor(size: Size): ParameterStore {
  if (shared?.size !== size) {
    shared = undefined; // let the previous size's memory go first
    const store = new ParameterStore();
    for (let i = 0; i < size.count; i++) {
      const g = store.add(`p${i}`, [size.size]).ensureGrad();
      for (let j = 0; j < g.length; j++) g[j] = Math.sin(i * 7919 + j);
    }
    shared = { size, store };
  }
  return shared.store;
}

/** How a row's id and label name its moment type. */
const MOMENT_SUFFIXES: Record<MomentumDtype, { id: string; label: string }> = {
  float32: { id: "", label: "" },
  bfloat16: { id: "-bf16", label: " bf16 m" },
  uint8: { id: "-uint8", label: " uint8 m" },
};

function lionRow(
  settings: RowSettings,
  backend: "wasm" | "js" | "gpujs",
  workers: number,
  nonFinite: NonFinitePolicy,
  metrics: boolean,
  gpuMode: GpuJsMode = "webasm",
  maxGradNorm = Infinity,
  momentumDtype: MomentumDtype = "float32",
): Row {
  const where = workers === 0 ? "inline" : `×${workers}`;
  const name = backend === "gpujs" ? `gpujs-${gpuMode}` : backend;
  const clip = maxGradNorm !== Infinity;
  const moments = MOMENT_SUFFIXES[momentumDtype];
  return {
    id: `lionw-${name}-${workers}w-${nonFinite}${metrics ? "-metrics" : ""}${
      clip ? "-clip" : ""
    }${moments.id}`,
    label: `lionw ${name.replace("-", " ")} ${where} ${nonFinite}${metrics ? " +metrics" : ""}${
      clip ? " +clip" : ""
    }${moments.label}`,
    open(size) {
      const store = storeFor(size);
      return Promise.resolve({
        async run(steps) {
          // one optimizer at a time over the shared store: built per round
          const opt = new DecoupledLionW(store.parameters, {
            backend,
            gpuMode,
            workers,
            nonFinite,
            maxGradNorm,
            momentumDtype,
            lr: 1e-4,
            weightDecay: 1e-4,
            logger: null,
          });
          try {
            // gpujs: the first step compiles the kernels and uploads the shard
            await warmUp(
              () => opt.step({ metrics }),
              backend === "gpujs" ? 1 : settings.quick ? 5 : 20,
              settings.warmUpMs,
            );
            return await timeSteps(steps, () => opt.step({ metrics }), settings.budgetMs);
          } finally {
            await opt.close();
          }
        },
        close: () => Promise.resolve(),
      });
    },
  };
}

/**
 * A store of the current size whose gradients come through the `grad`
 * setter, as training that hands the library its gradients does (the
 * shared store's were written in place, through `ensureGrad()`), and the
 * gradients to write, one array per tensor.
 */
let written: { size: Size; store: ParameterStore; grads: Float32Array[] } | undefined;

function writtenStoreFor(size: Size): { store: ParameterStore; grads: Float32Array[] } {
  if (written?.size !== size) {
    written = undefined;
    const store = new ParameterStore();
    const grads = Array.from({ length: size.count }, (_, i) => {
      store.add(`p${i}`, [size.size]);
      return Float32Array.from({ length: size.size }, (_, j) => Math.sin(i * 7919 + j));
    });
    written = { size, store, grads };
  }
  return written;
}

/** Write every gradient with the `grad` setter, then step: the write and the step together. */
function writeStepRow(settings: RowSettings, workers: number, nonFinite: NonFinitePolicy): Row {
  return {
    id: `lionw-wasm-${workers}w-write-${nonFinite}`,
    label: `lionw wasm ×${workers} write+step ${nonFinite}`,
    open(size) {
      const { store, grads } = writtenStoreFor(size);
      const params = store.parameters;
      const step = (opt: DecoupledLionW) => {
        params.forEach((p, i) => (p.grad = grads[i]!));
        return opt.step();
      };
      return Promise.resolve({
        async run(steps) {
          const opt = new DecoupledLionW(params, {
            workers,
            nonFinite,
            lr: 1e-4,
            weightDecay: 1e-4,
            logger: null,
          });
          try {
            await warmUp(() => step(opt), settings.quick ? 5 : 20, settings.warmUpMs);
            return await timeSteps(steps, () => step(opt), settings.budgetMs);
          } finally {
            await opt.close();
          }
        },
        close: () => Promise.resolve(),
      });
    },
  };
}

/**
 * A row that cannot run here, with the reason.
 *
 * @param id Its id.
 * @param label Its label.
 * @param reason Why.
 * @returns The row.
 */
export function unavailableRow(id: string, label: string, reason: string): Row {
  return { id, label, unavailable: reason, open: () => Promise.reject(new Error(reason)) };
}
