/**
 * The sign-vote step driver (`exchange: "sign-vote"`, Distributed Lion):
 * each rank keeps its own momentum, and the ranks exchange the signs of
 * their updates (one bit an element) instead of their gradients. A step is
 * the layout check, the count of ranks with each gradient, this rank's
 * verdict on its gradients where the non-finite policy asks (taken as the
 * library wrote them where it did, else by a scan) all-reduced (so every
 * rank skips, or throws, together), its update signs packed, the count of
 * abstentions all-reduced, the bits all-gathered run by run, and the vote
 * applied by every rank as it arrives: the same voted update on the same
 * parameters, so the parameters stay bit-identical across the ranks.
 *
 * @module
 */

import type { Collective } from "./collective.ts";
import type { CollectiveOp } from "./collective_ops.ts";
import { DataParallel, type DataParallelEntry } from "./data_parallel.ts";
import { BUCKET_ELEMENTS } from "./gradient_buckets.ts";
import { BallotBox } from "./ballot_box.ts";
import {
  applyVote,
  applyVoteOnKernel,
  packUpdateSigns,
  packVotesOnKernel,
  voteWords,
} from "./sign_vote.ts";
import { LOCAL_STEP, type LocalStep, type StepDriver, type StepProgram } from "./step_driver.ts";
import { type GroupConstants, type LionKernel, PARTIAL_COUNT } from "../kernels/kernel.ts";
import { decideStep, gateNeedsScan } from "../step/step_decision.ts";
import {
  blocksByArena,
  type PlannedBlock,
  type PlannedParameter,
  type StepPlan,
} from "../step/step_plan.ts";
import { writtenScan } from "../step/written_scan.ts";
import type { Arena } from "../store/arena.ts";

/**
 * Elements whose bits one all-gather moves, where the ranks' waits block
 * (and so progress every collective as soon as it can): runs of four
 * gradient buckets, each voted while the next one travels. Where they poll
 * (a rank asleep between tests progresses nothing, and every collective
 * costs back-offs), all the bits go in one all-gather of up to
 * {@linkcode POLLING_RUN_ELEMENTS}. `deno task bench:dist --net`, 16M
 * parameters at 1 Gbit/s: blocking on 2 hosts, four alternating runs,
 * 64–77 ms a step in runs of 4M, 65–86 in runs of 1M (and 94–102 in one,
 * before the tally moved into the kernel); polling on 3 hosts, 167–184 in
 * one against 363–447 in runs of 1M.
 */
export const BLOCKING_RUN_ELEMENTS: number = 4 * BUCKET_ELEMENTS;
/** Elements whose bits one all-gather moves where the ranks' waits poll: see {@linkcode BLOCKING_RUN_ELEMENTS}. */
export const POLLING_RUN_ELEMENTS: number = 2 ** 24;

/** What the driver is built from. */
export interface SignVoteStepOptions {
  /** Every parameter of the optimizer, in group order. */
  readonly entries: readonly DataParallelEntry[];
  /** The ranks. */
  readonly collective: Collective;
  /** Check that the ranks' parameters agree every this many applied steps (0: never). */
  readonly checkRanksEvery: number;
  /** The store's arenas. */
  readonly arenas: readonly Arena[];
  /** The engine's kernel on the host: it scans the gradients for the verdict. */
  readonly hostKernel: LionKernel;
}

/** A run of a step's blocks whose bits one all-gather moves. */
interface VoteRun {
  /** Its blocks. */
  readonly blocks: readonly PlannedBlock[];
  /** Each block's first word, in a rank's part. */
  readonly words: readonly number[];
  /** Every rank's bits (this rank's part written by the pack), and the masks counted from them. */
  readonly box: BallotBox;
}

/** Drives steps that exchange the signs of the ranks' updates. */
export class SignVoteStep implements StepDriver {
  readonly #ranks: DataParallel;
  readonly #options: SignVoteStepOptions;
  #runs: { readonly plan: StepPlan; readonly runs: readonly VoteRun[] } | undefined;

  /** @param options The parameters and the ranks. */
  constructor(options: SignVoteStepOptions) {
    this.#options = options;
    this.#ranks = new DataParallel(options.entries, options.collective, false, options.hostKernel);
  }

  /** The ranks. */
  get collective(): Collective {
    return this.#ranks.collective;
  }

  /**
   * One step: the layout check, the gradients' presence, this rank's signs
   * packed and its verdict taken, the verdicts all-reduced, then the bits
   * all-gathered and the vote applied, run by run.
   */
  *program(local: LocalStep, metrics: boolean, maxGradNorm: number): StepProgram {
    if (Number.isFinite(maxGradNorm)) {
      throw new RangeError(
        `Cannot step with maxGradNorm ${maxGradNorm} as the "sign-vote" exchange applies the ranks' voted signs, whose size clipping cannot change: use exchange "float32" or "bfloat16" to clip`,
      );
    }
    const ranks = this.#ranks;
    const layout = ranks.layoutOps();
    if (layout.length > 0) yield { ops: layout };
    yield { ops: ranks.presenceOps(true) };
    ranks.settle();
    const request = local.prepare(metrics, maxGradNorm);
    if (request === undefined) return;
    const cautious = request.groups.findIndex((group) => group.cautious !== 0);
    if (cautious >= 0) {
      throw new RangeError(
        `Cannot step as paramGroups[${cautious}] is cautious, which the "sign-vote" exchange does not support: the vote replaces the update a caution factor would mask`,
      );
    }
    const { plan, gate } = request;
    const runs = this.#runsOf(plan);
    const { arenas, hostKernel } = this.#options;
    // the verdict first, before anything is written: every rank skips (or throws) together
    let verdicts: Float64Array | null = null;
    if (gateNeedsScan(gate)) {
      // the gradients are not rewritten before the vote: the scans their writes took hold
      verdicts = writtenScan(plan, false);
      if (verdicts === null) {
        verdicts = new Float64Array(plan.blocks.length);
        for (const { arena, segments } of blocksByArena(plan.blocks)) {
          hostKernel.scanGradients(arenas[arena]!.memory, segments, verdicts, false);
        }
      }
      yield { ops: [{ kind: "allReduceSum", buffer: verdicts }] };
    }
    const decision = decideStep(gate, verdicts);
    if (decision.action !== "update") {
      local.finish(request, { decision, gradSquares: verdicts, partials: null });
      return;
    }
    // this rank's signs: the metrics read the step's g, so they take the scalar way, which
    // writes nothing yet; otherwise the kernel moves the momentum and packs the signs
    const fast = !request.metrics;
    const { rank } = this.collective;
    const abstaining = new Float64Array(runs.length);
    runs.forEach(({ blocks, words, box }, i) =>
      blocks.forEach((block, b) => {
        const { memory } = arenas[block.arena]!;
        const k = request.groups[block.group]!;
        const word = rank * box.stride + words[b]!;
        abstaining[i]! += fast
          ? packVotesOnKernel(hostKernel, memory, block, k, box, word)
          : packUpdateSigns(new Float32Array(memory.buffer), block, k, box.signs, box.voting, word);
      })
    );
    yield { ops: [{ kind: "allReduceSum", buffer: abstaining }] };
    const partials = request.metrics ? new Float64Array(plan.blocks.length * PARTIAL_COUNT) : null;
    yield {
      ops: runs.flatMap((run, i) =>
        this.#voteOps(run, abstaining[i]! > 0, request.groups, partials, fast)
      ),
    };
    // the step consumed the gradients (the fast way left its scratch in their slots)
    for (const { slots } of plan.params) slots.hasGrad = false;
    const applied = local.finish(request, { decision, gradSquares: verdicts, partials });
    const every = this.#options.checkRanksEvery;
    if (applied && every > 0 && local.iterations() % every === 0) {
      yield { ops: ranks.divergenceOps(false, local.iterations()) };
    }
  }

  /** The all-gathers of a run's bits (its voting bits too where some rank abstains), then the vote. */
  #voteOps(
    run: VoteRun,
    abstaining: boolean,
    groups: readonly GroupConstants[],
    partials: Float64Array | null,
    fast: boolean,
  ): CollectiveOp[] {
    const { box } = run;
    const counts = new Array<number>(this.collective.worldSize).fill(box.stride);
    const { arenas, hostKernel } = this.#options;
    const apply = () => {
      box.tally(hostKernel, abstaining);
      run.blocks.forEach((block, b) => {
        const { memory } = arenas[block.arena]!;
        const k = groups[block.group]!;
        const word = run.words[b]!;
        if (fast) applyVoteOnKernel(hostKernel, memory, block, k, box, word);
        else applyVote(new Float32Array(memory.buffer), block, k, box.masks, word, partials);
      });
    };
    // the bits travel as float32 words: an all-gather copies them as they are
    const signs: CollectiveOp = {
      kind: "allGather",
      buffer: new Float32Array(box.signs.buffer, box.signs.byteOffset, box.signs.length),
      counts,
      ...(abstaining ? {} : { then: apply }),
    };
    if (!abstaining) return [signs];
    return [signs, {
      kind: "allGather",
      buffer: new Float32Array(box.voting.buffer, box.voting.byteOffset, box.voting.length),
      counts,
      then: apply,
    }];
  }

  /** The step's blocks cut into runs (see {@linkcode BLOCKING_RUN_ELEMENTS}), with their bit buffers (kept while the plan is). */
  #runsOf(plan: StepPlan): readonly VoteRun[] {
    if (this.#runs?.plan === plan) return this.#runs.runs;
    const { worldSize } = this.collective;
    // MpiCollective says how its ranks wait; any other collective is taken to block
    const polls = (this.collective as { readonly progress?: unknown }).progress === "poll";
    const runElements = polls ? POLLING_RUN_ELEMENTS : BLOCKING_RUN_ELEMENTS;
    const runs: VoteRun[] = [];
    let blocks: PlannedBlock[] = [];
    let elements = 0;
    const close = () => {
      if (blocks.length === 0) return;
      const words: number[] = [];
      let part = 0;
      for (const block of blocks) {
        words.push(part);
        part += voteWords(block.length);
      }
      runs.push({ blocks, words, box: new BallotBox(part, worldSize) });
      blocks = [];
      elements = 0;
    };
    for (const block of plan.blocks) {
      if (elements + block.length > runElements) close();
      blocks.push(block);
      elements += block.length;
    }
    close();
    this.#runs = { plan, runs };
    return runs;
  }

  /** Zeroes the momentum of the parameters taking their first step, as on one process. */
  startState(plan: StepPlan, fresh: readonly PlannedParameter[]): void {
    LOCAL_STEP.startState(plan, fresh);
  }

  /** Each rank keeps its own momentum, whole. */
  readonly stateElements: undefined = undefined;
  /** Each rank's state is here. */
  readonly stateAway: undefined = undefined;

  /** Nothing to gather: each rank's momentum is its own. */
  pullState(): Promise<void> {
    return Promise.resolve();
  }

  stateLoaded(): void {}
}
