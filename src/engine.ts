/**
 * The step engine: what runs a {@linkcode StepPlan}'s kernel calls. The
 * inline engine calls the kernel on the calling thread; the worker pool
 * (workers/) shares the blocks out to Web Workers. The optimizer sees only
 * this interface.
 *
 * @module
 */

import type { GroupConstants, LionKernel } from "./kernel.ts";
import type { StepPlan } from "./step_plan.ts";

/** One step for an engine. */
export interface StepRequest {
  /** The blocks to update. */
  readonly plan: StepPlan;
  /** Float32 constants per group. */
  readonly groups: readonly GroupConstants[];
  /** Scan `Σg²` per block first, and update nothing when any is non-finite. */
  readonly scan: boolean;
  /** Produce the metric partial sums in the update pass. */
  readonly metrics: boolean;
  /** What the host wrote since the last step (engines that keep copies on a device upload it). */
  readonly writes: HostWrites;
}

/** What the host changed behind a device's back since the last step. */
export interface HostWrites {
  /** Parameter values were written (`Parameter.markWritten`). */
  readonly params: boolean;
  /** exp_avg was written (a loaded state dict). */
  readonly state: boolean;
}

/** What an engine did. */
export interface StepResult {
  /** Whether the update ran (false when the scan found a non-finite gradient). */
  readonly applied: boolean;
  /** `Σg²` per slot, when scanned. */
  readonly gradSquares: Float64Array | null;
  /** `PARTIAL_COUNT` sums per slot, when metrics were asked for and the update ran. */
  readonly partials: Float64Array | null;
}

/** Runs the kernels of a step, wherever they run. */
export interface StepEngine {
  /** The kernel's backend name. */
  readonly backend: string;
  /** Number of workers (0: the calling thread). */
  readonly workers: number;
  /** Runs one step. Rejects when a kernel or worker fails. */
  run(request: StepRequest): Promise<StepResult>;
  /**
   * Brings state the engine keeps on a device (exp_avg) back into the
   * store's memory; resolves at once for engines that update in place.
   */
  pullState(): Promise<void>;
  /** Makes the engine usable again after a failed step (workers are respawned). */
  reset(): void;
  /** Releases whatever the engine holds (workers); idempotent. */
  close(): Promise<void>;
}

/**
 * The gradient scan on the calling thread: `Σg²` of each of the plan's
 * segments, by slot, arena by arena.
 *
 * @param kernel The kernel that sums.
 * @param memories The store's memories, by arena.
 * @param plan The step's plan.
 * @returns The sums.
 */
export function scanGradients(
  kernel: LionKernel,
  memories: readonly WebAssembly.Memory[],
  plan: StepPlan,
): Float64Array {
  const sums = new Float64Array(plan.slotCount);
  plan.byArena.forEach((segments, arena) => {
    if (segments.length > 0) kernel.sumSquaredGradients(memories[arena]!, segments, sums);
  });
  return sums;
}

/**
 * Whether any value is NaN or ±Infinity.
 *
 * @param sums Sums of squares.
 * @returns `true` when one is not finite.
 */
export function anyNonFinite(sums: Float64Array): boolean {
  for (const sum of sums) if (!Number.isFinite(sum)) return true;
  return false;
}
