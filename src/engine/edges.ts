/**
 * The engine's edges, registered rather than imported: the worker pool
 * (`workers/`) and the gpu.js runtime with its device runner (`gpu/`). The
 * core stays on Web APIs and never imports them; the entry points compose
 * them (`mod.ts` imports `workers/register.ts` and `gpu/register.ts`,
 * `tfjs/mod.ts` the first; the shard worker opens its own device runner).
 * Without a registered edge, the engine runs inline, and the `gpujs`
 * backend is refused, saying what to import.
 *
 * @module
 */

import type {
  BackendName,
  GpuAdapterReport,
  GpuModeOption,
  ResolvedGpuMode,
  StateResidence,
} from "./backends.ts";
import type { RunnerSpec, StepEngine } from "./engine.ts";
import type { DeviceRunnerOpener } from "./runner_spec.ts";
import type { ShardError } from "./shard_error.ts";
import type { Arena } from "../store/arena.ts";

/** Options of the worker pool (`workers/worker_pool.ts`). */
export interface WorkerPoolOptions {
  /** Number of workers, >= 1. */
  readonly workers: number;
  /** The backend the workers run. */
  readonly backend: BackendName;
  /** Where the workers' runners keep exp_avg between steps. */
  readonly stateLives: StateResidence;
  /**
   * What each worker's runner is made from: known at once (the CPU
   * backends: workers spawn in the constructor, so a synchronous first step
   * can wait for them), or once the gpu.js mode is known.
   */
  readonly runner: RunnerSpec | Promise<RunnerSpec>;
  /** The store's arenas (shared memories). */
  readonly arenas: readonly Arena[];
  /** Parameter groups (fixed for the optimizer's life). */
  readonly groups: number;
  /** The most blocks a step can have (all parameters active). */
  readonly maxBlocks: number;
  /** The shard worker's module (tests swap in one that fails on purpose). */
  readonly workerUrl?: URL;
}

/** A worker pool: the engine, and why its workers could not be spawned at all, if so. */
export interface WorkerPoolEngine extends StepEngine {
  /** Why the workers could not be spawned at all (`new Worker` threw), if so. */
  readonly spawnError: ShardError | undefined;
}

/** What the engine needs of `workers/`. */
export interface WorkerEdge {
  /** The library's own shard worker module. */
  readonly workerUrl: URL;
  /** Whether this runtime can start a worker thread. */
  threadsAvailable(): boolean;
  /** Whether this process may not read the worker module at `url` (Deno without `--allow-read`). */
  moduleUnreadable(url: URL): boolean;
  /** Starts a pool. */
  createPool(options: WorkerPoolOptions): WorkerPoolEngine;
}

/** What the engine needs of `gpu/`. */
export interface GpuEdge {
  /** Resolves a `gpuMode` option (probing the WebGPU adapter for `"auto"`). */
  resolveGpuMode(requested: GpuModeOption): Promise<ResolvedGpuMode>;
  /** What the WebGPU probe found (probed once). */
  adapterReport(): Promise<GpuAdapterReport>;
  /** Opens a runner that keeps a shard's state on a gpu.js device. */
  readonly openDeviceRunner: DeviceRunnerOpener;
}

const edges: { workers?: WorkerEdge; gpu?: GpuEdge } = {};

/**
 * Registers an edge (the entry points do, at import; again is a no-op).
 *
 * @param edge The worker pool's or the gpu.js runtime's.
 */
export function registerEngineEdge(edge: { workers: WorkerEdge } | { gpu: GpuEdge }): void {
  Object.assign(edges, edge);
}

/**
 * The worker pool's edge, where registered.
 *
 * @returns It, or `undefined`: the engine then runs inline.
 */
export function workerEdge(): WorkerEdge | undefined {
  return edges.workers;
}

/**
 * The gpu.js edge.
 *
 * @param action What needs it, for the message.
 * @returns It.
 * @throws {Error} Where it was not registered.
 */
export function gpuEdge(action: string): GpuEdge {
  if (edges.gpu === undefined) {
    throw new Error(
      `Cannot ${action} as the gpu.js edge is not registered: import "@decoupled/lionw" (or its gpu/register.ts) first`,
    );
  }
  return edges.gpu;
}
