/**
 * The inline engine: the kernel runs on the calling thread, arena by arena.
 * It is what runs where there are no Workers (Deno Deploy, Node, a page
 * without cross-origin isolation), and with `workers: 0`.
 *
 * @module
 */

import type { Arena } from "./arena.ts";
import {
  anyNonFinite,
  scanGradients,
  type StepEngine,
  type StepRequest,
  type StepResult,
} from "./engine.ts";
import { type LionKernel, PARTIAL_COUNT } from "./kernel.ts";

/** Runs `kernel` on the calling thread. */
export class InlineEngine implements StepEngine {
  readonly workers = 0;
  readonly #kernel: LionKernel;
  readonly #memories: readonly WebAssembly.Memory[];

  /**
   * @param kernel The kernel to call.
   * @param arenas The store's arenas.
   */
  constructor(kernel: LionKernel, arenas: readonly Arena[]) {
    this.#kernel = kernel;
    this.#memories = arenas.map((arena) => arena.memory);
  }

  get backend(): string {
    return this.#kernel.name;
  }

  run({ plan, groups, scan, metrics }: StepRequest): Promise<StepResult> {
    const gradSquares = scan ? scanGradients(this.#kernel, this.#memories, plan) : null;
    if (gradSquares !== null && anyNonFinite(gradSquares)) {
      return Promise.resolve({ applied: false, gradSquares, partials: null });
    }
    const partials = metrics ? new Float64Array(plan.slotCount * PARTIAL_COUNT) : null;
    plan.byArena.forEach((segments, arena) => {
      if (segments.length > 0) {
        this.#kernel.update(this.#memories[arena]!, segments, groups, partials);
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
