/**
 * The `gpujs` backend on the calling thread: one {@linkcode DeviceShard}
 * holds every segment. Used with `workers: 0` and where there are no
 * Workers; the worker pool runs one shard per worker instead.
 *
 * The gradient scan runs on the host, in float64, before anything is
 * uploaded: WGSL lets shader compilers assume there are no NaNs or
 * infinities, so a scan on the device could not be trusted to find them.
 *
 * @module
 */

import type { Arena } from "../src/arena.ts";
import {
  anyNonFinite,
  scanGradients,
  type StepEngine,
  type StepRequest,
  type StepResult,
} from "../src/engine.ts";
import { type LionKernel, PARTIAL_COUNT } from "../src/kernel.ts";
import type { StepPlan } from "../src/step_plan.ts";
import { type ArenaSegment, DeviceShard } from "./device_shard.ts";
import { openGpuJs, type ResolvedGpuMode } from "./gpujs_runtime.ts";

/**
 * The plan's segments in slot order, each with its arena.
 *
 * @param plan A step plan.
 * @returns Its segments.
 */
export function arenaSegments(plan: StepPlan): ArenaSegment[] {
  return plan.byArena
    .flatMap((segments, arena) => segments.map((segment) => ({ ...segment, arena })))
    .sort((a, b) => a.slot - b.slot);
}

/** Runs the gpujs kernels on the calling thread. */
export class DeviceEngine implements StepEngine {
  readonly backend = "gpujs";
  readonly workers = 0;
  readonly #mode: Promise<ResolvedGpuMode>;
  readonly #scanKernel: LionKernel;
  readonly #memories: readonly WebAssembly.Memory[];
  #shard: Promise<DeviceShard> | undefined;
  #plan: StepPlan | undefined;

  /**
   * @param mode The gpu.js mode (resolved in the background).
   * @param scanKernel The host kernel that scans gradients.
   * @param arenas The store's arenas.
   */
  constructor(mode: Promise<ResolvedGpuMode>, scanKernel: LionKernel, arenas: readonly Arena[]) {
    this.#mode = mode;
    this.#scanKernel = scanKernel;
    this.#memories = arenas.map((arena) => arena.memory);
  }

  async run({ plan, groups, scan, metrics, writes }: StepRequest): Promise<StepResult> {
    const gradSquares = scan ? scanGradients(this.#scanKernel, this.#memories, plan) : null;
    if (gradSquares !== null && anyNonFinite(gradSquares)) {
      return { applied: false, gradSquares, partials: null };
    }
    const shard = await this.#openShard();
    if (plan !== this.#plan) {
      await shard.setSegments(this.#memories, arenaSegments(plan), writes);
      this.#plan = plan;
    }
    const partials = metrics ? new Float64Array(plan.slotCount * PARTIAL_COUNT) : null;
    await shard.step(this.#memories, groups, writes, partials);
    return { applied: true, gradSquares, partials };
  }

  async pullState(): Promise<void> {
    if (this.#shard !== undefined) await (await this.#shard).pull(this.#memories);
  }

  /** After a failure the device copies are suspect: the next step starts from the host's. */
  reset(): void {
    void this.close();
  }

  async close(): Promise<void> {
    const shard = this.#shard;
    this.#shard = undefined;
    this.#plan = undefined;
    if (shard !== undefined) await (await shard.catch(() => undefined))?.close();
  }

  #openShard(): Promise<DeviceShard> {
    this.#shard ??= this.#mode.then(async ({ mode }) =>
      new DeviceShard(await openGpuJs(mode), mode)
    );
    return this.#shard;
  }
}
