// deno task demo:dist: the demo over two MPI ranks matches a single-process
// run of the same config. Skipped where MPICH is not installed, unless
// LIONW_REQUIRE_MPI=1 (CI sets it).
import assert from "node:assert/strict";
import { mpiexecAvailable } from "../mpi/_launch.ts";
import { type ChildOutput, runChild } from "./_util.ts";

const ignore = !(await mpiexecAvailable()) && Deno.env.get("LIONW_REQUIRE_MPI") !== "1";

/** Runs a demo module with the demo tasks' permissions; throws with its stderr unless it exits 0. */
function demo(module: string, args: string[]): Promise<ChildOutput> {
  return runChild(new URL(module, import.meta.url), args, {
    flags: ["--allow-write", "--allow-env", "--allow-run"],
    timeoutMs: 120_000,
  });
}

Deno.test({
  name: "demo:dist: two ranks, each on half of every batch, follow the single-process run's losses",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lionw_demo_dist_" });
    try {
      const config = ["--steps", "24", "--eval-every", "12", "--seed", "7"];
      await demo("../demo/main.ts", [...config, "--out", `${dir}/single`]);
      const { stdout: printed } = await demo("../demo/dist.ts", [
        ...config,
        "--out",
        `${dir}/dist`,
        "--compare",
        `${dir}/single/run.json`,
      ]);
      assert.match(
        printed,
        /data-parallel over 2 ranks \(MPICH[^)]*\): 32 examples of each batch of 64 per rank/,
      );
      assert.match(printed, /largest difference over every evaluation: /);
      const [single, dist] = await Promise.all(
        ["single", "dist"].map(async (name) =>
          JSON.parse(await Deno.readTextFile(`${dir}/${name}/run.json`))
        ),
      );
      assert.deepEqual(dist.evalSteps, [0, 12, 24]);
      for (const run of ["lionw", "adam"]) {
        for (const series of ["trainLoss", "valLoss"]) {
          dist[run][series].forEach((loss: number, i: number) =>
            assert.ok(
              Math.abs(loss - single[run][series][i]) < 1e-3,
              `${run} ${series}[${i}]: ${loss} vs ${single[run][series][i]}`,
            )
          );
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "demo:dist: a batch the ranks cannot split evenly is refused, naming both",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // a non-zero exit rejects, with the child's stderr in the message
      await assert.rejects(
        demo("../demo/dist.ts", ["--ranks", "3", "--steps", "2", "--out", dir]),
        /--batch 64 does not split evenly over 3 ranks: pass a multiple of 3/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "demo:dist --sweep: each exchange over 2 ranks (through network namespaces where permitted), the final losses beside float32's, the curves plotted",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "lionw_demo_sweep_" });
    try {
      const { stdout: printed } = await demo("../demo/dist.ts", [
        "--sweep",
        "--sweep-ranks",
        "2",
        "--steps",
        "24",
        "--eval-every",
        "12",
        "--out",
        dir,
      ]);
      const sweep = JSON.parse(await Deno.readTextFile(`${dir}/sweep.json`));
      assert.deepEqual(
        sweep.runs.map((run: { ranks: number; exchange: string }) =>
          `${run.ranks} ${run.exchange}`
        ),
        ["2 float32", "2 bfloat16", "2 sign-vote"],
      );
      for (const run of sweep.runs) {
        assert.deepEqual(run.steps, [0, 12, 24]);
        assert.ok(Number.isFinite(run.finalValLoss), `${run.exchange}: ${run.finalValLoss}`);
        const own = JSON.parse(await Deno.readTextFile(`${dir}/2-${run.exchange}/run.json`));
        assert.equal(run.finalValLoss, own.lionw.valLoss.at(-1));
        assert.equal(own.config.exchange, run.exchange);
      }
      assert.equal(sweep.runs[0].fromFloat32, 0);
      assert.match(printed, /\| 2 \| sign-vote \| \d\.\d{4} \| -?\d+\.\d\d % \|/);
      assert.match(
        printed,
        /Every exchange within 2 % of float32's final validation loss: (yes|NO)/,
      );
      assert.match(await Deno.readTextFile(`${dir}/curves.svg`), /^<svg/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
