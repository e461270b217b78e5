/**
 * Lists of collectives run one after another, blocking or not. The
 * data-parallel step is written once as such lists; `stepSync()` runs them
 * blocking, `step()` starts them all (the collective queues them) and runs
 * each one's follow-up as soon as it completes, while the next is in flight.
 *
 * @module
 */

import type { Collective, CollectiveBuffer } from "./collective.ts";

/** One collective and what to do once it completed. */
export interface CollectiveOp {
  /** Which collective. */
  readonly kind: "allReduceSum" | "reduceScatter" | "allGather";
  /** Its buffer. */
  readonly buffer: CollectiveBuffer;
  /** Elements per rank, for `reduceScatter` and `allGather`. */
  readonly counts?: readonly number[];
  /** Runs once the collective completed (before the next one's follow-up). */
  readonly then?: () => void;
}

/**
 * Runs `ops` in order without blocking: all are started at once, and each
 * follow-up runs as its collective completes.
 *
 * @param collective The ranks.
 * @param ops The collectives.
 */
export async function runOps(collective: Collective, ops: readonly CollectiveOp[]): Promise<void> {
  const started = ops.map((op) => start(collective, op));
  for (const promise of started) promise.catch(() => {}); // the first failure is thrown below
  try {
    for (const [i, promise] of started.entries()) {
      await promise;
      ops[i]!.then?.();
    }
  } catch (error) {
    // the collectives behind a failed one still write their buffers: let them finish first
    await Promise.allSettled(started);
    throw error;
  }
}

/**
 * Runs `ops` in order, blocking the calling thread.
 *
 * @param collective The ranks; they must offer blocking collectives.
 * @param ops The collectives.
 * @throws {RangeError} When the collective has no blocking form.
 */
export function runOpsSync(collective: Collective, ops: readonly CollectiveOp[]): void {
  const blocking = collective.blocking;
  if (blocking === undefined) {
    throw new RangeError(
      "Cannot step synchronously as the collective has no blocking form ('blocking'): use step()",
    );
  }
  for (const op of ops) {
    if (op.kind === "allReduceSum") blocking.allReduceSum(op.buffer);
    else blocking[op.kind](op.buffer, op.counts!);
    op.then?.();
  }
}

function start(collective: Collective, op: CollectiveOp): Promise<void> {
  return op.kind === "allReduceSum"
    ? collective.allReduceSum(op.buffer)
    : collective[op.kind](op.buffer, op.counts!);
}
