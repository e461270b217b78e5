/**
 * The strategies a step can run under, and what each supports: a row per
 * step driver. {@linkcode stepDriverRow} picks the row the options ask for;
 * the rules about combining options read its capabilities, as they read a
 * backend's (optimizer/option_rules.ts), and the optimizer builds the row's
 * driver with its `create`. A new strategy is a {@linkcode StepDriver} (a generator that yields
 * its waits) and a row here: the optimizer class does not change.
 *
 * @module
 */

import type { Collective } from "./collective.ts";
import { DataParallelStep } from "./data_parallel_step.ts";
import type { Exchange } from "./exchange.ts";
import { SignVoteStep } from "./sign_vote_step.ts";
import type { DataParallelEntry } from "./data_parallel.ts";
import { LOCAL_STEP, type StepDriver } from "./step_driver.ts";
import type { LionKernel } from "../kernels/kernel.ts";
import type { NonFinitePolicy } from "../step/step_decision.ts";
import type { Arena } from "../store/arena.ts";

/** What a strategy supports: the rules about combining options read these. */
export interface DriverCapabilities {
  /** Each rank may keep only its part of exp_avg (`shardState`, ZeRO-1). */
  readonly shardedState: boolean;
  /**
   * A step decides from the scans the grad setter took as it copied each
   * gradient (so the setter scans): the gradients reach the step as written.
   */
  readonly writtenScans: boolean;
  /** Gradient clipping (`maxGradNorm`). */
  readonly clipping: boolean;
  /** State on a device (the `gpujs` backend): the strategy never reads exp_avg on the host. */
  readonly deviceState: boolean;
  /** exp_avg stored as bfloat16 (`momentumDtype: "bfloat16"`). */
  readonly bfloat16Moments: boolean;
  /** 8-bit exp_avg (`momentumDtype: "uint8"`). */
  readonly uint8Moments: boolean;
}

/** The options a strategy is chosen and built from. */
export interface DriverOptions {
  /** The ranks, for data-parallel training. */
  readonly collective: Collective | undefined;
  /** Keep only this rank's part of exp_avg. */
  readonly shardState: boolean;
  /** Check that the ranks agree every this many applied steps (0: never). */
  readonly checkRanksEvery: number;
  /** What the ranks exchange. */
  readonly exchange: Exchange;
  /** The non-finite policy (with the step's clipping, what an exchange scans). */
  readonly nonFinite: NonFinitePolicy;
}

/** What the optimizer and its engine hand a strategy. */
export interface DriverContext {
  /** Every parameter of the optimizer, in group order. */
  readonly entries: readonly DataParallelEntry[];
  /** The store's arenas. */
  readonly arenas: readonly Arena[];
  /** The engine's kernel on the host, for scans outside the engine. */
  readonly hostKernel: LionKernel;
}

/** One strategy. */
export interface StepDriverRow {
  /** Its name, for messages. */
  readonly name: string;
  /** Whether the options ask for it (the first row that says so is taken). */
  readonly asked: (options: Pick<DriverOptions, "collective" | "exchange">) => boolean;
  /** What it supports. */
  readonly capabilities: DriverCapabilities;
  /** Builds its driver. */
  readonly create: (options: DriverOptions, context: DriverContext) => StepDriver;
}

/** The strategies, most specific first; the last is taken when no other is asked for. */
export const STEP_DRIVERS: readonly StepDriverRow[] = Object.freeze([
  {
    name: "sign-vote",
    asked: (options) => options.collective !== undefined && options.exchange === "sign-vote",
    // its own kernels read and write exp_avg (float32) on the host; the vote's size is lr; the
    // gradients are voted as written, so the scans their writes took decide the step
    capabilities: Object.freeze({
      shardedState: false,
      writtenScans: true,
      clipping: false,
      deviceState: false,
      bfloat16Moments: false,
      uint8Moments: false,
    }),
    create: (options, context) =>
      new SignVoteStep({
        entries: context.entries,
        collective: options.collective!,
        checkRanksEvery: options.checkRanksEvery,
        arenas: context.arenas,
        hostKernel: context.hostKernel,
      }),
  },
  {
    name: "data-parallel",
    asked: (options) => options.collective !== undefined,
    // the average rewrites each gradient after its write: the exchange scans it again
    capabilities: Object.freeze({
      shardedState: true,
      writtenScans: false,
      clipping: true,
      deviceState: true,
      bfloat16Moments: true,
      uint8Moments: true,
    }),
    create: (options, context) =>
      new DataParallelStep({
        entries: context.entries,
        collective: options.collective!,
        shardState: options.shardState,
        checkRanksEvery: options.checkRanksEvery,
        arenas: context.arenas,
        hostKernel: context.hostKernel,
        nonFinite: options.nonFinite,
        encoding: options.exchange === "bfloat16" ? "bfloat16" : "float32",
      }),
  },
  {
    name: "local",
    asked: () => true,
    capabilities: Object.freeze({
      shardedState: false,
      writtenScans: true,
      clipping: true,
      deviceState: true,
      bfloat16Moments: true,
      uint8Moments: true,
    }),
    create: () => LOCAL_STEP,
  },
]);

/**
 * The strategy the options ask for.
 *
 * @param options The options.
 * @returns Its row.
 */
export function stepDriverRow(
  options: Pick<DriverOptions, "collective" | "exchange">,
): StepDriverRow {
  return STEP_DRIVERS.find((row) => row.asked(options))!;
}
