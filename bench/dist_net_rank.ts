/**
 * One rank of `deno task bench:dist --net` (bench/dist.ts launches it across
 * network namespaces, one rank a "host", over TCP): a data-parallel step of
 * a 16M-parameter model (16 tensors, wasm on the calling thread) in each
 * exchange, timed, with the bytes this rank's interface sent during the
 * timed steps (its counter, read in its namespace); rank 0 also times the
 * update alone (no collective) and prints the medians as one JSON line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DecoupledLionW, type Exchange, ParameterStore } from "@decoupled/lionw";
import { MpiCollective, type ProgressMode } from "@decoupled/lionw/mpi";
import { median } from "./_timing.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    reps: { type: "string" },
    elements: { type: "string" },
    exchanges: { type: "string" },
    progress: { type: "string" },
  },
});
const comm = await MpiCollective.init({
  timeoutMs: 120_000,
  progress: (values.progress ?? "auto") as ProgressMode | "auto",
});
const reps = Number(values.reps ?? 5);
const modelElements = Number(values.elements ?? 2 ** 24);
const TENSORS = 16;

/**
 * What this rank's interface has sent so far: its namespace's counter in
 * sysfs (Deno reads /sys only with every permission; the alternative,
 * spawning `ip`, would fork an MPI process, which UCX's registered memory
 * does not survive well).
 */
function sentBytes(): number {
  return Number(Deno.readTextFileSync("/sys/class/net/eth0/statistics/tx_bytes"));
}

/** This rank's gradients: values of both signs, different on every rank. */
function fillGradient(grad: Float32Array, seed: number): void {
  let state = seed >>> 0;
  for (let i = 0; i < grad.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    grad[i] = (state / 2 ** 32 - 0.5) * 1e-3;
  }
}

/** The model, with this rank's gradients, and an optimizer over it. */
function model(exchange: Exchange | undefined) {
  const store = new ParameterStore();
  const params = Array.from({ length: TENSORS }, (_, i) => {
    const p = store.add(`layer${i}.weight`, [modelElements / TENSORS]);
    p.data.fill(0.01 * (i + 1));
    return p;
  });
  const opt = new DecoupledLionW(params, {
    lr: 1e-4,
    weightDecay: 0.1,
    workers: 0,
    logger: null,
    ...(exchange === undefined ? {} : { collective: comm, exchange }),
  });
  const grads = params.map((p, i) => {
    const g = new Float32Array(p.size);
    fillGradient(g, 1 + 97 * comm.rank + i);
    return g;
  });
  // every step rewrites the gradients first: the exchange averages them in place
  const step = () => {
    params.forEach((p, i) => (p.grad = grads[i]!));
    return opt.step();
  };
  return { opt, step };
}

/** Median ms of a step and bytes sent per step, every rank starting each step together. */
async function measure(exchange: Exchange) {
  const { opt, step } = model(exchange);
  await step(); // warm-up: first touch of the pages, MPI's connections
  await step();
  const ms: number[] = [];
  let sent = 0;
  for (let i = 0; i < reps; i++) {
    await comm.barrier();
    const before = sentBytes();
    const start = performance.now();
    await step();
    ms.push(performance.now() - start);
    sent += sentBytes() - before;
  }
  await opt.close();
  return { exchange, stepMs: median(ms), bytesPerStep: sent / reps };
}

/** The update alone, on one process: the scale the exchanges are read against. */
async function updateAlone(): Promise<number> {
  const { opt, step } = model(undefined);
  await step();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await step();
    ms.push(performance.now() - start);
  }
  await opt.close();
  return median(ms);
}

// the update alone first, on every rank at once (as the ranks' steps run): no rank waits in MPI meanwhile
const alone = await updateAlone();
const exchanges = (values.exchanges ?? "float32,bfloat16,sign-vote").split(",") as Exchange[];
const rows = [];
for (const exchange of exchanges) {
  rows.push(await measure(exchange));
  if (comm.rank === 0) {
    console.error(`    ${exchange}: ${rows.at(-1)!.stepMs.toFixed(0)} ms a step`);
  }
}
// every rank's bytes: rank 0 reports the largest
const bytes = new Float64Array(comm.worldSize * exchanges.length);
rows.forEach((row, i) => (bytes[comm.rank * exchanges.length + i] = row.bytesPerStep));
await comm.allReduceSum(bytes);
if (comm.rank === 0) {
  const perRank = rows.map((row, i) => ({
    ...row,
    bytesPerStep: Math.max(
      ...Array.from({ length: comm.worldSize }, (_, r) => bytes[r * exchanges.length + i]!),
    ),
  }));
  console.log(
    "BENCH_JSON " +
      JSON.stringify({ ranks: comm.worldSize, modelElements, rows: perRank, updateMs: alone }),
  );
}
await comm.close();
