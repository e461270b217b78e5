/**
 * {@linkcode LrScheduler}: applies schedules to an optimizer's groups, as
 * Composer compiles its stateless schedulers into a `LambdaLR`.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import type { ParamGroup } from "../optimizer/param_group.ts";
import type { Schedule } from "./schedules.ts";

/** What {@linkcode LrScheduler} needs of an optimizer: its groups. */
export interface ScheduledOptimizer {
  /** The groups whose `lr` the scheduler sets. */
  readonly paramGroups: readonly ParamGroup[];
}

/** The state of an {@linkcode LrScheduler}: how many steps it has taken. */
export interface LrSchedulerState {
  /** Optimizer steps taken so far (the schedules' time). */
  readonly t: number;
}

/**
 * Sets every group's `lr` to `initialLr × Π α(t)` over its schedules (their
 * effects stack multiplicatively, as in Composer). The constructor applies
 * `t = 0`, so a warmup's first step runs at lr 0; call
 * {@linkcode LrScheduler.step} after each `opt.step()`. Weight decay follows
 * the schedule by itself (it is scaled by `lr / initialLr`).
 *
 * @example Warmup then cosine
 * ```ts
 * import {
 *   cosineAnnealingWithWarmupSchedule,
 *   DecoupledLionW,
 *   LrScheduler,
 *   ParameterStore,
 * } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("w", [2]);
 * await using opt = new DecoupledLionW([w], { lr: 1e-3 });
 * const scheduler = new LrScheduler(opt, cosineAnnealingWithWarmupSchedule({ tWarmup: 2, tMax: 10 }));
 * assert.equal(opt.paramGroups[0]!.lr, 0);
 * for (let i = 0; i < 2; i++) {
 *   w.grad = [1, -1];
 *   await opt.step();
 *   scheduler.step();
 * }
 * assert.equal(opt.paramGroups[0]!.lr, 1e-3); // warmup done
 * assert.deepEqual(scheduler.stateDict(), { t: 2 });
 * ```
 */
export class LrScheduler {
  readonly #groups: readonly ParamGroup[];
  readonly #schedules: readonly Schedule[];
  #t = 0;

  /**
   * Applies the schedules at step 0.
   *
   * @param optimizer The optimizer whose groups it drives.
   * @param schedules Schedules whose multipliers are multiplied together.
   * @throws {RangeError} When a schedule's multiplier at step 0 makes an lr
   * that is not a finite number >= 0.
   */
  constructor(optimizer: ScheduledOptimizer, ...schedules: Schedule[]) {
    if (!Array.isArray(optimizer?.paramGroups)) {
      throw new TypeError(
        `Cannot create LrScheduler as 'optimizer' must have paramGroups (a DecoupledLionW): current value is ${
          formatValue(optimizer)
        }`,
      );
    }
    schedules.forEach((schedule, i) => {
      if (typeof schedule !== "function") {
        throw new TypeError(
          `Cannot create LrScheduler as 'schedules[${i}]' (argument ${
            i + 2
          }) must be a schedule, a function of the step (e.g. cosineAnnealingWithWarmupSchedule({ tWarmup, tMax })): current value is ${
            formatValue(schedule)
          }`,
        );
      }
    });
    this.#groups = optimizer.paramGroups;
    this.#schedules = [...schedules];
    this.#apply(0);
  }

  /** Optimizer steps taken so far (the schedules' time). */
  get t(): number {
    return this.#t;
  }

  /** The product of the schedules' multipliers at the current step. */
  get alpha(): number {
    return this.#alphaAt(this.#t);
  }

  /**
   * Advances one step and sets each group's lr for the next optimizer step.
   *
   * @throws {RangeError} When the multiplier makes an lr that is not a
   * finite number >= 0 (nothing is changed then).
   */
  step(): void {
    this.#apply(this.#t + 1);
  }

  /**
   * The scheduler's state, for a checkpoint.
   *
   * @returns `{ t }`.
   */
  stateDict(): LrSchedulerState {
    return { t: this.#t };
  }

  /**
   * Restores a state from {@linkcode LrScheduler.stateDict} and sets the lrs it implies.
   *
   * @param state The state.
   * @throws {RangeError} When `t` is not an integer >= 0.
   */
  loadStateDict(state: LrSchedulerState): void {
    const t: unknown = state?.t;
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
      throw new RangeError(
        `Cannot load scheduler state as 't' must be an integer >= 0: current value is ${
          formatValue(t)
        }`,
      );
    }
    this.#apply(t);
  }

  #alphaAt(t: number): number {
    return this.#schedules.reduce((alpha, schedule) => alpha * schedule(t), 1);
  }

  /** Sets every group's lr for step `t`, all or none. */
  #apply(t: number): void {
    const alpha = this.#alphaAt(t);
    const lrs = this.#groups.map((group) => group.initialLr * alpha);
    lrs.forEach((lr, i) => {
      if (!(lr >= 0 && lr < Infinity)) {
        throw new RangeError(
          `Cannot schedule step ${t} as the learning rate of paramGroups[${i}] must be a finite number >= 0: current value is ${
            formatValue(lr)
          } (alpha ${formatValue(alpha)})`,
        );
      }
    });
    this.#groups.forEach((group, i) => (group.lr = lrs[i]!));
    this.#t = t;
  }
}
