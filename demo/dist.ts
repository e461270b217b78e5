/**
 * `deno task demo:dist`: the demo, data-parallel. Launches
 * `mpiexec.mpich -n RANKS` over `demo/main.ts --mpi` (each rank trains on
 * its share of every batch, both optimizers on the gradients averaged over
 * the ranks), then sets its losses beside a single-process run's of the
 * same config: they agree within the float rounding of the averaged
 * gradients. Every option but `--ranks` and `--compare` goes to the demo.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { RUN_LABELS, RUNS } from "./runs.ts";
import { DEMO_FLAGS } from "./flags.ts";
import { explain, usageError } from "../scripts/cli.ts";
import { MPIEXEC, mpiexecAvailable, mpiJob } from "../mpi/_launch.ts";
import { runSweep, SWEEP_TOLERANCE, sweepTable } from "./dist_sweep.ts";

const USAGE = `deno task demo:dist [--ranks N] [--compare RUN_JSON] [demo options]
deno task demo:dist --sweep [--sweep-ranks 2,4] [demo options]

Trains the demo's model data-parallel: mpiexec.mpich starts N ranks of
deno task demo --mpi, each on batch/N examples of every batch. Then sets
the losses beside a single-process run of the same config.

Options:
  --ranks N          ranks (default 2); the batch must be a multiple of N
  --compare FILE     the single-process run.json to compare with (default: the
                     committed docs/results/demo/run.json, or DIR/../run.json)
  --out DIR          output folder (default demo/out/dist)
  --sweep            train with each exchange (float32, bfloat16, sign-vote) over each
                     of --sweep-ranks, through network namespaces where ip netns is
                     permitted (root), plain ranks otherwise; compare the final
                     validation losses and plot the curves (DIR/curves.svg)
  --sweep-ranks L    the rank counts of --sweep (default 2,4)
  the demo's options (deno task demo --help): --steps --batch --seed --eval-every ...

Needs MPICH (apt-get install mpich): mpiexec.mpich, and libmpich.so.12 (or
LIONW_MPI_LIBRARY).`;

interface RunJson {
  config: { steps: number; batch: number; seed: number; evalEvery: number };
  evalSteps: number[];
  lionw: { trainLoss: number[]; valLoss: number[] };
  adam: { trainLoss: number[]; valLoss: number[] };
}

const { values, tokens } = parseArgs({
  args: Deno.args,
  strict: false,
  tokens: true,
  options: {
    ranks: { type: "string" },
    compare: { type: "string" },
    out: { type: "string" },
    sweep: { type: "boolean" },
    "sweep-ranks": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const ranks = Number(values.ranks ?? 2);
if (!Number.isInteger(ranks) || ranks < 1) {
  usageError("demo:dist", USAGE, `--ranks must be a positive integer: got "${values.ranks}"`);
}
const out = String(values.out ?? "demo/out/dist");
const ours = new Set(["ranks", "compare", "out", "sweep", "sweep-ranks", "help"]);
// the demo's flags go on to every rank: a bad one is refused here, once, before any rank starts
for (const token of tokens) {
  if (token.kind !== "option" || ours.has(token.name) || DEMO_FLAGS.includes(token.name)) continue;
  usageError(
    "demo:dist",
    USAGE,
    explain(new Error(`Unknown option '${token.rawName}'`), [...ours, ...DEMO_FLAGS]),
  );
}
const passed = tokens.flatMap((token) => {
  if (token.kind === "positional") return [token.value];
  if (token.kind !== "option" || ours.has(token.name)) return [];
  return token.value === undefined ? [token.rawName] : [token.rawName, token.value];
});

if (!(await mpiexecAvailable())) {
  console.error(
    `error: ${MPIEXEC} was not found: install MPICH (apt-get install mpich) to run the demo data-parallel`,
  );
  Deno.exit(1);
}

if (values.sweep) {
  const counts = String(values["sweep-ranks"] ?? "2,4").split(",").map(Number);
  if (!counts.every((n) => Number.isInteger(n) && n > 0)) {
    usageError(
      "demo:dist",
      USAGE,
      `--sweep-ranks must list positive integers: got "${values["sweep-ranks"]}"`,
    );
  }
  const result = await runSweep(counts, passed, String(values.out ?? "demo/out/sweep"));
  console.log(`\n${sweepTable(result)}\n`);
  console.log(
    `Every exchange within ${100 * SWEEP_TOLERANCE} % of float32's final validation loss: ${
      result.withinTolerance ? "yes" : "NO"
    }. Wrote sweep.json and curves.svg`,
  );
  Deno.exit(0);
}

const main = new URL("./main.ts", import.meta.url).pathname;
const job = await mpiJob(ranks, main, ["--mpi", "--out", out, ...passed], ["--allow-write"])
  .spawn().status;
if (!job.success) Deno.exit(job.code || 1);

const dist: RunJson = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
const compareWith = values.compare !== undefined
  ? String(values.compare)
  : "docs/results/demo/run.json";
let single: RunJson;
try {
  single = JSON.parse(await Deno.readTextFile(compareWith));
} catch {
  console.log(`\n(no single-process run at ${compareWith} to compare with: pass --compare)`);
  Deno.exit(0);
}
const same = (["steps", "batch", "seed", "evalEvery"] as const).every((k) =>
  single.config[k] === dist.config[k]
);
if (!same) {
  console.log(
    `\n(${compareWith} is another config: run deno task demo with the same --steps --batch --seed --eval-every, and pass its run.json with --compare)`,
  );
  Deno.exit(0);
}
console.log(
  `\nValidation loss, one process (${compareWith}) and ${ranks} ranks (${out}/run.json):`,
);
console.log(
  `   step  ${
    RUNS.map((run) => `${RUN_LABELS[run].padEnd(14)} 1 proc  ${ranks} ranks     diff`).join("   ")
  }`,
);
let worst = 0;
const every = Math.max(1, Math.floor(dist.evalSteps.length / 10));
dist.evalSteps.forEach((step, i) => {
  const cells = RUNS.map((run) => {
    const [a, b] = [single[run].valLoss[i]!, dist[run].valLoss[i]!];
    worst = Math.max(worst, Math.abs(a - b));
    return `${"".padEnd(14)} ${a.toFixed(4)}  ${b.toFixed(4)}  ${
      (b - a).toExponential(1).padStart(7)
    }`;
  });
  if (i % every === 0 || i === dist.evalSteps.length - 1) {
    console.log(`  ${String(step).padStart(5)}  ${cells.join("   ")}`);
  }
});
console.log(
  `  largest difference over every evaluation: ${
    worst.toExponential(2)
  } nats (the float rounding of averaged gradients)`,
);
