// Jobs of tests/_ranks_child.ts and what they are checked against: shared
// by the data-parallel tests (ranks on one machine) and the network tests
// (ranks in network namespaces, over TCP).
import assert from "node:assert/strict";
import { DecoupledLionW, type MetricRecord, type StepReport } from "../mod.ts";
import { MPIEXEC, rankProgram } from "../mpi/_launch.ts";
import { buildModel, rankGradient, SCENARIO_STEPS, snapshot } from "./_ranks_model.ts";

/** The rank program. */
export const CHILD: string = new URL("./_ranks_child.ts", import.meta.url).pathname;
/** Every job must end by then, hung or not (the children's watchdog is 20 s, 3 s where a rank hangs on purpose). */
export const JOB_LIMIT_MS = 90_000;

/** A finished job. */
export interface Job {
  code: number;
  output: string;
  dir: string;
  ms: number;
}

/** The folders of the jobs run by the test in progress. */
const jobDirs: string[] = [];

/** A folder for a job's files (in `parent`, else the system's), removed after the test (see {@linkcode cleaned}). */
export async function jobDir(prefix: string, parent?: string): Promise<string> {
  const dir = await Deno.makeTempDir({
    prefix: `lionw_${prefix}_`,
    ...(parent === undefined ? {} : { dir: parent }),
  });
  jobDirs.push(dir);
  return dir;
}

/** A test's body, after which its jobs' folders are removed, passed or failed. */
export function cleaned(body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body();
    } finally {
      for (const dir of jobDirs.splice(0)) await Deno.remove(dir, { recursive: true });
    }
  };
}

/** How a job is launched: ranks on this machine, or across a net's namespaces. */
export type Launch = (
  program: readonly string[],
  options: Pick<Deno.CommandOptions, "stdout" | "stderr" | "signal">,
) => Deno.Command;

/** Ranks on this machine, through shared memory. */
export function localLaunch(ranks: number): Launch {
  return (program, options) =>
    new Deno.Command(MPIEXEC, {
      args: ["-n", String(ranks), ...program],
      stdin: "null",
      ...options,
    });
}

/** Decodes a process's output. */
export function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

/**
 * Runs one job of the rank program.
 *
 * @param launch How.
 * @param scenario The child's scenario.
 * @param extra More arguments for the child (the exchange).
 * @returns The job.
 */
export async function runChild(
  launch: Launch,
  scenario: string,
  extra: readonly string[] = [],
): Promise<Job> {
  const dir = await jobDir(scenario);
  const start = performance.now();
  const program = rankProgram(CHILD, [scenario, dir, ...extra], [`--allow-write=${dir}`]);
  const out = await launch(program, {
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(JOB_LIMIT_MS),
  }).output();
  return {
    code: out.code,
    output: decode(out.stdout) + decode(out.stderr),
    dir,
    ms: performance.now() - start,
  };
}

/** What a rank reported after each step. */
export interface RankReport {
  lastStep: StepReport;
  metrics: MetricRecord;
  stateElements: number;
}

/** A rank's parameters and state (bytes) and its reports. */
export async function readRank(
  job: Job,
  rank: number,
): Promise<{ bin: Uint8Array; report: RankReport[] }> {
  return {
    bin: await Deno.readFile(`${job.dir}/rank${rank}.bin`),
    report: JSON.parse(await Deno.readTextFile(`${job.dir}/rank${rank}.json`)),
  };
}

/** The parameters' values alone of a snapshot (each parameter's values, then its exp_avg). */
export function paramsOf(bin: Uint8Array): Uint8Array[] {
  let at = 0;
  return buildModel().params.map((p) => {
    const values = bin.subarray(at, at + 4 * p.size);
    at += 8 * p.size;
    return values;
  });
}

/** One process stepping the gradients averaged over `ranks` (sum, then ÷ ranks in float32). */
export async function singleProcess(
  ranks: number,
): Promise<{ bin: Uint8Array; report: RankReport[] }> {
  const model = buildModel();
  await using opt = new DecoupledLionW(model.groups, {
    lr: 0.01,
    workers: 0,
    nonFinite: "skip",
    maxGradNorm: 40,
    logger: null,
  });
  const report: RankReport[] = [];
  for (let step = 0; step < SCENARIO_STEPS; step++) {
    for (const [i, param] of model.params.entries()) {
      const grads = Array.from({ length: ranks }, (_, r) => rankGradient(r, step, i, param.size));
      if (grads.every((g) => g === null)) {
        param.grad = null;
        continue;
      }
      const mean = new Float32Array(param.size);
      for (let k = 0; k < param.size; k++) {
        let sum = 0; // exact: multiples of 1/64, few of them
        for (const g of grads) sum += g?.[k] ?? 0;
        mean[k] = sum / ranks;
      }
      param.grad = mean;
    }
    await opt.step({ metrics: step % 2 === 1 });
    report.push({
      lastStep: opt.lastStep,
      metrics: opt.getMetrics(),
      stateElements: opt.stateElements,
    });
  }
  return { bin: snapshot(model, opt), report: JSON.parse(JSON.stringify(report)) };
}

/** Throws with the job's output unless it exited 0. */
export function assertJobPassed(job: Job): void {
  assert.equal(job.code, 0, `the job failed:\n${job.output}`);
}

/** Asserts every rank of `job` ended bit-identical to one process stepping the averaged gradients. */
export async function assertSameAsOneProcess(
  job: Job,
  ranks: number,
): Promise<{ bin: Uint8Array; report: RankReport[] }> {
  const expected = await singleProcess(ranks);
  for (let r = 0; r < ranks; r++) {
    const got = await readRank(job, r);
    assert.ok(
      got.bin.length === expected.bin.length && got.bin.every((b, i) => b === expected.bin[i]),
      `rank ${r}'s parameters and state differ`,
    );
    assert.deepEqual(got.report, expected.report, `rank ${r}'s reports and metrics differ`);
  }
  return expected;
}
