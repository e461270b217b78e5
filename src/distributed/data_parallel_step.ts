/**
 * The data-parallel step driver: what every rank does around the engine so
 * that the ranks step the same parameters on their own batches and stay
 * bit-identical. A step is the layout check (first step, and when
 * `requiresGrad` changes), the gradient exchange (averaged over the ranks),
 * then the step as on one process, or, with sharded state (ZeRO-1), the
 * rank's part of it between collectives; then the divergence check when it
 * is due. Like torch keeps DDP and ZeRO outside `torch.optim`, the optimizer
 * only hands this driver a {@linkcode LocalStep}.
 *
 * @module
 */

import type { Collective } from "./collective.ts";
import { runOps } from "./collective_ops.ts";
import { DataParallel, type DataParallelEntry, type GradientEncoding } from "./data_parallel.ts";
import { type ShardPlan, shardPlan } from "./shard_plan.ts";
import {
  decidedRun,
  LOCAL_STEP,
  type LocalStep,
  type StepDriver,
  type StepProgram,
  type StepWait,
} from "./step_driver.ts";
import type { StepRequest, StepResult } from "../engine/engine.ts";
import { type LionKernel, PARTIAL_COUNT, scaleGradients } from "../kernels/kernel.ts";
import {
  decideStep,
  gateNeedsScan,
  gateNeedsSquares,
  type NonFinitePolicy,
  type StepGate,
} from "../step/step_decision.ts";
import { DECIDED, decideFromScan } from "../step/written_scan.ts";
import { partialsByParameter, type PlannedParameter, type StepPlan } from "../step/step_plan.ts";
import type { Arena } from "../store/arena.ts";

/** What the driver is built from. */
export interface DataParallelStepOptions {
  /** Every parameter of the optimizer, in group order. */
  readonly entries: readonly DataParallelEntry[];
  /** The ranks. */
  readonly collective: Collective;
  /** Keep only this rank's part of exp_avg (ZeRO-1). */
  readonly shardState: boolean;
  /** Check that the ranks agree every this many applied steps (0: never). */
  readonly checkRanksEvery: number;
  /** The store's arenas (sharded state zeroes this rank's blocks of exp_avg there). */
  readonly arenas: readonly Arena[];
  /** The engine's kernel on the host: it averages and scans the gradients. */
  readonly hostKernel: LionKernel;
  /** The optimizer's non-finite policy: with the step's clipping, what the average scans. */
  readonly nonFinite: NonFinitePolicy;
  /** How the gradients travel. */
  readonly encoding: GradientEncoding;
}

/** Drives steps across the ranks of a collective. */
export class DataParallelStep implements StepDriver {
  readonly #ranks: DataParallel;
  readonly #options: DataParallelStepOptions;
  /** This rank's part of the last plan, with sharded state. */
  #shard:
    | { readonly plan: StepPlan; readonly buckets: unknown; readonly part: ShardPlan }
    | undefined;
  /** Sharded state: this rank holds only its part of exp_avg (until `pullState()` gathers it). */
  #stateSharded = false;

  /** @param options The parameters, the ranks and the sharding. */
  constructor(options: DataParallelStepOptions) {
    this.#options = options;
    const { entries, collective, shardState, hostKernel, encoding } = options;
    this.#ranks = new DataParallel(entries, collective, shardState, hostKernel, encoding);
  }

  /**
   * One data-parallel step, as what it waits for: the layout check, the
   * gradient exchange, then the step as on one process (or, with sharded
   * state, {@linkcode DataParallelStep.#shardedStep}), then the divergence
   * check when it is due.
   */
  *program(local: LocalStep, metrics: boolean, maxGradNorm: number): StepProgram {
    const ranks = this.#ranks;
    const layout = ranks.layoutOps();
    if (layout.length > 0) yield { ops: layout };
    const gate: StepGate = { nonFinite: this.#options.nonFinite, maxGradNorm };
    const scan = !gateNeedsScan(gate) ? null : gateNeedsSquares(gate) ? "squares" : "verdict";
    yield { ops: ranks.exchangeOps(scan) };
    ranks.settle();
    const request = local.prepare(metrics, maxGradNorm);
    if (request === undefined) return;
    const applied = ranks.shardState
      ? yield* this.#shardedStep(local, request)
      : yield* this.#replicatedStep(local, request);
    const every = this.#options.checkRanksEvery;
    if (applied && every > 0 && local.iterations() % every === 0) {
      yield { ops: ranks.divergenceOps(!ranks.shardState, local.iterations()) };
    }
  }

  /** The ranks. */
  get collective(): Collective {
    return this.#ranks.collective;
  }

  /**
   * Zeroes the exp_avg of the parameters taking their first step; with
   * sharded state only this rank's blocks, so the memory of the other
   * ranks' parts is never touched (and never committed by the OS).
   */
  startState(plan: StepPlan, fresh: readonly PlannedParameter[]): void {
    if (!this.#ranks.shardState) return LOCAL_STEP.startState(plan, fresh);
    const freshParams = new Set(fresh.map(({ param }) => param));
    const part = this.#shardOf(plan).plan;
    for (const p of part.params) {
      if (!freshParams.has(p.param)) continue;
      for (let b = p.firstBlock; b < p.firstBlock + p.blockCount; b++) {
        const block = part.blocks[b]!;
        const { buffer } = this.#options.arenas[block.arena]!.memory;
        new Float32Array(buffer, block.expAvg * 4, block.length).fill(0);
      }
    }
  }

  get stateElements(): number | undefined {
    return this.#ranks.shardState ? this.#shard?.part.elements ?? 0 : undefined;
  }

  get stateAway(): string | undefined {
    return this.#stateSharded
      ? "exp_avg is sharded across the ranks (shardState): await opt.pullState() on every rank first"
      : undefined;
  }

  /** Gathers every rank's part of exp_avg (an all-gather), where it is sharded. */
  async pullState(): Promise<void> {
    if (!this.#stateSharded) return;
    await runOps(this.#ranks.collective, this.#ranks.gatherOps("expAvg"));
    this.#stateSharded = false;
  }

  stateLoaded(): void {
    this.#stateSharded = false;
  }

  /**
   * The step where every rank holds the whole state: decided from the
   * scan the average took (the engine scans where it took none), then the
   * update on the engine.
   */
  *#replicatedStep(
    local: LocalStep,
    request: StepRequest,
  ): Generator<StepWait, boolean, StepResult> {
    const { gate, plan } = request;
    const scanned = gateNeedsScan(gate) ? this.#ranks.scanned(plan, gateNeedsSquares(gate)) : null;
    const next = decidedRun(request, decideFromScan(gate, scanned));
    return local.finish(
      request,
      "result" in next ? next.result : next.complete(yield { request: next.run }),
    );
  }

  /**
   * The step with sharded state (ZeRO-1), after the reduce-scatter: the
   * per-block sums of the scan this rank's average took all-reduced, so
   * that every rank takes the same decision, then the update of this
   * rank's blocks, then the metric partials all-reduced (once, packed) and
   * the parameters all-gathered.
   */
  *#shardedStep(
    local: LocalStep,
    request: StepRequest,
  ): Generator<StepWait, boolean, StepResult> {
    const part = this.#shardOf(request.plan);
    let gradSquares: Float64Array | null = null;
    if (gateNeedsScan(request.gate)) {
      gradSquares = this.#ranks.scanned(request.plan, gateNeedsSquares(request.gate));
      if (gradSquares === null) {
        throw new Error("The gradient exchange did not scan what the step needs");
      }
      yield { ops: [{ kind: "allReduceSum", buffer: gradSquares }] };
    }
    const decision = decideStep(request.gate, gradSquares);
    if (decision.action !== "update") {
      return local.finish(request, { decision, gradSquares, partials: null });
    }
    const result = yield {
      request: {
        ...request,
        plan: part.plan,
        groups: scaleGradients(request.groups, decision.gradScale),
        gate: DECIDED,
      },
    };
    const ops = this.#ranks.gatherOps("data");
    let sums: Float64Array | undefined;
    if (result.partials !== null) {
      const mine = partialsByParameter(part.plan, result.partials).sums;
      sums = new Float64Array(request.plan.params.length * PARTIAL_COUNT);
      part.stepParam.forEach((p, i) =>
        sums!.set(mine.subarray(i * PARTIAL_COUNT, (i + 1) * PARTIAL_COUNT), p * PARTIAL_COUNT)
      );
      ops.unshift({ kind: "allReduceSum", buffer: sums });
    }
    yield { ops };
    const partials = sums === undefined ? undefined : { names: request.plan.names, sums };
    const applied = local.finish(request, { decision, gradSquares, partials: null }, partials);
    this.#stateSharded = true;
    return applied;
  }

  /** This rank's part of `plan`, with sharded state (kept while the plan and buckets are). */
  #shardOf(plan: StepPlan): ShardPlan {
    const { buckets, collective } = this.#ranks;
    if (this.#shard?.plan !== plan || this.#shard.buckets !== buckets) {
      this.#shard = { plan, buckets, part: shardPlan(plan, buckets, collective.rank) };
    }
    return this.#shard.part;
  }
}
