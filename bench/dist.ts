/**
 * `deno task bench:dist`: data parallelism over MPI on this machine. Runs
 * bench/dist_rank.ts under `mpiexec.mpich -n 1, 2, 3` (and 2 ranks again in
 * `poll` progress, to show what freeing the core costs), and prints the
 * all-reduce bandwidth beside a memcpy of the same size, and the step of a
 * 16M-parameter model unsharded and with sharded state (ZeRO-1). Where
 * `mpicc` is installed, MPICH's own `MPI_Allreduce` from C
 * (bench/allreduce.c) is timed beside the all-reduce. With `--net`, the
 * same step over TCP between network namespaces instead, in each exchange
 * (bench/dist_net.ts).
 *
 * @module
 */

import { parseCommandLine, usageError } from "../scripts/cli.ts";
import { MPIEXEC, mpiexecAvailable, mpiJob } from "../mpi/_launch.ts";
import { printNetResults, runNetworkBench } from "./dist_net.ts";

const USAGE = `deno task bench:dist [--reps N] [--elements N] [--ranks 1,2,3] [--out DIR]
deno task bench:dist --net [--hosts 2,3] [--rates 1gbit,10gbit] [--reps N] [--out DIR]

Needs MPICH (apt-get install mpich). Ranks beyond this machine's cores
oversubscribe it (they wait in "poll" progress, which frees the core).
--net runs each rank in a network namespace of its own, over TCP on links
shaped by tc, in each exchange (float32, bfloat16, sign-vote): needs root.`;

const values = parseCommandLine("bench:dist", USAGE, {
  reps: { type: "string" },
  elements: { type: "string" },
  ranks: { type: "string" },
  out: { type: "string" },
  net: { type: "boolean" },
  hosts: { type: "string" },
  rates: { type: "string" },
}) as {
  reps?: string;
  elements?: string;
  ranks?: string;
  out?: string;
  net?: boolean;
  hosts?: string;
  rates?: string;
};

interface RankResult {
  ranks: number;
  progress: string;
  library: string;
  modelElements: number;
  allReduce: { bytes: number; allReduceMs: number; memcpyMs: number }[];
  unsharded: { stepMs: number; stateMiB: number; rssMiB: number };
  sharded: { stepMs: number; stateMiB: number; rssMiB: number };
}

if (!(await mpiexecAvailable())) {
  console.error(`error: ${MPIEXEC} was not found: install MPICH (apt-get install mpich)`);
  Deno.exit(1);
}

const rankModule = new URL("./dist_rank.ts", import.meta.url).pathname;
const passOn = [
  ...(values.reps ? ["--reps", values.reps] : []),
  ...(values.elements ? ["--elements", values.elements] : []),
];
const rankCounts = (values.ranks ?? "1,2,3").split(",").map(Number);
if (!rankCounts.every((n) => Number.isInteger(n) && n > 0)) {
  usageError("bench:dist", USAGE, `--ranks must list positive integers: got "${values.ranks}"`);
}
for (const flag of ["reps", "elements"] as const) {
  if (values[flag] !== undefined && !/^[1-9]\d*$/.test(values[flag])) {
    usageError("bench:dist", USAGE, `--${flag} must be an integer > 0: got "${values[flag]}"`);
  }
}
const jobs: { ranks: number; progress?: string }[] = rankCounts.flatMap((ranks) =>
  ranks === 2 ? [{ ranks }, { ranks, progress: "poll" }] : [{ ranks }]
);

/** MPICH's own MPI_Allreduce from C, built with mpicc where it is installed: the peer of the all-reduce rows. */
async function buildCPeer(): Promise<string | undefined> {
  const binary = "bench/.build/dist/allreduce";
  await Deno.mkdir("bench/.build/dist", { recursive: true });
  const source = new URL("./allreduce.c", import.meta.url).pathname;
  const built = await new Deno.Command("mpicc", { args: ["-O2", "-o", binary, source] })
    .output().catch(() => undefined);
  return built?.success ? binary : undefined;
}

async function cAllReduce(binary: string, ranks: number): Promise<{ bytes: number; ms: number }[]> {
  const out = await new Deno.Command(MPIEXEC, {
    args: ["-n", String(ranks), binary, String(values.reps ?? 7)],
    stdin: "null",
  }).output();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.startsWith("ALLREDUCE_C ")
  );
  return line === undefined ? [] : JSON.parse(line.slice("ALLREDUCE_C ".length));
}

const cPeer = await buildCPeer();
if (values.net) {
  const hosts = (values.hosts ?? "2,3").split(",").map(Number);
  if (!hosts.every((n) => Number.isInteger(n) && n > 1)) {
    usageError("bench:dist", USAGE, `--hosts must list integers > 1: got "${values.hosts}"`);
  }
  const results = await runNetworkBench({
    hosts,
    rates: (values.rates ?? "1gbit,10gbit").split(","),
    cPeer,
    ...(values.reps ? { reps: values.reps } : {}),
    ...(values.elements ? { elements: values.elements } : {}),
  });
  printNetResults(results);
  if (values.out !== undefined) {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(`${values.out}/dist_net.json`, JSON.stringify(results, null, 1));
    console.log(`\nWrote ${values.out}/dist_net.json`);
  }
  Deno.exit(0);
}
const cResults = new Map<number, { bytes: number; ms: number }[]>();
const results: RankResult[] = [];
for (const { ranks, progress } of jobs) {
  const out = await mpiJob(
    ranks,
    rankModule,
    [...passOn, ...(progress ? ["--progress", progress] : [])],
    [],
    { stderr: "inherit" },
  ).output();
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.startsWith("BENCH_JSON ")
  );
  if (!out.success || line === undefined) {
    console.error(`error: the ${ranks}-rank job failed (exit ${out.code})`);
    Deno.exit(1);
  }
  results.push(JSON.parse(line.slice("BENCH_JSON ".length)));
  if (cPeer !== undefined && ranks > 1 && !cResults.has(ranks)) {
    cResults.set(ranks, await cAllReduce(cPeer, ranks));
  }
  console.error(`  ${ranks} rank(s)${progress ? `, ${progress}` : ""}: done`);
}

const mib = (bytes: number) => `${bytes / 2 ** 20} MiB`;
const gbps = (bytes: number, ms: number) => (bytes / 1e9 / (ms / 1000)).toFixed(2);
const first = results[0]!;
console.log(
  `\n${first.library}, ${navigator.hardwareConcurrency} cores; medians; GB/s = bytes / time of the call\n`,
);
console.log("All-reduce (in place, float32 sum) against a memcpy of the same size:\n");
console.log(
  `| ranks | progress | ${
    first.allReduce.map((r) => `${mib(r.bytes)} all-reduce`).join(" | ")
  } | memcpy ${mib(first.allReduce.at(-1)!.bytes)} |`,
);
console.log(`|---|---|${first.allReduce.map(() => "---:|").join("")}---:|`);
for (const r of results) {
  // one rank has nothing to reduce: MPI returns at once
  const cells = r.allReduce.map((a) =>
    r.ranks === 1
      ? "(nothing to reduce)"
      : `${a.allReduceMs.toFixed(2)} ms, ${gbps(a.bytes, a.allReduceMs)} GB/s`
  );
  const copy = r.allReduce.at(-1)!;
  console.log(
    `| ${r.ranks} | ${r.progress} | ${cells.join(" | ")} | ${copy.memcpyMs.toFixed(2)} ms, ${
      gbps(copy.bytes, copy.memcpyMs)
    } GB/s |`,
  );
}
for (const [ranks, rows] of cResults) {
  const cells = rows.map((c) => `${c.ms.toFixed(2)} ms, ${gbps(c.bytes, c.ms)} GB/s`);
  console.log(`| ${ranks} | C peer (MPI_Allreduce, blocking) | ${cells.join(" | ")} | |`);
}
if (cPeer === undefined) console.log("\n(the C peer was skipped: mpicc was not found)");
console.log(
  `\nA data-parallel step of ${
    first.modelElements / 2 ** 20
  }M parameters (16 tensors, wasm kernel on the calling thread, gradients averaged every step):\n`,
);
console.log(
  "| ranks | progress | step | ZeRO-1 step | exp_avg per rank | ZeRO-1 exp_avg per rank | memory the model added | ZeRO-1 |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.ranks} | ${r.progress} | ${r.unsharded.stepMs.toFixed(1)} ms | ${
      r.sharded.stepMs.toFixed(1)
    } ms | ${r.unsharded.stateMiB.toFixed(0)} MiB | ${r.sharded.stateMiB.toFixed(1)} MiB | ${
      r.unsharded.rssMiB.toFixed(0)
    } MiB | ${r.sharded.rssMiB.toFixed(0)} MiB |`,
  );
}
if (values.out !== undefined) {
  await Deno.mkdir(values.out, { recursive: true });
  const cPeerRows = Object.fromEntries(cResults);
  await Deno.writeTextFile(
    `${values.out}/dist.json`,
    JSON.stringify({ results, cPeerRows }, null, 1),
  );
  console.log(`\nWrote ${values.out}/dist.json`);
}
