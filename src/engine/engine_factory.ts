/**
 * Engine construction and backend policy: which kernel, how many workers,
 * which gpu.js mode, and why. This is the one core module that imports
 * workers/ (and gpu/'s mode resolution; runner_spec.ts loads gpu/'s device
 * runner); the optimizer asks it for an engine and sees only the
 * {@linkcode StepEngine} contract.
 *
 * @module
 */

import type { StoreMemory } from "../store/slots.ts";
import { testSeams } from "../_internal/testing.ts";
import {
  type BackendChoice,
  type BackendName,
  BACKENDS,
  type GpuModeOption,
  type ResolvedGpuMode,
} from "./backends.ts";
import type { StepEngine } from "./engine.ts";
import type { LionKernel } from "../kernels/kernel.ts";
import { InlineEngine } from "./inline_engine.ts";
import type { Logger } from "../_internal/logger.ts";
import { inPlaceRunner } from "./shard_runner.ts";
import { hostKernel, openShardRunner, type RunnerSpec } from "./runner_spec.ts";
import { wasmKernelAvailable, wasmSimdSupport } from "../kernels/wasm_kernel.ts";
import { availableCores } from "../_internal/node.ts";
import { gpuEdge, workerEdge, type WorkerPoolEngine } from "./edges.ts";
import { StateCopies } from "./state_copies.ts";
import { gradientWriter } from "../step/written_scan.ts";
import { gateNeedsScan, gateNeedsSquares, type StepGate } from "../step/step_decision.ts";
import type { ParameterSlots } from "../store/slots.ts";

/** Elements per worker below which `workers: "auto"` adds no worker. */
const ELEMENTS_PER_WORKER = 2 ** 18;

/** The engine choices of the optimizer's options, checked. */
export interface EngineChoice {
  /** The backend, or `"auto"`. */
  readonly backend: BackendName | "auto";
  /** The worker count, or `"auto"`. */
  readonly workers: number | "auto";
  /** The gpu.js mode of a backend that runs gpu.js. */
  readonly gpuMode: GpuModeOption;
  /** The wasm kernel's fma mode. */
  readonly fma: "auto" | "exact";
  /** The shard worker's module, where the user names one. */
  readonly workerUrl: URL | undefined;
}

/** What an engine is built for. */
export interface EngineSpec {
  /** The optimizer's checked engine choices. */
  readonly options: EngineChoice;
  /** The store's memory. */
  readonly memory: StoreMemory;
  /** Elements of the optimizer's parameters. */
  readonly elements: number;
  /** The most blocks a step can have (every parameter with a gradient). */
  readonly maxBlocks: number;
  /** Number of parameter groups. */
  readonly groups: number;
  /** Where warnings go. */
  readonly logger: Logger | null;
}

/** An engine and the story of its choice. */
export interface StartedEngine {
  /** The engine. */
  readonly engine: StepEngine;
  /** Settles once the backend is settled (the gpu.js mode probed); rejects when it cannot run. */
  readonly ready: Promise<void>;
  /** The backend and why, with the gpu.js mode once known. */
  choice(): BackendChoice;
  /**
   * The CPU kernel of its backend, for scans on the host outside the engine
   * (the grad setter's as it copies, a data-parallel average's), made when
   * first asked for.
   */
  readonly hostKernel: LionKernel;
  /** Which copy of exp_avg is the newest: the store's, or the one the engine keeps on a device. */
  readonly copies: StateCopies;
  /**
   * The grad setter's writer, which scans each gradient as it copies it so
   * that the step need not (the gate's scan, made by the engine's own
   * kernel), or `undefined` where the step must scan itself: a gate that
   * needs no scan, or state that lives on a device.
   */
  gradientWriter(gate: StepGate): GradientWriter | undefined;
}

/** What the grad setter calls to copy a gradient into its slot. */
export type GradientWriter = (slots: ParameterSlots, values: ArrayLike<number>) => void;

/**
 * Builds the engine the options ask for: the backend (`"auto"`: `wasm`
 * where WebAssembly SIMD runs, else `js`), the worker count (`"auto"`: one per
 * 2^18 elements, at most one per core, none without `Worker` or shared
 * memory) and, for `gpujs`, the gpu.js mode (resolved in the background).
 *
 * @param spec The options and the store.
 * @returns The engine.
 * @throws {RangeError} When `wasm` is asked for where WebAssembly SIMD does not run.
 */
export function startEngine(spec: EngineSpec): StartedEngine {
  const { options, memory } = spec;
  const backend = resolveBackend(options.backend);
  const { workers, inline } = resolveWorkers(spec);
  const capabilities = BACKENDS[backend];
  // a runner on a gpu.js device settles its mode (the adapter probed) in the background
  const mode = capabilities.runner === "gpujs-device"
    ? gpuEdge("run the gpujs backend").resolveGpuMode(options.gpuMode)
    : undefined;
  let resolved: ResolvedGpuMode | undefined;
  const ready = mode === undefined ? Promise.resolve() : mode.then((m) => void (resolved = m));
  ready.catch(() => {}); // reported by the first step
  // what every runner is made from: known now for the CPU kernels (so that
  // steps can be synchronous), once the gpu.js mode is known for gpujs
  const cpuRunner: RunnerSpec | undefined = mode === undefined
    ? { backend, fma: options.fma, gpuMode: undefined }
    : undefined;
  const runner: RunnerSpec | Promise<RunnerSpec> = cpuRunner ??
    mode!.then((m) => ({ backend, fma: options.fma, gpuMode: m.mode }));
  if (runner instanceof Promise) runner.catch(() => {}); // the step awaits `ready` first and reports it
  const stateLives = capabilities.state;
  const memories = memory.arenas.map((arena) => arena.memory);
  const inlineEngine = () =>
    new InlineEngine({
      backend,
      stateLives,
      openRunner: async () =>
        openShardRunner(await runner, memories, (...args) =>
          gpuEdge("open a gpu.js device runner").openDeviceRunner(...args)),
      openRunnerSync: cpuRunner === undefined
        ? undefined
        : () =>
          inPlaceRunner(hostKernel(backend, options.fma), memories),
    });
  // workers > 0 only where the worker pool's edge is registered (resolveWorkers)
  const pool: WorkerPoolEngine | undefined = workers === 0 ? undefined : workerEdge()!.createPool({
    workers,
    backend,
    stateLives,
    runner,
    arenas: memory.arenas,
    groups: spec.groups,
    maxBlocks: spec.maxBlocks,
    workerUrl: workerModule(options.workerUrl),
  });
  let engine: StepEngine = pool ?? inlineEngine();
  let fallback = inline;
  const refused = pool?.spawnError;
  if (refused !== undefined && options.workers === "auto") {
    // `new Worker` refused at once (a page's policy, say): "auto" runs inline instead
    void engine.close();
    engine = inlineEngine();
    fallback = `the shard workers could not start (${refused.message})`;
  }
  const asked = options.backend === "auto" ? autoChoice(backend) : undefined;
  let kernel: LionKernel | undefined;
  return {
    engine,
    ready,
    choice: () => withInlineReason(describeChoice(backend, asked, resolved), fallback),
    get hostKernel(): LionKernel {
      return kernel ??= hostKernel(backend, options.fma);
    },
    copies: new StateCopies(`the ${backend} backend`, stateLives),
    gradientWriter(gate: StepGate): GradientWriter | undefined {
      if (stateLives !== "host" || !gateNeedsScan(gate)) return undefined;
      return gradientWriter(this.hostKernel, gateNeedsSquares(gate));
    },
  };
}

/** The shard worker's module: the tests' faulty one, the user's (bundles), or the library's own. */
function workerModule(asked: URL | undefined): URL {
  return testSeams.shardWorkerUrl ?? asked ?? workerEdge()!.workerUrl;
}

/** `backend`: `"auto"` takes `wasm` where WebAssembly SIMD runs, else `js`. */
function resolveBackend(backend: BackendName | "auto"): BackendName {
  const wasm = wasmKernelAvailable();
  if (backend === "wasm" && !wasm) {
    throw new RangeError(
      `Cannot create optimizer as backend "wasm" needs WebAssembly SIMD, which this runtime lacks: use "js" or "auto"`,
    );
  }
  if (backend !== "auto") return backend;
  return wasm ? "wasm" : "js";
}

/** The worker count, and why `"auto"` runs on the calling thread where it would take workers. */
interface WorkerChoice {
  readonly workers: number;
  readonly inline?: string;
}

/**
 * `workers`, with `"auto"` resolved: the count for the model's size, or 0
 * where workers cannot start here (no `Worker`, memory that is not shared,
 * a worker module this process may not read), with the reason. An explicit
 * count runs inline with a warning where there are no workers, and fails at
 * the first step, saying why, where they cannot start.
 */
function resolveWorkers({ options, memory, elements, logger }: EngineSpec): WorkerChoice {
  const edge = workerEdge();
  const missing = edge === undefined
    ? "no worker pool is registered (import the library's entry point)"
    : !edge.threadsAvailable()
    ? "this runtime has no Worker"
    : memory.shared
    ? undefined
    : "the store's memory is not shared";
  if (options.workers === "auto") {
    const wanted = autoWorkers(elements);
    if (wanted === 0) return { workers: 0 };
    if (missing !== undefined) return { workers: 0, inline: missing };
    const url = workerModule(options.workerUrl);
    if (edge!.moduleUnreadable(url)) {
      return {
        workers: 0,
        inline:
          `the shard worker module may not be read (${url.pathname}; run with --allow-read for ${wanted} workers)`,
      };
    }
    return { workers: wanted };
  }
  if (options.workers > 0 && missing !== undefined) {
    logger?.warn(`Running inline instead of on ${options.workers} workers as ${missing}`);
    return { workers: 0 };
  }
  return { workers: options.workers };
}

/** `workers: "auto"`: one worker per 2^18 elements, at most one per core. */
function autoWorkers(elements: number): number {
  const cores = availableCores();
  return Math.min(cores, Math.floor(elements / ELEMENTS_PER_WORKER));
}

/**
 * What `backend: "auto"` took, and why. It takes only backends whose row
 * allows it (they update the store in place, so code behaves the same on
 * every machine): `wasm`, else `js`. A backend that keeps state on a device
 * has rules of its own (pull state, announce host writes): it is taken only
 * when asked for by name, and `recommendBackend()` says whether it would be
 * faster here.
 */
function autoChoice(backend: BackendName): BackendChoice {
  return backend === "wasm"
    ? {
      backend,
      reason: `auto: WebAssembly SIMD runs here (the wasm kernel, ${
        wasmSimdSupport() === "relaxed" ? "with relaxed SIMD" : "without relaxed SIMD"
      })`,
    }
    : {
      backend,
      reason:
        "auto: this runtime lacks WebAssembly SIMD, which the wasm kernel needs, so the scalar js kernel",
    };
}

/** The choice, with why `workers: "auto"` runs on the calling thread where it would take workers. */
function withInlineReason(choice: BackendChoice, inline: string | undefined): BackendChoice {
  return inline === undefined
    ? choice
    : { ...choice, reason: `${choice.reason}; on the calling thread as ${inline}` };
}

/** The choice as reported: what `"auto"` took or "asked for", with the gpu.js mode once resolved. */
function describeChoice(
  backend: BackendName,
  auto: BackendChoice | undefined,
  resolved: ResolvedGpuMode | undefined,
): BackendChoice {
  const choice = auto ?? { backend, reason: "asked for" };
  if (resolved === undefined) return choice;
  return {
    ...choice,
    gpuMode: resolved.mode,
    reason: auto === undefined
      ? `asked for; gpu.js mode ${resolved.mode}: ${resolved.reason}`
      : choice.reason,
    ...(resolved.adapter.available ? { adapter: resolved.adapter.description } : {}),
  };
}
