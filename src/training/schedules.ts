/**
 * Composer's stateless learning-rate schedules (`composer/optim/scheduler.py`):
 * each factory returns `(step) => α`, the multiplier of the initial learning
 * rate at optimizer step `step` (Composer's batches). The formulas are
 * Composer's, including where it clips the elapsed fraction τ to [0, 1] and
 * where it does not (the polynomial schedule), and the integer truncation of
 * the warm restarts' intervals. {@linkcode LrScheduler} applies them to an
 * optimizer.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { checkKnownKeys } from "../_internal/validate.ts";

/** A schedule: the learning-rate multiplier α at optimizer step `step` (0, 1, 2, …). */
export type Schedule = (step: number) => number;

/** Options of {@linkcode stepSchedule}. */
export interface StepScheduleOptions {
  /** Steps between decays; an integer > 0. */
  stepSize: number;
  /**
   * Multiplicative decay factor.
   *
   * @default {0.1}
   */
  gamma?: number;
}

/** Options of {@linkcode multiStepSchedule}. */
export interface MultiStepScheduleOptions {
  /** Steps at which α is multiplied by `gamma`; integers >= 0. */
  milestones: readonly number[];
  /**
   * Multiplicative decay factor.
   *
   * @default {0.1}
   */
  gamma?: number;
}

/** Options of {@linkcode constantSchedule}. */
export interface ConstantScheduleOptions {
  /**
   * The multiplier while `step < tMax`.
   *
   * @default {1}
   */
  alpha?: number;
  /** Steps it holds `alpha` for (then 1); an integer >= 0. */
  tMax: number;
}

/** Options of {@linkcode linearSchedule}. */
export interface LinearScheduleOptions {
  /**
   * The multiplier at step 0.
   *
   * @default {1}
   */
  alphaI?: number;
  /**
   * The multiplier from `tMax` on.
   *
   * @default {0}
   */
  alphaF?: number;
  /** Steps from `alphaI` to `alphaF`; an integer > 0. */
  tMax: number;
}

/** Options of {@linkcode exponentialSchedule}. */
export interface ExponentialScheduleOptions {
  /** The factor per `decayPeriod`. */
  gamma: number;
  /** Steps over which α is multiplied by `gamma`; an integer > 0. */
  decayPeriod: number;
}

/** Options of {@linkcode cosineAnnealingSchedule}. */
export interface CosineAnnealingScheduleOptions {
  /** Steps from 1 to `alphaF`; an integer > 0. */
  tMax: number;
  /**
   * The multiplier from `tMax` on.
   *
   * @default {0}
   */
  alphaF?: number;
}

/** Options of {@linkcode cosineAnnealingWarmRestartsSchedule}. */
export interface CosineAnnealingWarmRestartsScheduleOptions {
  /** Steps of the first cycle; an integer > 0. */
  t0: number;
  /**
   * Each cycle's length is the previous one's times `tMult`, truncated to an integer.
   *
   * @default {1}
   */
  tMult?: number;
  /**
   * The multiplier at the end of each cycle.
   *
   * @default {0}
   */
  alphaF?: number;
}

/** Options of {@linkcode polynomialSchedule}. */
export interface PolynomialScheduleOptions {
  /** The exponent κ of `(1 - τ)^κ`. */
  power: number;
  /** Steps from 1 to `alphaF`; an integer > 0. τ is not clipped past it (as in Composer). */
  tMax: number;
  /**
   * The multiplier at `tMax`.
   *
   * @default {0}
   */
  alphaF?: number;
}

/** Options of {@linkcode multiStepWithWarmupSchedule}. */
export interface MultiStepWithWarmupScheduleOptions {
  /** Steps of the linear warmup from 0 to 1; an integer >= 0. */
  tWarmup: number;
  /** Steps (counted from 0) at which α is multiplied by `gamma`; integers >= 0. */
  milestones: readonly number[];
  /**
   * Multiplicative decay factor.
   *
   * @default {0.1}
   */
  gamma?: number;
}

/** Options of {@linkcode linearWithWarmupSchedule}. */
export interface LinearWithWarmupScheduleOptions {
  /** Steps of the linear warmup from 0 to `alphaI`; an integer >= 0. */
  tWarmup: number;
  /**
   * The multiplier at the end of the warmup.
   *
   * @default {1}
   */
  alphaI?: number;
  /**
   * The multiplier from `tMax` on.
   *
   * @default {0}
   */
  alphaF?: number;
  /** The step (counted from 0, warmup included) where `alphaF` is reached; an integer > `tWarmup`. */
  tMax: number;
}

/** Options of {@linkcode cosineAnnealingWithWarmupSchedule}. */
export interface CosineAnnealingWithWarmupScheduleOptions {
  /** Steps of the linear warmup from 0 to 1; an integer >= 0. */
  tWarmup: number;
  /** The step (counted from 0, warmup included) where `alphaF` is reached; an integer > `tWarmup`. */
  tMax: number;
  /**
   * The multiplier from `tMax` on.
   *
   * @default {0}
   */
  alphaF?: number;
}

/**
 * A factory's options: an object with known keys only (a misspelt key would
 * otherwise take its default silently), with the closest known name.
 */
function checkScheduleOptions<T extends object>(
  schedule: string,
  options: T,
  known: readonly string[],
): T {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot create ${schedule} as 'options' must be an object: current value is ${
        formatValue(options)
      }`,
    );
  }
  checkKnownKeys(`Cannot create ${schedule}`, "options", options, known);
  return options;
}

function fail(schedule: string, what: string, value: unknown): never {
  throw new RangeError(
    `Cannot create ${schedule} as ${what}: current value is ${formatValue(value)}`,
  );
}

/** Checks a duration in steps: an integer >= 0 (> 0 where it divides). */
function steps(schedule: string, name: string, value: unknown, positive: boolean): number {
  const bound = positive ? "> 0" : ">= 0";
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < (positive ? 1 : 0)) {
    fail(schedule, `'${name}' must be an integer ${bound} (steps)`, value);
  }
  return value;
}

/** Checks a multiplier or factor: a finite number. */
function finite(schedule: string, name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    fail(schedule, `'${name}' must be a finite number`, value);
  }
  return value;
}

function milestonesOf(schedule: string, milestones: unknown): readonly number[] {
  if (!Array.isArray(milestones)) fail(schedule, "'milestones' must be an array", milestones);
  return Object.freeze(
    milestones.map((step: unknown, i) => steps(schedule, `milestones[${i}]`, step, false)),
  );
}

function warmupEnd(schedule: string, tWarmup: number, tMax: unknown): number {
  const end = steps(schedule, "tMax", tMax, true);
  if (end <= tWarmup) fail(schedule, `'tMax' must be > 'tWarmup' (${tWarmup})`, end);
  return end;
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(
      `Cannot evaluate schedule as 'step' must be an integer >= 0: current value is ${
        formatValue(step)
      }`,
    );
  }
}

/** Composer's `_cosine_anneal`: x clipped to [0, 1], then `min + (max - min)(1 + cos πx)/2`. */
function cosineAnneal(x: number, minY: number): number {
  const clipped = Math.min(Math.max(x, 0), 1);
  return minY + (1 - minY) * (1 + Math.cos(clipped * Math.PI)) / 2;
}

/**
 * Decays α by `gamma` every `stepSize` steps: `gamma ^ floor(t / stepSize)`.
 *
 * @example Halve every 10 steps
 * ```ts
 * import { stepSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = stepSchedule({ stepSize: 10, gamma: 0.5 });
 * assert.deepEqual([alpha(0), alpha(9), alpha(10), alpha(25)], [1, 1, 0.5, 0.25]);
 * ```
 *
 * @param options The step size and factor.
 * @returns The schedule.
 * @throws {RangeError} When `stepSize` is not an integer > 0 or `gamma` is not finite.
 */
export function stepSchedule(options: StepScheduleOptions): Schedule {
  const name = "stepSchedule";
  const { stepSize, gamma = 0.1 } = checkScheduleOptions(name, options, ["stepSize", "gamma"]);
  const size = steps(name, "stepSize", stepSize, true);
  const factor = finite(name, "gamma", gamma);
  return (t) => {
    checkStep(t);
    return factor ** Math.trunc(t / size);
  };
}

/**
 * Multiplies α by `gamma` at each milestone reached (`t >= milestone`).
 *
 * @example Decay tenfold at steps 30 and 80
 * ```ts
 * import { multiStepSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = multiStepSchedule({ milestones: [30, 80] });
 * assert.deepEqual([alpha(29), alpha(30), alpha(80)], [1, 0.1, 0.1 * 0.1]);
 * ```
 *
 * @param options The milestones and factor.
 * @returns The schedule.
 * @throws {RangeError} When a milestone is not an integer >= 0 or `gamma` is not finite.
 */
export function multiStepSchedule(options: MultiStepScheduleOptions): Schedule {
  const name = "multiStepSchedule";
  const { milestones, gamma = 0.1 } = checkScheduleOptions(name, options, ["milestones", "gamma"]);
  const at = milestonesOf(name, milestones);
  const factor = finite(name, "gamma", gamma);
  return (t) => {
    checkStep(t);
    let alpha = 1;
    for (const milestone of at) if (t >= milestone) alpha *= factor;
    return alpha;
  };
}

/**
 * Holds α at `alpha` for `tMax` steps, then at 1.
 *
 * @example A lower rate for the first 5 steps
 * ```ts
 * import { constantSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = constantSchedule({ alpha: 0.5, tMax: 5 });
 * assert.deepEqual([alpha(4), alpha(5)], [0.5, 1]);
 * ```
 *
 * @param options The multiplier and its duration.
 * @returns The schedule.
 * @throws {RangeError} When `tMax` is not an integer >= 0 or `alpha` is not finite.
 */
export function constantSchedule(options: ConstantScheduleOptions): Schedule {
  const name = "constantSchedule";
  const { alpha = 1, tMax } = checkScheduleOptions(name, options, ["alpha", "tMax"]);
  const value = finite(name, "alpha", alpha);
  const end = steps(name, "tMax", tMax, false);
  return (t) => {
    checkStep(t);
    return t < end ? value : 1;
  };
}

/**
 * Moves α linearly from `alphaI` to `alphaF` over `tMax` steps, then holds
 * it: `alphaI + τ (alphaF - alphaI)`, τ = min(1, t / tMax).
 *
 * @example From 1 to 0 over 100 steps
 * ```ts
 * import { linearSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = linearSchedule({ tMax: 100 });
 * assert.deepEqual([alpha(0), alpha(25), alpha(100), alpha(150)], [1, 0.75, 0, 0]);
 * ```
 *
 * @param options The end points and duration.
 * @returns The schedule.
 * @throws {RangeError} When `tMax` is not an integer > 0 or a multiplier is not finite.
 */
export function linearSchedule(options: LinearScheduleOptions): Schedule {
  const name = "linearSchedule";
  const { alphaI = 1, alphaF = 0, tMax } = checkScheduleOptions(name, options, [
    "alphaI",
    "alphaF",
    "tMax",
  ]);
  const from = finite(name, "alphaI", alphaI);
  const to = finite(name, "alphaF", alphaF);
  const end = steps(name, "tMax", tMax, true);
  return (t) => {
    checkStep(t);
    return from + Math.min(1, t / end) * (to - from);
  };
}

/**
 * Decays α continuously by `gamma` per `decayPeriod` steps: `gamma ^ (t / decayPeriod)`.
 *
 * @example Halve every 10 steps, smoothly
 * ```ts
 * import { exponentialSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = exponentialSchedule({ gamma: 0.5, decayPeriod: 10 });
 * assert.deepEqual([alpha(0), alpha(5), alpha(10)], [1, Math.SQRT1_2, 0.5]);
 * ```
 *
 * @param options The factor and its period.
 * @returns The schedule.
 * @throws {RangeError} When `decayPeriod` is not an integer > 0 or `gamma` is not finite.
 */
export function exponentialSchedule(options: ExponentialScheduleOptions): Schedule {
  const name = "exponentialSchedule";
  const { gamma, decayPeriod } = checkScheduleOptions(name, options, ["gamma", "decayPeriod"]);
  const factor = finite(name, "gamma", gamma);
  const period = steps(name, "decayPeriod", decayPeriod, true);
  return (t) => {
    checkStep(t);
    return factor ** (t / period);
  };
}

/**
 * Decays α along half a cosine from 1 to `alphaF` over `tMax` steps, then
 * holds it: `alphaF + (1 - alphaF)(1 + cos πτ)/2`, τ = t / tMax clipped to [0, 1].
 *
 * @example Cosine decay over 100 steps
 * ```ts
 * import { cosineAnnealingSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = cosineAnnealingSchedule({ tMax: 100, alphaF: 0.1 });
 * assert.equal(alpha(0), 1);
 * assert.ok(Math.abs(alpha(50) - 0.55) < 1e-15);
 * assert.equal(alpha(200), 0.1);
 * ```
 *
 * @param options The duration and final multiplier.
 * @returns The schedule.
 * @throws {RangeError} When `tMax` is not an integer > 0 or `alphaF` is not finite.
 */
export function cosineAnnealingSchedule(options: CosineAnnealingScheduleOptions): Schedule {
  const name = "cosineAnnealingSchedule";
  const { tMax, alphaF = 0 } = checkScheduleOptions(name, options, ["tMax", "alphaF"]);
  const end = steps(name, "tMax", tMax, true);
  const final = finite(name, "alphaF", alphaF);
  return (t) => {
    checkStep(t);
    return cosineAnneal(t / end, final);
  };
}

/**
 * Cosine annealing that restarts: the first cycle lasts `t0` steps, each
 * next one `trunc(tMult × previous)` steps.
 *
 * @example Cycles of 10, then 20 steps
 * ```ts
 * import { cosineAnnealingWarmRestartsSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = cosineAnnealingWarmRestartsSchedule({ t0: 10, tMult: 2 });
 * assert.deepEqual([alpha(0), alpha(10), alpha(20), alpha(30)], [1, 1, 0.5, 1]);
 * ```
 *
 * @param options The first cycle, the growth and the final multiplier.
 * @returns The schedule; it throws a `RangeError` at a step that needs a
 * cycle whose length has been truncated to 0 (`tMult` < 1).
 * @throws {RangeError} When `t0` is not an integer > 0 or a number is not finite and >= 0.
 */
export function cosineAnnealingWarmRestartsSchedule(
  options: CosineAnnealingWarmRestartsScheduleOptions,
): Schedule {
  const name = "cosineAnnealingWarmRestartsSchedule";
  const { t0, tMult = 1, alphaF = 0 } = checkScheduleOptions(name, options, [
    "t0",
    "tMult",
    "alphaF",
  ]);
  const first = steps(name, "t0", t0, true);
  const growth = finite(name, "tMult", tMult);
  if (growth < 0) fail(name, "'tMult' must be >= 0", growth);
  const final = finite(name, "alphaF", alphaF);
  return (t) => {
    checkStep(t);
    let length = first;
    let end = first;
    while (end <= t) {
      length = Math.trunc(growth * length);
      if (length === 0) {
        throw new RangeError(
          `Cannot evaluate ${name} at step ${t} as the interval between restarts has decayed to 0 (t0 ${first}, tMult ${growth})`,
        );
      }
      end += length;
    }
    return cosineAnneal((t - (end - length)) / length, final);
  };
}

/**
 * Decays α as a power of the time left: `alphaF + (1 - alphaF)(1 - τ)^power`,
 * τ = t / tMax, **not** clipped (as in Composer): past `tMax` an even power
 * rises again and a fractional one gives NaN, which an {@linkcode LrScheduler}
 * refuses.
 *
 * @example Quadratic decay over 100 steps
 * ```ts
 * import { polynomialSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = polynomialSchedule({ power: 2, tMax: 100 });
 * assert.deepEqual([alpha(0), alpha(50), alpha(100)], [1, 0.25, 0]);
 * ```
 *
 * @param options The power, duration and final multiplier.
 * @returns The schedule.
 * @throws {RangeError} When `tMax` is not an integer > 0 or a number is not finite.
 */
export function polynomialSchedule(options: PolynomialScheduleOptions): Schedule {
  const name = "polynomialSchedule";
  const { power, tMax, alphaF = 0 } = checkScheduleOptions(name, options, [
    "power",
    "tMax",
    "alphaF",
  ]);
  const exponent = finite(name, "power", power);
  const end = steps(name, "tMax", tMax, true);
  const final = finite(name, "alphaF", alphaF);
  return (t) => {
    checkStep(t);
    return final + (1 - t / end) ** exponent * (1 - final);
  };
}

/**
 * A linear warmup from 0 to 1 over `tWarmup` steps, then
 * {@linkcode multiStepSchedule} (milestones count from step 0).
 *
 * @example Warm up for 10 steps, decay at 50
 * ```ts
 * import { multiStepWithWarmupSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = multiStepWithWarmupSchedule({ tWarmup: 10, milestones: [50], gamma: 0.5 });
 * assert.deepEqual([alpha(0), alpha(5), alpha(10), alpha(50)], [0, 0.5, 1, 0.5]);
 * ```
 *
 * @param options The warmup, milestones and factor.
 * @returns The schedule.
 * @throws {RangeError} When a duration is not an integer >= 0 or `gamma` is not finite.
 */
export function multiStepWithWarmupSchedule(options: MultiStepWithWarmupScheduleOptions): Schedule {
  const name = "multiStepWithWarmupSchedule";
  const { tWarmup, milestones, gamma = 0.1 } = checkScheduleOptions(name, options, [
    "tWarmup",
    "milestones",
    "gamma",
  ]);
  const warmup = steps(name, "tWarmup", tWarmup, false);
  const at = milestonesOf(name, milestones);
  const factor = finite(name, "gamma", gamma);
  const decay = multiStepSchedule({ milestones: at, gamma: factor });
  return (t) => {
    checkStep(t);
    return t < warmup ? t / warmup : decay(t);
  };
}

/**
 * A linear warmup from 0 to `alphaI` over `tWarmup` steps, then linear from
 * `alphaI` to `alphaF` at step `tMax`: τ = min(1, (t - tWarmup) / (tMax - tWarmup)).
 *
 * @example Warm up for 10 steps, then decay to 0 at step 110
 * ```ts
 * import { linearWithWarmupSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = linearWithWarmupSchedule({ tWarmup: 10, tMax: 110 });
 * assert.deepEqual([alpha(0), alpha(5), alpha(10), alpha(60), alpha(110)], [0, 0.5, 1, 0.5, 0]);
 * ```
 *
 * @param options The warmup, end points and end step.
 * @returns The schedule.
 * @throws {RangeError} When a duration is not an integer >= 0, `tMax <= tWarmup`,
 * or a multiplier is not finite.
 */
export function linearWithWarmupSchedule(options: LinearWithWarmupScheduleOptions): Schedule {
  const name = "linearWithWarmupSchedule";
  const { tWarmup, alphaI = 1, alphaF = 0, tMax } = checkScheduleOptions(name, options, [
    "tWarmup",
    "alphaI",
    "alphaF",
    "tMax",
  ]);
  const warmup = steps(name, "tWarmup", tWarmup, false);
  const end = warmupEnd(name, warmup, tMax);
  const from = finite(name, "alphaI", alphaI);
  const to = finite(name, "alphaF", alphaF);
  return (t) => {
    checkStep(t);
    if (t < warmup) return from * (t / warmup);
    return from + Math.min(1, (t - warmup) / (end - warmup)) * (to - from);
  };
}

/**
 * A linear warmup from 0 to 1 over `tWarmup` steps, then cosine annealing to
 * `alphaF` at step `tMax`: τ = (t - tWarmup) / (tMax - tWarmup), clipped to [0, 1].
 *
 * @example The usual Lion recipe: warmup, then cosine
 * ```ts
 * import { cosineAnnealingWithWarmupSchedule } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const alpha = cosineAnnealingWithWarmupSchedule({ tWarmup: 10, tMax: 110, alphaF: 0.1 });
 * assert.deepEqual([alpha(0), alpha(5), alpha(10), alpha(110)], [0, 0.5, 1, 0.1]);
 * ```
 *
 * @param options The warmup, end step and final multiplier.
 * @returns The schedule.
 * @throws {RangeError} When a duration is not an integer >= 0, `tMax <= tWarmup`,
 * or `alphaF` is not finite.
 */
export function cosineAnnealingWithWarmupSchedule(
  options: CosineAnnealingWithWarmupScheduleOptions,
): Schedule {
  const name = "cosineAnnealingWithWarmupSchedule";
  const { tWarmup, tMax, alphaF = 0 } = checkScheduleOptions(name, options, [
    "tWarmup",
    "tMax",
    "alphaF",
  ]);
  const warmup = steps(name, "tWarmup", tWarmup, false);
  const end = warmupEnd(name, warmup, tMax);
  const final = finite(name, "alphaF", alphaF);
  return (t) => {
    checkStep(t);
    return t < warmup ? t / warmup : cosineAnneal((t - warmup) / (end - warmup), final);
  };
}
