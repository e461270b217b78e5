/**
 * The step engine: what runs a {@linkcode StepPlan}'s kernel calls. The
 * inline engine calls the kernel on the calling thread; the worker pool
 * (workers/) shares the segments out to Web Workers. The optimizer sees only
 * this interface.
 *
 * @module
 */

import type { GroupConstants } from "./kernel.ts";
import type { StepPlan } from "./step_plan.ts";

/** Runs the kernels of a step, wherever they run. */
export interface StepEngine {
  /** The kernel's backend name. */
  readonly backend: string;
  /** Number of workers (0: the calling thread). */
  readonly workers: number;
  /**
   * Scans the gradients of every segment.
   *
   * @returns `Σ g²` per slot (float64); non-finite where a gradient is.
   */
  sumSquaredGradients(plan: StepPlan): Promise<Float64Array>;
  /**
   * Applies the update to every segment.
   *
   * @returns The partial sums per slot when `metrics`, else `null`.
   */
  update(
    plan: StepPlan,
    groups: readonly GroupConstants[],
    metrics: boolean,
  ): Promise<Float64Array | null>;
  /** Releases whatever the engine holds (workers); idempotent. */
  close(): Promise<void>;
}
