// Data-parallel training across "hosts": ranks in network namespaces on
// shaped links (scripts/netns.ts), over TCP, launched by MPICH's launcher as
// it would launch them on machines over ssh. Needs root for `ip netns`;
// skipped with the reason elsewhere, unless LIONW_REQUIRE_NETNS=1 (CI runs as
// root and sets it).
import assert from "node:assert/strict";
import { DecoupledLionW, loadCheckpoint } from "../mod.ts";
import { mpiexecAvailable } from "../mpi/_launch.ts";
import { cutLink, type Net, netDown, netJob, netnsPermitted, netUp } from "../scripts/netns.ts";
import {
  assertJobPassed,
  assertSameAsOneProcess,
  CHILD,
  cleaned,
  decode,
  jobDir,
  type Launch,
  readRank,
  runChild,
} from "./_rank_jobs.ts";
import { buildModel } from "./_ranks_model.ts";
import { rankProgram } from "../mpi/_launch.ts";

const permitted = await netnsPermitted();
const mpi = await mpiexecAvailable();
const required = Deno.env.get("LIONW_REQUIRE_NETNS") === "1";
const why = permitted !== true
  ? `ip netns is not permitted here (${permitted})`
  : "MPICH is missing";
const ignore = (permitted !== true || !mpi) && !required;
if (ignore) console.log(`network tests skipped: ${why}`);

/** A fault must end the job on every rank within this. */
const FAULT_LIMIT_MS = 30_000;
/** A job must write its second checkpoint within this. */
const STARTUP_LIMIT_MS = 60_000;

/** Runs `body` with a net of `hosts` at 1 Gbit/s, removed afterwards whatever happens. */
async function withNet(hosts: number, body: (net: Net, launch: Launch) => Promise<void>) {
  const net = await netUp(hosts, { rate: "1gbit" });
  try {
    await body(net, (program, options) => netJob(net, program, options));
  } finally {
    await netDown(net);
  }
}

for (const hosts of [2, 3]) {
  Deno.test({
    name:
      `over TCP, ${hosts} namespaces: every rank bit-identical to one process stepping the averaged gradients, sharded state too`,
    ignore,
    fn: cleaned(() =>
      withNet(hosts, async (_net, launch) => {
        const plain = await runChild(launch, "same");
        assertJobPassed(plain);
        await assertSameAsOneProcess(plain, hosts);
        const sharded = await runChild(launch, "sharded");
        assertJobPassed(sharded);
        const reference = await readRank(plain, 0);
        for (let r = 0; r < hosts; r++) {
          const got = await readRank(sharded, r);
          assert.ok(
            got.bin.every((b, i) => b === reference.bin[i]),
            `sharded: rank ${r} differs from the unsharded run`,
          );
          got.report.forEach((step, s) =>
            assert.deepEqual(step.lastStep, reference.report[s]!.lastStep)
          );
        }
      })
    ),
  });
}

/**
 * Starts the endless scenario over a net of 2, waits for its second
 * checkpoint, runs `fault`, and returns how long the job took to end after
 * it, its output, and the folder.
 */
async function faultJob(
  fault: (net: Net, dir: string) => Promise<void>,
): Promise<{ code: number; output: string; ms: number; dir: string }> {
  let result: { code: number; output: string; ms: number; dir: string } | undefined;
  await withNet(2, async (net) => {
    const dir = await jobDir("fault");
    const program = rankProgram(CHILD, ["endless", dir], [`--allow-write=${dir}`]);
    const child = netJob(net, program, {
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(90_000),
    }).spawn();
    const steps = async () => Number(await Deno.readTextFile(`${dir}/steps`).catch(() => "0"));
    // the job must reach its second checkpoint first (bounded: a job that fails at start says why)
    const started = performance.now();
    while ((await steps()) < 2) {
      if (performance.now() - started > STARTUP_LIMIT_MS) {
        child.kill("SIGKILL");
        const out = await child.output();
        throw new Error(
          `the job wrote no second checkpoint within ${STARTUP_LIMIT_MS} ms:\n${
            decode(out.stdout) + decode(out.stderr)
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const pids = await Promise.all(
      [0, 1].map(async (r) => Number(await Deno.readTextFile(`${dir}/rank${r}.pid`))),
    );
    const start = performance.now();
    await fault(net, dir);
    const out = await child.output();
    // every rank must end by itself (the net's removal would end the rest)
    while (pids.some(alive) && performance.now() - start < FAULT_LIMIT_MS) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    result = {
      code: out.code,
      output: decode(out.stdout) + decode(out.stderr),
      ms: performance.now() - start,
      dir,
    };
  });
  return result!;
}

/** Whether process `pid` is still running (not gone, not a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** The checkpoint left behind loads whole, at the steps the job had written, or one more. */
async function assertCheckpointWhole(dir: string): Promise<void> {
  const written = Number(await Deno.readTextFile(`${dir}/steps`));
  await using opt = new DecoupledLionW(buildModel().groups, { lr: 0.01, workers: 0, logger: null });
  await loadCheckpoint(opt, `${dir}/checkpoint.safetensors`); // verifies every tensor's bytes
  assert.ok(
    opt.iterations === written || opt.iterations === written + 1,
    `the checkpoint holds step ${opt.iterations}, the job had written ${written}`,
  );
}

Deno.test({
  name:
    "over TCP: a rank killed mid-run ends the job on every rank within 30 s, non-zero, and the checkpoint stays the previous one",
  ignore,
  fn: cleaned(async () => {
    let host = "";
    const job = await faultJob(async (net, dir) => {
      host = net.addresses[1]!; // one rank per host, in order: rank 1's
      Deno.kill(Number(await Deno.readTextFile(`${dir}/rank1.pid`)), "SIGKILL");
    });
    assert.notEqual(job.code, 0, job.output);
    assert.ok(job.ms < FAULT_LIMIT_MS, `took ${job.ms} ms`);
    // MPICH's launcher names the dead rank by its host (rank r runs on the r-th host)
    assert.match(
      job.output,
      new RegExp(`BAD TERMINATION.*\\n.*PID \\d+ RUNNING AT ${host}\\n.*EXIT CODE: 9`),
      job.output,
    );
    console.log(`rank killed: the job ended ${(job.ms / 1000).toFixed(1)} s later`);
    await assertCheckpointWhole(job.dir);
  }),
});

Deno.test({
  name:
    "over TCP: a link taken down mid-run ends the job on every rank within 30 s, naming the collective, and the checkpoint stays the previous one",
  ignore,
  fn: cleaned(async () => {
    const job = await faultJob((net) => cutLink(net, 1));
    assert.notEqual(job.code, 0, job.output);
    assert.ok(job.ms < FAULT_LIMIT_MS, `took ${job.ms} ms`);
    assert.match(
      job.output,
      /rank [01]: \w+ of \d+ float(32|64) did not complete within/,
      job.output,
    );
    console.log(`link cut: the job ended ${(job.ms / 1000).toFixed(1)} s later`);
    await assertCheckpointWhole(job.dir);
  }),
});
