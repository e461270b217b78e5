/**
 * The inline engine: one shard runner holds every block and steps on the
 * calling thread. It is what runs where there are no Workers (Deno Deploy,
 * Node, a page without cross-origin isolation), and with `workers: 0`.
 *
 * @module
 */

import type { StepEngine, StepRequest, StepResult } from "./engine.ts";
import { PARTIAL_COUNT } from "../kernels/kernel.ts";
import type { BackendName, StateResidence } from "./backends.ts";
import { shardFailure } from "./shard_error.ts";
import { type ShardRunner, stepIsCautious, stepShard } from "./shard_runner.ts";
import {
  decideStep,
  gateNeedsScan,
  gateNeedsSquares,
  type StepDecision,
} from "../step/step_decision.ts";
import { cautionFactors, type StepPlan } from "../step/step_plan.ts";

/** What the inline engine runs. */
export interface InlineEngineOptions {
  /** The backend of the runner. */
  readonly backend: BackendName;
  /** Where the runner keeps exp_avg between steps. */
  readonly stateLives: StateResidence;
  /** Opens the runner (at the first step, and again after `reset()`). */
  readonly openRunner: () => Promise<ShardRunner>;
  /** Opens it without waiting, where the backend can (the CPU kernels), for synchronous steps. */
  readonly openRunnerSync: (() => ShardRunner) | undefined;
}

const NO_SUMS = new Float64Array(0);

/** Runs every block on the calling thread. */
export class InlineEngine implements StepEngine {
  readonly workers = 0;
  readonly backend: BackendName;
  readonly stateLives: StateResidence;
  readonly #openRunner: () => Promise<ShardRunner>;
  readonly #openRunnerSync: (() => ShardRunner) | undefined;
  #runner: Promise<ShardRunner> | undefined;
  /** The runner once open (what a synchronous step needs). */
  #opened: ShardRunner | undefined;
  /** The plan the runner was given. */
  #plan: StepPlan | undefined;

  /** @param options The backend and how to open its runner. */
  constructor(options: InlineEngineOptions) {
    this.backend = options.backend;
    this.stateLives = options.stateLives;
    this.#openRunner = options.openRunner;
    this.#openRunnerSync = options.openRunnerSync;
  }

  async run(request: StepRequest): Promise<StepResult> {
    try {
      const runner = await this.#runnerReady();
      if (request.plan !== this.#plan) {
        await runner.assign(request.plan.blocks, request.writes);
        this.#plan = request.plan;
      }
      return await this.#step(runner, request);
    } catch (error) {
      throw this.#failure(error, request.plan.blocks.length);
    }
  }

  runSync(request: StepRequest): StepResult {
    const runner = this.#runnerSync();
    try {
      if (request.plan !== this.#plan) {
        mustBeSync(runner.assign(request.plan.blocks, request.writes));
        this.#plan = request.plan;
      }
      return mustBeSync(this.#step(runner, request));
    } catch (error) {
      throw this.#failure(error, request.plan.blocks.length);
    }
  }

  started(): Promise<void> {
    return Promise.resolve();
  }

  /** Scan, decide, update: synchronous when the runner is. */
  #step(
    runner: ShardRunner,
    { plan, groups, gate, metrics, writes }: StepRequest,
  ): StepResult | Promise<StepResult> {
    const blockCount = plan.blocks.length;
    const gradSquares = gateNeedsScan(gate) ? new Float64Array(blockCount) : null;
    const partials = metrics ? new Float64Array(blockCount * PARTIAL_COUNT) : null;
    const counts = stepIsCautious(groups) ? new Float64Array(blockCount) : null;
    const decided = stepShard(
      runner,
      {
        scan: gradSquares !== null,
        squares: gateNeedsSquares(gate),
        gradSquares: gradSquares ?? NO_SUMS,
        groups,
        writes,
        partials,
        counts,
      },
      {
        decide: () => decideStep(gate, gradSquares),
        caution: () => {
          const caution = new Float32Array(blockCount);
          cautionFactors(plan.blocks, counts!, groups, caution);
          return caution;
        },
      },
    );
    const result = (decision: StepDecision): StepResult => ({
      decision,
      gradSquares,
      partials: decision.action === "update" ? partials : null,
    });
    return decided instanceof Promise ? decided.then(result) : result(decided);
  }

  async pullState(): Promise<void> {
    if (this.#runner === undefined) return;
    try {
      await (await this.#runner).pull();
    } catch (error) {
      throw this.#failure(error, this.#plan?.blocks.length ?? 0);
    }
  }

  /** After a failure the runner's copies are suspect: the next step opens a fresh one. */
  reset(): void {
    void this.close();
  }

  async close(): Promise<void> {
    const runner = this.#runner;
    this.#runner = undefined;
    this.#opened = undefined;
    this.#plan = undefined;
    if (runner !== undefined) await (await runner.catch(() => undefined))?.close();
  }

  #runnerReady(): Promise<ShardRunner> {
    this.#runner ??= this.#openRunner().then((runner) => (this.#opened = runner));
    return this.#runner;
  }

  #runnerSync(): ShardRunner {
    if (this.#opened !== undefined) return this.#opened;
    if (this.#openRunnerSync === undefined) {
      throw new RangeError(
        `Cannot step synchronously on the ${this.backend} backend, whose runner opens asynchronously: use step()`,
      );
    }
    const runner = this.#openRunnerSync();
    this.#opened = runner;
    this.#runner = Promise.resolve(runner);
    return runner;
  }

  #failure(error: unknown, blockCount: number): Error {
    const cause = error instanceof Error ? error : new Error(String(error));
    return shardFailure(`the calling thread (blocks 0–${blockCount})`, cause);
  }
}

/** A runner's result that a synchronous step needs now; CPU runners never return a promise. */
function mustBeSync<T>(value: T | Promise<T>): T {
  if (value instanceof Promise) {
    value.catch(() => {});
    throw new RangeError("Cannot step synchronously as this runner works asynchronously");
  }
  return value;
}
