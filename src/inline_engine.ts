/**
 * The inline engine: the kernel runs on the calling thread, arena by arena.
 * It is what runs where there are no Workers (Deno Deploy, a page without
 * cross-origin isolation), and with `workers: 0`.
 *
 * @module
 */

import type { Arena } from "./arena.ts";
import type { StepEngine } from "./engine.ts";
import { type GroupConstants, type LionKernel, PARTIAL_COUNT } from "./kernel.ts";
import type { StepPlan } from "./step_plan.ts";

/** Runs `kernel` on the calling thread. */
export class InlineEngine implements StepEngine {
  readonly workers = 0;
  readonly #kernel: LionKernel;
  readonly #arenas: readonly Arena[];

  /**
   * @param kernel The kernel to call.
   * @param arenas The store's arenas.
   */
  constructor(kernel: LionKernel, arenas: readonly Arena[]) {
    this.#kernel = kernel;
    this.#arenas = arenas;
  }

  get backend(): string {
    return this.#kernel.name;
  }

  sumSquaredGradients(plan: StepPlan): Promise<Float64Array> {
    const out = new Float64Array(plan.slotCount);
    plan.byArena.forEach((segments, arena) => {
      if (segments.length > 0) {
        this.#kernel.sumSquaredGradients(this.#arenas[arena]!.memory, segments, out);
      }
    });
    return Promise.resolve(out);
  }

  update(
    plan: StepPlan,
    groups: readonly GroupConstants[],
    metrics: boolean,
  ): Promise<Float64Array | null> {
    const partials = metrics ? new Float64Array(plan.slotCount * PARTIAL_COUNT) : null;
    plan.byArena.forEach((segments, arena) => {
      if (segments.length > 0) {
        this.#kernel.update(this.#arenas[arena]!.memory, segments, groups, partials);
      }
    });
    return Promise.resolve(partials);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
