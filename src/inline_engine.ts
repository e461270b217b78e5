/**
 * The inline engine: one shard runner holds every block and steps on the
 * calling thread. It is what runs where there are no Workers (Deno Deploy,
 * Node, a page without cross-origin isolation), and with `workers: 0`.
 *
 * @module
 */

import type { StateResidence, StepEngine, StepRequest, StepResult } from "./engine.ts";
import { PARTIAL_COUNT } from "./kernel.ts";
import type { BackendName } from "./options.ts";
import { shardFailure } from "./shard_error.ts";
import { type ShardRunner, stepIsCautious, stepShard } from "./shard_runner.ts";
import { decideStep, gateNeedsScan } from "./step_decision.ts";
import { cautionFactors, type StepPlan } from "./step_plan.ts";

/** What the inline engine runs. */
export interface InlineEngineOptions {
  /** The backend of the runner. */
  readonly backend: BackendName;
  /** Where the runner keeps exp_avg between steps. */
  readonly stateLives: StateResidence;
  /** Opens the runner (at the first step, and again after `reset()`). */
  readonly openRunner: () => Promise<ShardRunner>;
}

const NO_SUMS = new Float64Array(0);

/** Runs every block on the calling thread. */
export class InlineEngine implements StepEngine {
  readonly workers = 0;
  readonly backend: BackendName;
  readonly stateLives: StateResidence;
  readonly #openRunner: () => Promise<ShardRunner>;
  #runner: Promise<ShardRunner> | undefined;
  /** The plan the runner was given. */
  #plan: StepPlan | undefined;

  /** @param options The backend and how to open its runner. */
  constructor(options: InlineEngineOptions) {
    this.backend = options.backend;
    this.stateLives = options.stateLives;
    this.#openRunner = options.openRunner;
  }

  async run({ plan, groups, gate, metrics, writes }: StepRequest): Promise<StepResult> {
    const blockCount = plan.blocks.length;
    const gradSquares = gateNeedsScan(gate) ? new Float64Array(blockCount) : null;
    const partials = metrics ? new Float64Array(blockCount * PARTIAL_COUNT) : null;
    try {
      const runner = await this.#runnerReady();
      if (plan !== this.#plan) {
        await runner.assign(plan.blocks, writes);
        this.#plan = plan;
      }
      const counts = stepIsCautious(groups) ? new Float64Array(blockCount) : null;
      const decision = await stepShard(
        runner,
        {
          scan: gradSquares !== null,
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
      return {
        decision,
        gradSquares,
        partials: decision.action === "update" ? partials : null,
      };
    } catch (error) {
      throw this.#failure(error, blockCount);
    }
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
    this.#plan = undefined;
    if (runner !== undefined) await (await runner.catch(() => undefined))?.close();
  }

  #runnerReady(): Promise<ShardRunner> {
    this.#runner ??= this.#openRunner();
    return this.#runner;
  }

  #failure(error: unknown, blockCount: number): Error {
    const cause = error instanceof Error ? error : new Error(String(error));
    return shardFailure(`the calling thread (blocks 0–${blockCount})`, cause);
  }
}
