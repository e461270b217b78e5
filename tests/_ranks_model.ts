// The model and gradients of the data-parallel tests: every rank builds the
// same parameters; rank r's gradients are multiples of 1/64 small enough that
// their float32 sum over the ranks is exact in any order, so the averaged
// gradient is known without MPI.
import {
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
