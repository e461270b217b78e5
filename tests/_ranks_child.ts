// One rank of a data-parallel test job (tests/data_parallel_test.ts runs it
// under mpiexec.mpich): builds tests/_ranks_model.ts, steps it on this rank's
// gradients, and writes what it ended with to <out>/rank<r>.bin and .json.
import { DecoupledLionW, type Exchange, loadCheckpoint, saveCheckpoint } from "../mod.ts";
import { MpiCollective } from "../mpi/mod.ts";
import {
  buildModel,
  checkCollectives,
  rankGradient,
  SCENARIO_STEPS,
  snapshot,
} from "./_ranks_model.ts";

const [scenario = "same", out = ".", exchange = "float32"] = Deno.args;
const timeoutMs = scenario === "hang" ? 3_000 : scenario === "endless" ? 10_000 : 20_000;
const comm = await MpiCollective.init({ timeoutMs });
const { rank } = comm;

if (scenario === "collectives") {
  await checkCollectives(comm);
  console.log(`rank ${rank}: collectives agree with their definitions`);
  await comm.close();
  Deno.exit(0);
}
if (scenario === "throw" && rank === 1) throw new Error("rank 1 fails on purpose");
if (scenario === "kill" && rank === 1) Deno.kill(Deno.pid, "SIGKILL");
if (scenario === "hang" && rank === 1) await new Promise(() => setInterval(() => {}, 1000));

const sharded = scenario.startsWith("sharded") || scenario === "checkpoint" ||
  scenario === "endless";
const model = buildModel(scenario === "layout" && rank === 1 ? { extra: true } : {});
if (scenario === "drift" && rank === 1) model.params[0]!.data[3]! += 1;
const options = {
  lr: 0.01,
  workers: scenario.endsWith("workers") ? 1 : 0,
  nonFinite: "skip",
  // the sign-vote exchange refuses clipping: the vote's size is lr
  ...(exchange === "sign-vote" ? {} : { maxGradNorm: 40 }),
  exchange: exchange as Exchange,
  collective: comm,
  shardState: sharded,
  checkRanksEvery: scenario === "drift" ? 1 : 0,
  logger: null,
} as const;
const opt = new DecoupledLionW(model.groups, options);
if (scenario === "endless") await stepUntilStopped();
const report = [];
try {
  for (let step = 0; step < SCENARIO_STEPS; step++) {
    for (const [i, param] of model.params.entries()) {
      const grad = rankGradient(rank, step, i, param.size);
      param.grad = grad; // null: this rank has none
    }
    const metrics = step % 2 === 1;
    if (scenario.endsWith("sync")) opt.stepSync({ metrics });
    else await opt.step({ metrics });
    report.push({
      lastStep: opt.lastStep,
      metrics: opt.getMetrics(),
      stateElements: opt.stateElements,
    });
  }
} catch (error) {
  console.log(`rank ${rank} caught: ${(error as Error).message}`);
  await opt.close();
  await comm.close();
  Deno.exit(0);
}
await opt.pullState(); // every rank: with sharded state, it gathers exp_avg
if (scenario === "checkpoint") {
  // rank 0 writes the gathered state; every rank resumes from it, sharded again
  if (rank === 0) await saveCheckpoint(opt, `${out}/checkpoint.safetensors`);
  await comm.barrier();
  const resumed = buildModel();
  const again = new DecoupledLionW(resumed.groups, options);
  await loadCheckpoint(again, `${out}/checkpoint.safetensors`);
  for (const [m, o] of [[model, opt], [resumed, again]] as const) {
    m.params.forEach((param, i) => (param.grad = rankGradient(rank, 0, i, param.size)));
    await o.step();
    await o.pullState();
  }
  const [a, b] = [snapshot(model, opt), snapshot(resumed, again)];
  const same = a.length === b.length && a.every((byte, i) => byte === b[i]);
  console.log(`rank ${rank}: the resumed run ${same ? "matches" : "DIFFERS"}`);
  await again.close();
}
await Deno.writeFile(`${out}/rank${rank}.bin`, snapshot(model, opt));
await Deno.writeTextFile(`${out}/rank${rank}.json`, JSON.stringify(report));
await opt.close();
await comm.close();

/**
 * Steps until the job is ended from outside (a rank killed, a link cut):
 * every step, the state gathered on every rank and rank 0 writing the
 * checkpoint, then `<out>/steps` (the steps whose checkpoint was written).
 * Each rank writes its pid to `<out>/rank<r>.pid` first.
 */
async function stepUntilStopped(): Promise<never> {
  await Deno.writeTextFile(`${out}/rank${rank}.pid`, String(Deno.pid));
  for (let step = 0;; step++) {
    for (const [i, param] of model.params.entries()) {
      param.grad = rankGradient(rank, step % SCENARIO_STEPS, i, param.size);
    }
    await opt.step();
    await opt.pullState();
    if (rank === 0) {
      await saveCheckpoint(opt, `${out}/checkpoint.safetensors`);
      await Deno.writeTextFile(`${out}/steps`, String(opt.iterations));
    }
  }
}
