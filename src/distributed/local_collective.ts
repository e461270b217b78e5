/**
 * {@linkcode LocalCollective}: the group of one rank.
 *
 * @module
 */

import {
  type BlockingCollectives,
  checkCounts,
  type Collective,
  type CollectiveBuffer,
} from "./collective.ts";

/**
 * A collective of one rank (world size 1), where every collective leaves
 * its buffer as it is: the data-parallel code path on a single process, and
 * a stand-in for tests.
 *
 * @example A data-parallel optimizer on one process steps as a plain one
 * ```ts
 * import { DecoupledLionW, LocalCollective, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w], { lr: 0.5, collective: new LocalCollective() });
 * w.grad = [1, -1];
 * await opt.step();
 * assert.deepEqual([...w.data], [0.5, 1.5]);
 * ```
 */
export class LocalCollective implements Collective {
  /** Always 0. */
  readonly rank = 0;
  /** Always 1. */
  readonly worldSize = 1;
  /** The collectives, blocking (they return at once). */
  readonly blocking: BlockingCollectives = {
    allReduceSum: () => {},
    reduceScatter: (buffer, counts) => checkCounts("reduce-scatter", counts, 1, buffer.length),
    allGather: (buffer, counts) => checkCounts("all-gather", counts, 1, buffer.length),
    broadcast: (_buffer, root) => checkRoot(root),
    barrier: () => {},
  };

  /** Leaves `buffer` as it is: the sum over one rank. */
  allReduceSum(_buffer: CollectiveBuffer): Promise<void> {
    return Promise.resolve();
  }

  /** Leaves `buffer` as it is (`root` must be 0). */
  broadcast(buffer: CollectiveBuffer, root: number): Promise<void> {
    return settle(() => this.blocking.broadcast(buffer, root));
  }

  /** Resolves at once. */
  barrier(): Promise<void> {
    return Promise.resolve();
  }

  /** Leaves `buffer` as it is (`counts` must be `[buffer.length]`). */
  reduceScatter(buffer: CollectiveBuffer, counts: readonly number[]): Promise<void> {
    return settle(() => this.blocking.reduceScatter(buffer, counts));
  }

  /** Leaves `buffer` as it is (`counts` must be `[buffer.length]`). */
  allGather(buffer: CollectiveBuffer, counts: readonly number[]): Promise<void> {
    return settle(() => this.blocking.allGather(buffer, counts));
  }

  /** Nothing to end. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function checkRoot(root: number): void {
  if (root !== 0) {
    throw new RangeError(
      `Cannot broadcast as 'root' must be 0 in a group of one: current value is ${root}`,
    );
  }
}

function settle(run: () => void): Promise<void> {
  try {
    run();
    return Promise.resolve();
  } catch (error) {
    return Promise.reject(error);
  }
}
