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

import type { HostWrites, StateResidence } from "./engine.ts";
import { type GroupConstants, type LionKernel, scaleGradients } from "./kernel.ts";
import type { StepDecision } from "./step_decision.ts";
import { blocksByArena, type PlannedBlock } from "./step_plan.ts";

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
  /** Writes `Σg²` of each block to `out[block]`, in float64, on the host. */
  scan(out: Float64Array): void;
  /**
   * Updates the blocks, writing their partial sums to `partials` when given.
   *
   * @param groups Float32 constants per group.
   * @param writes What the host wrote since the last step.
   * @param partials `PARTIAL_COUNT` sums per block, or `null`.
   */
  update(
    groups: readonly GroupConstants[],
    writes: HostWrites,
    partials: Float64Array | null,
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
    scan(out) {
      for (const { arena, segments } of runs) {
        kernel.sumSquaredGradients(memories[arena]!, segments, out);
      }
    },
    update(groups, _writes, partials) {
      for (const { arena, segments } of runs) {
        kernel.update(memories[arena]!, segments, groups, partials);
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
  /** Where the scan writes `Σg²` per block (indexed by block). */
  readonly gradSquares: Float64Array;
  /** Float32 constants per group. */
  readonly groups: readonly GroupConstants[];
  /** What the host wrote since the last step. */
  readonly writes: HostWrites;
  /** Where the update writes its partial sums, or `null` without metrics. */
  readonly partials: Float64Array | null;
}

/**
 * Steps one shard: scan (when asked), meet the other shards and take the
 * step's decision, then update if it says so.
 *
 * @param runner The shard's runner.
 * @param step The step.
 * @param meet Waits until every shard has scanned and returns the decision
 * taken from all their sums (one shard: decides at once).
 * @returns The decision.
 */
export async function stepShard(
  runner: ShardRunner,
  step: ShardStep,
  meet: () => StepDecision,
): Promise<StepDecision> {
  if (step.scan) runner.scan(step.gradSquares);
  const decision = meet();
  if (decision.action !== "update") return decision;
  await runner.update(scaleGradients(step.groups, decision.gradScale), step.writes, step.partials);
  return decision;
}
