/**
 * A data-parallel job inside one process, for tests without MPI: N
 * `Collective`s whose operations meet in a rendezvous (the i-th call of
 * every rank is one collective) and complete together. Sums add the ranks'
 * values in rank order (float32 rounding per addition, float64 for float64
 * buffers), so a test can compute the same sums itself.
 */

import type { Collective, CollectiveBuffer } from "../mod.ts";

type Kind = "allReduceSum" | "reduceScatter" | "allGather" | "broadcast" | "barrier";

interface Round {
  kind: Kind;
  buffers: (CollectiveBuffer | undefined)[];
  counts: readonly number[] | undefined;
  root: number;
  resolvers: (() => void)[];
  arrived: number;
}

/** The start of each rank's part, for `counts`. */
function starts(counts: readonly number[]): number[] {
  let at = 0;
  return counts.map((count) => ((at += count), at - count));
}

function complete(round: Round, worldSize: number): void {
  const buffers = round.buffers as CollectiveBuffer[];
  const float32 = buffers[0] instanceof Float32Array;
  const sum = (i: number) => {
    let total = 0;
    for (const buffer of buffers) {
      total = float32 ? Math.fround(total + buffer[i]!) : total + buffer[i]!;
    }
    return total;
  };
  if (round.kind === "allReduceSum" || round.kind === "reduceScatter") {
    const sums = Array.from({ length: buffers[0]!.length }, (_, i) => sum(i));
    if (round.kind === "allReduceSum") { for (const buffer of buffers) buffer.set(sums); }
    else {
      const at = starts(round.counts!);
      buffers.forEach((buffer, r) => {
        for (let i = at[r]!; i < at[r]! + round.counts![r]!; i++) buffer[i] = sums[i]!;
      });
    }
  } else if (round.kind === "allGather") {
    const at = starts(round.counts!);
    for (let r = 0; r < worldSize; r++) {
      const part = buffers[r]!.subarray(at[r]!, at[r]! + round.counts![r]!);
      for (const buffer of buffers) buffer.set(part, at[r]!);
    }
  } else if (round.kind === "broadcast") {
    for (const buffer of buffers) buffer.set(buffers[round.root]!);
  }
}

/**
 * The ranks of a job in this process.
 *
 * @param worldSize How many.
 * @returns One collective per rank.
 */
export function inProcessRanks(worldSize: number): Collective[] {
  const rounds = new Map<number, Round>();
  const calls = new Array<number>(worldSize).fill(0);
  const call = (
    rank: number,
    kind: Kind,
    buffer?: CollectiveBuffer,
    counts?: readonly number[],
    root = 0,
  ): Promise<void> => {
    const seq = calls[rank]!++;
    let round = rounds.get(seq);
    if (round === undefined) {
      round = { kind, buffers: [], counts, root, resolvers: [], arrived: 0 };
      rounds.set(seq, round);
    }
    if (round.kind !== kind) {
      return Promise.reject(
        new Error(`rank ${rank} called ${kind} where another rank called ${round.kind}`),
      );
    }
    round.buffers[rank] = buffer;
    return new Promise((resolve) => {
      round.resolvers[rank] = resolve;
      if (++round.arrived < worldSize) return;
      rounds.delete(seq);
      if (kind !== "barrier") complete(round, worldSize);
      for (const done of round.resolvers) done();
    });
  };
  return Array.from({ length: worldSize }, (_, rank) => ({
    rank,
    worldSize,
    allReduceSum: (buffer) => call(rank, "allReduceSum", buffer),
    reduceScatter: (buffer, counts) => call(rank, "reduceScatter", buffer, counts),
    allGather: (buffer, counts) => call(rank, "allGather", buffer, counts),
    broadcast: (buffer, root) => call(rank, "broadcast", buffer, undefined, root),
    barrier: () => call(rank, "barrier"),
    close: () => Promise.resolve(),
  }));
}
