/**
 * The shard plan of sharded optimizer state (ZeRO-1): the blocks of a
 * step's plan that this rank owns (those in its part of each gradient
 * bucket), numbered anew for its engine, with the way back to the step's
 * own block and parameter numbers, which every rank shares.
 *
 * @module
 */

import type { Bucket } from "./gradient_buckets.ts";
import type { PlannedBlock, PlannedParameter, StepPlan } from "../step/step_plan.ts";

/** This rank's part of a step. */
export interface ShardPlan {
  /** The owned blocks, as a plan of their own (what the engine updates). */
  readonly plan: StepPlan;
  /** The step plan's index of each owned block. */
  readonly stepBlock: Int32Array;
  /** The step plan's index of each parameter of the shard plan. */
  readonly stepParam: Int32Array;
  /** Elements this rank owns. */
  readonly elements: number;
}

/**
 * The blocks of `plan` that `rank` owns.
 *
 * @param plan The step's plan (every rank's).
 * @param buckets The gradient buckets, split between the ranks.
 * @param rank This rank.
 * @returns The shard plan.
 */
export function shardPlan(plan: StepPlan, buckets: readonly Bucket[], rank: number): ShardPlan {
  const owned = new Set<string>();
  for (const bucket of buckets) {
    for (let b = bucket.owners[rank]!; b < bucket.owners[rank + 1]!; b++) {
      owned.add(`${bucket.arena}:${bucket.blocks[b]!.grad}`);
    }
  }
  const mine = plan.blocks.filter((block) => owned.has(`${block.arena}:${block.grad}`));
  const blocks: PlannedBlock[] = [];
  const params: PlannedParameter[] = [];
  const stepParam: number[] = [];
  const paramOfBlock = new Map(
    plan.params.flatMap((p, i) =>
      Array.from({ length: p.blockCount }, (_, k) => [p.firstBlock + k, i])
    ),
  );
  let elements = 0;
  for (const block of mine) {
    const p = paramOfBlock.get(block.block)!;
    if (stepParam.at(-1) !== p) {
      stepParam.push(p);
      params.push({ ...plan.params[p]!, firstBlock: blocks.length, blockCount: 0 });
    }
    const param = params.at(-1)!;
    params[params.length - 1] = { ...param, blockCount: param.blockCount + 1 };
    blocks.push({ ...block, block: blocks.length, firstBlock: param.firstBlock });
    elements += block.length;
  }
  return {
    plan: { params, blocks, names: params.map(({ param }) => param.name) },
    stepBlock: Int32Array.from(mine, (block) => block.block),
    stepParam: Int32Array.from(stepParam),
    elements,
  };
}
