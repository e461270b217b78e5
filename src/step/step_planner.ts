/**
 * The plan of each step: which of the optimizer's parameters take part (a
 * gradient, and `requiresGrad`), cut into blocks, and the same plan again
 * while the same parameters take part, so a training loop plans once.
 *
 * @module
 */

import {
  type ActiveParameter,
  BLOCK_ELEMENTS,
  type MomentLayout,
  planStep,
  type StepPlan,
} from "./step_plan.ts";

/** Plans steps over a fixed list of parameters. */
export class StepPlanner {
  readonly #entries: readonly ActiveParameter[];
  readonly #layout: MomentLayout;
  /** Which entries took part in the last plan. */
  readonly #takesPart: Uint8Array;
  #plan: StepPlan | undefined;

  /**
   * @param entries Every parameter of the optimizer, in group order.
   * @param layout How exp_avg is stored.
   */
  constructor(entries: readonly ActiveParameter[], layout: MomentLayout) {
    this.#entries = entries;
    this.#layout = layout;
    this.#takesPart = new Uint8Array(entries.length);
  }

  /**
   * The plan of this step: the last one again while the same parameters
   * take part (checked flag by flag, allocating nothing).
   *
   * @returns The plan; it has no parameter when none has a gradient.
   */
  plan(): StepPlan {
    let changed = this.#plan === undefined;
    this.#entries.forEach(({ slots }, i) => {
      const takesPart = slots.hasGrad && slots.requiresGrad ? 1 : 0;
      if (this.#takesPart[i] !== takesPart) {
        this.#takesPart[i] = takesPart;
        changed = true;
      }
    });
    if (changed) {
      const active = this.#entries.filter((_, i) => this.#takesPart[i] === 1);
      this.#plan = planStep(active, BLOCK_ELEMENTS, this.#layout);
    }
    return this.#plan!;
  }
}
