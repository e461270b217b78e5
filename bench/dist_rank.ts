/**
 * One rank of `deno task bench:dist` (bench/dist.ts launches it under
 * mpiexec.mpich): times the all-reduce against a memcpy of the same size,
 * and a data-parallel step of a 16M-parameter model, unsharded and with
 * sharded state; rank 0 prints the medians as one JSON line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
import { MpiCollective, type ProgressMode } from "@decoupled/lionw/mpi";
import { median } from "./_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { progress: { type: "string" }, reps: { type: "string" }, elements: { type: "string" } },
});
const comm = await MpiCollective.init({
  progress: (values.progress ?? "auto") as ProgressMode | "auto",
});
const reps = Number(values.reps ?? 7);
const modelElements = Number(values.elements ?? 2 ** 24);

/** Median ms of `run`, every rank starting together. */
async function time(run: () => Promise<void> | void, count = reps): Promise<number> {
  await run(); // warm-up: first touch of the pages, MPI's buffers
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    await comm.barrier();
    const start = performance.now();
    await run();
    ms.push(performance.now() - start);
  }
  return median(ms);
}

/** The models' stores, kept alive: a store freed by GC would lower the RSS the next one's is read from. */
const kept: ParameterStore[] = [];

/** Median step of the model, data-parallel over the ranks. */
async function stepTime(shardState: boolean) {
  const rssBefore = Deno.memoryUsage().rss;
  const store = new ParameterStore();
  kept.push(store);
  const tensors = 16;
  const params = Array.from({ length: tensors }, (_, i) => {
    const p = store.add(`layer${i}.weight`, [modelElements / tensors]);
    p.data.fill(0.01 * (i + 1));
    p.ensureGrad().fill(0.001 * (1 + comm.rank)); // averaged in place every step: stays finite
    return p;
  });
  const opt = new DecoupledLionW(params, {
    lr: 1e-4,
    weightDecay: 0.1,
    workers: 0,
    collective: comm,
    shardState,
    logger: null,
  });
  const stepMs = await time(() => opt.step() as Promise<undefined>);
  const report = {
    stepMs,
    stateMiB: (opt.stateElements * 4) / 2 ** 20,
    // what this model added to the process: params, grads and the exp_avg this rank touched
    rssMiB: (Deno.memoryUsage().rss - rssBefore) / 2 ** 20,
  };
  await opt.close();
  return report;
}

// the models first: the all-reduce's buffers, freed by GC, would lower the RSS they are read from
const unsharded = await stepTime(false);
const sharded = await stepTime(true);
const allReduce: { bytes: number; allReduceMs: number; memcpyMs: number }[] = [];
for (const elements of [2 ** 18, 2 ** 20, 2 ** 24]) {
  const buffer = new Float32Array(elements).fill(1 + comm.rank);
  const copy = new Float32Array(elements);
  allReduce.push({
    bytes: elements * 4,
    allReduceMs: await time(() => comm.allReduceSum(buffer)),
    memcpyMs: await time(() => copy.set(buffer)),
  });
}

if (comm.rank === 0) {
  console.log(
    "BENCH_JSON " +
      JSON.stringify({
        ranks: comm.worldSize,
        progress: comm.progress,
        library: comm.library,
        modelElements,
        allReduce,
        unsharded,
        sharded,
      }),
  );
}
await comm.close();
