/**
 * The shard runner: what updates one shard (a list of blocks), on the
 * calling thread or in a shard worker. Both engines step a shard with
 * {@linkcode stepShard} — scan, meet, decide, update — so that order is
 * written once; they differ only in how shards meet.
 *
 * Two runners: {@linkcode inPlaceRunner} (a CPU kernel over the store's
 * memory) here, and the gpujs device runner (gpu/device_runner.ts), which
 * keeps its shard on a device between steps.
 *
 * @module
 */

import type { StateResidence } from "./backends.ts";
import type { HostWrites } from "./engine.ts";
import { type GroupConstants, type LionKernel, scaleGradients } from "../kernels/kernel.ts";
import { ABORT, type StepDecision } from "../step/step_decision.ts";
import { blocksByArena, type PlannedBlock } from "../step/step_plan.ts";

/** Updates one shard's blocks. */
export interface ShardRunner {
  /** Where exp_avg lives between steps. */
  readonly stateLives: StateResidence;
  /**
   * Takes a new list of blocks (the plan or the shard changed).
   *
   * @param blocks The shard's blocks, in block order.
   * @param writes What the host wrote since the last step.
   */
  assign(blocks: readonly PlannedBlock[], writes: HostWrites): void | Promise<void>;
  /**
   * The gradient scan, on the host: writes `Σg²` of each block to
   * `out[block]` in float64 when `squares`, else the non-finite verdict
   * alone (NaN or 0; see `LionKernel.scanGradients`).
   */
  scan(out: Float64Array, squares: boolean): void;
  /**
   * Writes the agreeing elements of each block of a cautious group to
   * `out[block]` (the caution mask's count), on the host.
   *
   * @param groups Float32 constants per group, gradients scaled.
   * @param out Counts per block.
   */
  count(groups: readonly GroupConstants[], out: Float64Array): void;
  /**
   * Updates the blocks, writing their partial sums to `partials` when given.
   *
   * @param groups Float32 constants per group.
   * @param writes What the host wrote since the last step.
   * @param partials `PARTIAL_COUNT` sums per block, or `null`.
   * @param caution The caution factor per block, or `null` when no group is cautious.
   */
  update(
    groups: readonly GroupConstants[],
    writes: HostWrites,
    partials: Float64Array | null,
    caution: Float32Array | null,
  ): void | Promise<void>;
  /** Brings state kept on a device back into the store's memory. */
  pull(): void | Promise<void>;
  /** Releases what the runner holds (a device). */
  close(): void | Promise<void>;
}

/**
 * A runner over a CPU kernel: updates the store's memory in place, so there
 * is nothing to pull.
 *
 * @param kernel The kernel.
 * @param memories The store's memories, by arena.
 * @returns The runner.
 */
export function inPlaceRunner(
  kernel: LionKernel,
  memories: readonly WebAssembly.Memory[],
): ShardRunner {
  let runs: ReturnType<typeof blocksByArena> = [];
  return {
    stateLives: "host",
    assign(blocks) {
      runs = blocksByArena(blocks);
    },
    scan(out, squares) {
      for (const { arena, segments } of runs) {
        kernel.scanGradients(memories[arena]!, segments, out, squares);
      }
    },
    count(groups, out) {
      for (const { arena, segments } of runs) {
        kernel.countAgreement(memories[arena]!, segments, groups, out);
      }
    },
    update(groups, _writes, partials, caution) {
      for (const { arena, segments } of runs) {
        kernel.update(memories[arena]!, segments, groups, partials, caution);
      }
    },
    pull() {},
    close() {},
  };
}

/** One step of one shard. */
export interface ShardStep {
  /** Run the gradient scan first (the gate needs it). */
  readonly scan: boolean;
  /** Whether the scan sums squares (a gate uses the norm), or finds non-finite values only. */
  readonly squares: boolean;
  /** Where the scan writes `Σg²` (or its verdict) per block (indexed by block). */
  readonly gradSquares: Float64Array;
  /** Float32 constants per group. */
  readonly groups: readonly GroupConstants[];
  /** What the host wrote since the last step. */
  readonly writes: HostWrites;
  /** Where the update writes its partial sums, or `null` without metrics. */
  readonly partials: Float64Array | null;
  /** Where the caution count writes (indexed by block), or `null` when no group is cautious. */
  readonly counts: Float64Array | null;
}

/** How a shard meets the others: after the scan, and after the caution count. */
export interface ShardMeetings {
  /**
   * Waits until every shard has scanned and returns the decision taken
   * from all their sums (one shard: decides at once).
   */
  decide(): StepDecision;
  /**
   * Waits until every shard has counted and returns the caution factor of
   * every block, or `null` when the step must stop (another shard failed).
   */
  caution(): Float32Array | null;
}

/**
 * Steps one shard: scan (when asked), meet the other shards and take the
 * step's decision; in a cautious step, count, meet again for the caution
 * factors; then update if the decision says so.
 *
 * @param runner The shard's runner.
 * @param step The step.
 * @param meet How shards meet.
 * @returns The decision (`abort` when another shard failed between the
 * meetings): at once when the runner updates synchronously (the CPU
 * kernels, which synchronous steps need), else once its update settles.
 */
export function stepShard(
  runner: ShardRunner,
  step: ShardStep,
  meet: ShardMeetings,
): StepDecision | Promise<StepDecision> {
  if (step.scan) runner.scan(step.gradSquares, step.squares);
  const decision = meet.decide();
  if (decision.action !== "update") return decision;
  const groups = scaleGradients(step.groups, decision.gradScale);
  let caution: Float32Array | null = null;
  if (step.counts !== null) {
    runner.count(groups, step.counts);
    caution = meet.caution();
    if (caution === null) return ABORT;
  }
  const updated = runner.update(groups, step.writes, step.partials, caution);
  return updated instanceof Promise ? updated.then(() => decision) : decision;
}

/**
 * Whether a step needs the caution count: some group is cautious.
 *
 * @param groups The step's constants.
 * @returns `true` when one group is.
 */
export function stepIsCautious(groups: readonly GroupConstants[]): boolean {
  return groups.some((k) => k.cautious !== 0);
}
