/**
 * What a `DecoupledLionW` is made of, and how the options make it: the
 * book (groups, state, count), an engine (where the kernels run and the
 * state lives) and the strategy's step driver. The optimizer class only
 * composes them; the tfjs device path assembles the same parts around an
 * engine of its own (its steps run on tfjs's tensors).
 *
 * @module
 */

import type { Logger } from "../_internal/logger.ts";
import type { StepDriver } from "../distributed/step_driver.ts";
import { type StartedEngine, startEngine } from "../engine/engine_factory.ts";
import { BLOCK_ELEMENTS } from "../step/step_plan.ts";
import { OptimizerBook } from "./optimizer_book.ts";
import { checkEngineCombination, checkOptions, type EngineOptions } from "./option_rules.ts";
import type { DecoupledLionWOptions } from "./options.ts";
import type { ParamGroupOptions } from "./param_group.ts";
import type { Parameter } from "../store/parameter.ts";

/** The parts of an optimizer. */
export interface OptimizerParts {
  /** The groups, the state and the count. */
  readonly book: OptimizerBook;
  /** The engine and the story of its choice. */
  readonly started: StartedEngine;
  /** The strategy's driver. */
  readonly driver: StepDriver;
  /** The checked options behind the engine and the driver. */
  readonly rules: EngineOptions;
  /** Where warnings go. */
  readonly logger: Logger | null;
}

/** Makes the engine for a book: the library's own ({@linkcode startBookEngine}), or another. */
export type EngineMaker = (
  book: OptimizerBook,
  rules: EngineOptions,
  logger: Logger | null,
) => StartedEngine;

/**
 * Checks the options and the parameters and assembles the parts.
 *
 * @param params A list of parameters (one group), or a list of groups.
 * @param options The optimizer's options.
 * @param makeEngine Where the steps run.
 * @returns The parts.
 */
export function assembleParts(
  params: readonly Parameter[] | readonly ParamGroupOptions[],
  options: DecoupledLionWOptions,
  makeEngine: EngineMaker = startBookEngine,
): OptimizerParts {
  const { engine: rules, defaults } = checkOptions(options);
  const logger = options.logger === undefined ? console : options.logger;
  const book = new OptimizerBook({
    params,
    defaults,
    logger,
    momentumDtype: (storeDtype) => checkEngineCombination(rules, storeDtype),
  });
  const started = makeEngine(book, rules, logger);
  const driver = rules.strategy.create(rules, {
    entries: book.entries,
    arenas: book.memory.arenas,
    // made when a strategy first asks for it
    get hostKernel() {
      return started.hostKernel;
    },
  });
  return { book, started, driver, rules, logger };
}

/**
 * The library's engine for a book: its backend and workers, over the store's memory.
 *
 * @param book The book.
 * @param rules The checked options.
 * @param logger Where warnings go.
 * @returns The engine.
 */
export function startBookEngine(
  book: OptimizerBook,
  rules: EngineOptions,
  logger: Logger | null,
): StartedEngine {
  const sizes = [...book.slots.values()].map((slots) => slots.dataView.length);
  return startEngine({
    options: rules,
    memory: book.memory,
    elements: sizes.reduce((total, size) => total + size, 0),
    maxBlocks: sizes.reduce((total, size) => total + Math.ceil(size / BLOCK_ELEMENTS), 0),
    groups: book.constantCount,
    logger,
  });
}
