// The model and gradients of the data-parallel tests: every rank builds the
// same parameters; rank r's gradients are multiples of 1/64 small enough that
// their float32 sum over the ranks is exact in any order, so the averaged
// gradient is known without MPI.
import assert from "node:assert/strict";
import {
  type Collective,
  type CollectiveBuffer,
  type DecoupledLionW,
  type Parameter,
  ParameterStore,
  type ParamGroupOptions,
} from "../mod.ts";

/** Steps each scenario takes. */
export const SCENARIO_STEPS = 5;

/** The test model. */
export interface RanksModel {
  readonly params: Parameter[];
  readonly groups: ParamGroupOptions[];
}

/**
 * The parameters: a 1,200×1,000 weight (two gradient buckets, 74 blocks), a
 * bias, an embedding, one parameter no rank has a gradient for, and one
 * frozen. `extra` adds a parameter (a rank that built another model).
 */
export function buildModel(options: { extra?: boolean } = {}): RanksModel {
  const store = new ParameterStore();
  const init = (n: number, seed: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
  const weight = store.add("fc.weight", [1200, 1000], init(1_200_000, 1));
  const bias = store.add("fc.bias", [1000], init(1000, 2));
  const frozen = store.add("frozen", [10], init(10, 3));
  const emb = store.add("emb", [300, 7], init(2100, 4));
  const unused = store.add("unused", [5], init(5, 5));
  const params = [weight, bias, emb, unused];
  if (options.extra) params.push(store.add("extra", [3]));
  frozen.requiresGrad = false;
  return {
    params,
    groups: [
      { params: [weight, emb], weightDecay: 0.1 },
      { params: params.filter((p) => p !== weight && p !== emb), weightDecay: 0, lr: 0.02 },
    ],
  };
}

/**
 * Rank `rank`'s gradient of parameter `index` at `step`: `null` where the
 * rank has none ("unused" never; the bias on rank 1 at step 2), a NaN on
 * rank 1 at step 3 (every rank must skip that step).
 */
export function rankGradient(
  rank: number,
  step: number,
  index: number,
  size: number,
): Float32Array | null {
  if (index === 3) return null;
  if (index === 1 && rank === 1 && step === 2) return null;
  const grad = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    grad[i] = ((((i * 7 + step * 13 + rank * 29 + index * 3) % 129) + 129) % 129 - 64) / 64;
  }
  if (index === 2 && rank === 1 && step === 3) grad[5] = NaN;
  return grad;
}

/** What a rank ended with: every parameter's values, then every exp_avg, as float32 bytes. */
export function snapshot(model: RanksModel, opt: DecoupledLionW): Uint8Array {
  const parts = model.params.flatMap((
    p,
  ) => [p.data, opt.state(p)?.expAvg ?? new Float32Array(p.size)]);
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), at);
    at += part.byteLength;
  }
  return out;
}

/** Rank `r`'s value at `i` in the collectives check: small integers, so every sum is exact. */
const contribution = (r: number, i: number) => ((i * 7 + r * 13) % 31) - 15;

/**
 * Every collective, awaited and blocking, float32 and float64, on parts of
 * every shape (empty, one element, a rank's part larger or smaller than the
 * parts before it: MPICH 4.0's in-place reduce-scatter aborts on some of
 * them), each checked against its definition.
 */
export async function checkCollectives(comm: Collective): Promise<void> {
  const { rank, worldSize: n } = comm;
  const shapes = [
    Array.from({ length: n }, () => 1),
    Array.from({ length: n }, (_, r) => (r === 0 ? 0 : 151_424)),
    Array.from({ length: n }, (_, r) => (r === n - 1 ? 0 : 100_000 + r)),
    Array.from({ length: n }, (_, r) => (r % 2 === 0 ? 3 : 200_000)),
  ];
  for (const counts of shapes) {
    const total = counts.reduce((a, b) => a + b, 0);
    const start = counts.slice(0, rank).reduce((a, b) => a + b, 0);
    const mine = (make: (length: number) => CollectiveBuffer) => {
      const buffer = make(total);
      for (let i = 0; i < total; i++) buffer[i] = contribution(rank, i);
      return buffer;
    };
    const sum = (i: number) =>
      Array.from({ length: n }, (_, r) => contribution(r, i)).reduce((a, b) => a + b, 0);
    const owner = (i: number) =>
      counts.findIndex((_, r) => i < counts.slice(0, r + 1).reduce((a, b) => a + b, 0));
    for (const make of [(l: number) => new Float32Array(l), (l: number) => new Float64Array(l)]) {
      for (const blocking of [false, true]) {
        const what = `${JSON.stringify(counts)} ${make(0).constructor.name}${
          blocking ? " blocking" : ""
        }`;
        const reduced = mine(make);
        if (blocking) comm.blocking!.allReduceSum(reduced);
        else await comm.allReduceSum(reduced);
        for (let i = 0; i < total; i++) {
          assert.equal(reduced[i], sum(i), `allReduceSum ${what} at ${i}`);
        }
        const scattered = mine(make);
        if (blocking) comm.blocking!.reduceScatter(scattered, counts);
        else await comm.reduceScatter(scattered, counts);
        for (let i = start; i < start + counts[rank]!; i++) {
          assert.equal(scattered[i], sum(i), `reduceScatter ${what} at ${i}`);
        }
        const gathered = make(total).fill(-99);
        for (let i = start; i < start + counts[rank]!; i++) gathered[i] = contribution(rank, i);
        if (blocking) comm.blocking!.allGather(gathered, counts);
        else await comm.allGather(gathered, counts);
        for (let i = 0; i < total; i++) {
          assert.equal(gathered[i], contribution(owner(i), i), `allGather ${what} at ${i}`);
        }
        const root = n - 1;
        const sent = mine(make);
        if (blocking) comm.blocking!.broadcast(sent, root);
        else await comm.broadcast(sent, root);
        for (let i = 0; i < total; i++) {
          assert.equal(sent[i], contribution(root, i), `broadcast ${what}`);
        }
        if (blocking) comm.blocking!.barrier();
        else await comm.barrier();
      }
    }
  }
}
