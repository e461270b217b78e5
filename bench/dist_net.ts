/**
 * The network mode of `deno task bench:dist` (`--net`): the data-parallel
 * step of a 16M-parameter model over TCP between "hosts" on this machine
 * (network namespaces on links `tc` shapes, scripts/netns.ts), one rank a
 * host, in each exchange (`float32`, `bfloat16`, `sign-vote`): the bytes a
 * rank sends a step (its interface's counter), the ms a step, the update
 * alone for scale, and MPICH's C `MPI_Allreduce` of the same 64 MiB over
 * the same links. Needs root (`ip netns`) and MPICH.
 *
 * @module
 */

import { netDown, netJob, netnsPermitted, netUp } from "../scripts/netns.ts";

/** One job's numbers: every exchange, on `ranks` hosts at `rate`. */
export interface NetResult {
  readonly ranks: number;
  readonly rate: string;
  readonly modelElements: number;
  readonly rows: readonly { exchange: string; stepMs: number; bytesPerStep: number }[];
  /** The update alone on one process (no collective). */
  readonly updateMs: number;
  /** MPICH's C all-reduce of 64 MiB over the same links, where mpicc built it. */
  readonly cAllReduceMs: number | null;
}

/** What to run. */
export interface NetOptions {
  readonly hosts: readonly number[];
  readonly rates: readonly string[];
  readonly reps?: string;
  readonly elements?: string;
  /** MPICH's C all-reduce, built (bench/allreduce.c), or `undefined`. */
  readonly cPeer: string | undefined;
}

/** How long a job may take to exit after its report (MPI_Finalize over TCP has hung at 3 hosts). */
const EXIT_GRACE_MS = 15_000;
/** How long a job may run in all. */
const JOB_LIMIT_MS = 600_000;

/**
 * Runs `command` and returns the JSON of its first output line that starts
 * with `tag`; a job that does not exit within {@linkcode EXIT_GRACE_MS} of
 * that line (or within {@linkcode JOB_LIMIT_MS} in all) is ended.
 */
async function reportOf<T>(command: Deno.Command, tag: string): Promise<T | undefined> {
  const child = command.spawn();
  const limit = setTimeout(() => child.kill("SIGKILL"), JOB_LIMIT_MS);
  let report: T | undefined;
  let text = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    const line = text.split("\n").find((l) => l.startsWith(`${tag} `) && text.includes(`${l}\n`));
    if (line === undefined || report !== undefined) continue;
    report = JSON.parse(line.slice(tag.length + 1));
    setTimeout(() => {
      try {
        child.kill("SIGKILL");
        console.error(
          `  (the job had not exited ${EXIT_GRACE_MS / 1000} s after its report: ended)`,
        );
      } catch {
        // it had exited
      }
    }, EXIT_GRACE_MS);
  }
  await child.status;
  clearTimeout(limit);
  return report;
}

/**
 * Runs every (hosts, rate) job, each on a net of its own, removed after it.
 *
 * @param options What to run.
 * @returns The results, in run order.
 */
export async function runNetworkBench(options: NetOptions): Promise<NetResult[]> {
  const permitted = await netnsPermitted();
  if (permitted !== true) throw new Error(`--net needs ip netns (root): ${permitted}`);
  const rank = new URL("./dist_net_rank.ts", import.meta.url).pathname;
  const args = [
    ...(options.reps ? ["--reps", options.reps] : []),
    ...(options.elements ? ["--elements", options.elements] : []),
  ];
  const results: NetResult[] = [];
  for (const rate of options.rates) {
    for (const hosts of options.hosts) {
      const net = await netUp(hosts, { rate });
      try {
        const progress = hosts > navigator.hardwareConcurrency ? ["--progress", "poll"] : [];
        // every permission: Deno reads the interface counters in /sys with nothing less
        const program = [Deno.execPath(), "run", "--no-check", "--quiet", "--allow-all", rank];
        program.push(...args, ...progress);
        const result = await reportOf<Omit<NetResult, "rate" | "cAllReduceMs">>(
          netJob(net, program, { stdout: "piped", stderr: "inherit" }),
          "BENCH_JSON",
        );
        if (result === undefined) throw new Error(`the ${hosts}-host job at ${rate} failed`);
        let cAllReduceMs: number | null = null;
        if (options.cPeer !== undefined) {
          const c = netJob(net, [options.cPeer, options.reps ?? "5"], { stdout: "piped" });
          cAllReduceMs = (await reportOf<{ ms: number }[]>(c, "ALLREDUCE_C"))?.at(-1)?.ms ?? null;
        }
        results.push({ ...result, rate, cAllReduceMs });
        console.error(`  ${hosts} hosts at ${rate}: done`);
      } finally {
        await netDown(net);
      }
    }
  }
  return results;
}

/** The targets: each exchange against float32 on the same hosts and link. */
export function netTargets(result: NetResult): { name: string; value: number; met: boolean }[] {
  const row = (exchange: string) => result.rows.find((r) => r.exchange === exchange)!;
  const [f32, bf16, vote] = [row("float32"), row("bfloat16"), row("sign-vote")];
  const targets = [
    {
      name: "sign-vote bytes ÷ float32's ≤ 1/16",
      value: vote.bytesPerStep / f32.bytesPerStep,
      met: vote.bytesPerStep / f32.bytesPerStep <= 1 / 16,
    },
    {
      name: "bfloat16 bytes ÷ float32's ≤ 0.55",
      value: bf16.bytesPerStep / f32.bytesPerStep,
      met: bf16.bytesPerStep / f32.bytesPerStep <= 0.55,
    },
  ];
  if (result.rate === "1gbit") {
    targets.push({
      name: "float32 step ÷ sign-vote step ≥ 8 (1 Gbit/s)",
      value: f32.stepMs / vote.stepMs,
      met: f32.stepMs / vote.stepMs >= 8,
    });
  }
  return targets;
}

/** Prints the results as a markdown table, then the targets. */
export function printNetResults(results: readonly NetResult[]): void {
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2)} MB`;
  console.log(
    `\nA data-parallel step of ${
      results[0]!.modelElements / 2 ** 20
    }M parameters (16 tensors, wasm, one rank a network namespace, over TCP), medians:\n`,
  );
  console.log(
    "| hosts | link | exchange | sent per rank per step | × float32 | step | float32 ÷ this |",
  );
  console.log("|---|---|---|---:|---:|---:|---:|");
  for (const r of results) {
    const f32 = r.rows.find((row) => row.exchange === "float32")!;
    for (const row of r.rows) {
      console.log(
        `| ${r.ranks} | ${r.rate} | ${row.exchange} | ${mb(row.bytesPerStep)} | ${
          (row.bytesPerStep / f32.bytesPerStep).toFixed(3)
        } | ${row.stepMs.toFixed(0)} ms | ${(f32.stepMs / row.stepMs).toFixed(1)}× |`,
      );
    }
    console.log(
      `| ${r.ranks} | ${r.rate} | (the update alone, one process) | | | ${
        r.updateMs.toFixed(0)
      } ms | |`,
    );
    if (r.cAllReduceMs !== null) {
      console.log(
        `| ${r.ranks} | ${r.rate} | (MPICH's C MPI_Allreduce, 64 MiB) | | | ${
          r.cAllReduceMs.toFixed(0)
        } ms | |`,
      );
    }
  }
  console.log("\nTargets:\n");
  for (const r of results) {
    for (const t of netTargets(r)) {
      console.log(
        `- ${r.ranks} hosts, ${r.rate}: ${t.name}: ${t.value.toFixed(3)} ${
          t.met ? "met" : "MISSED"
        }`,
      );
    }
  }
}
