/**
 * The inline engine: the kernel runs on the calling thread, arena by arena.
 * It is what runs where there are no Workers (Deno Deploy, Node, a page
 * without cross-origin isolation), and with `workers: 0`.
 *
 * @module
 */

import type { Arena } from "./arena.ts";
import { anyNonFinite, type StepEngine, type StepRequest, type StepResult } from "./engine.ts";
import { type LionKernel, PARTIAL_COUNT } from "./kernel.ts";

/** Runs `kernel` on the calling thread. */
export class InlineEngine implements StepEngine {
  readonly workers = 0;
  readonly gpuMode: undefined = undefined;
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

  run({ plan, groups, scan, metrics }: StepRequest): Promise<StepResult> {
    let gradSquares: Float64Array | null = null;
    if (scan) {
      const sums = new Float64Array(plan.slotCount);
      plan.byArena.forEach((segments, arena) => {
        if (segments.length > 0) {
          this.#kernel.sumSquaredGradients(this.#arenas[arena]!.memory, segments, sums);
        }
      });
      if (anyNonFinite(sums)) {
        return Promise.resolve({ applied: false, gradSquares: sums, partials: null });
      }
      gradSquares = sums;
    }
    const partials = metrics ? new Float64Array(plan.slotCount * PARTIAL_COUNT) : null;
    plan.byArena.forEach((segments, arena) => {
      if (segments.length > 0) {
        this.#kernel.update(this.#arenas[arena]!.memory, segments, groups, partials);
      }
    });
    return Promise.resolve({ applied: true, gradSquares, partials });
  }

  pullState(): Promise<void> {
    return Promise.resolve();
  }

  reset(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}
