// Data-parallel training across real MPI ranks: jobs of tests/_ranks_child.ts
// under mpiexec.mpich, checked against each other and against one process
// stepping the averaged gradients (computed here, without MPI). Skipped
// where MPICH is not installed, unless LIONW_REQUIRE_MPI=1 (CI sets it).
import assert from "node:assert/strict";
import { mpiexecAvailable, mpiJob } from "../mpi/_launch.ts";
import {
  assertJobPassed,
  assertSameAsOneProcess,
  cleaned,
  type Job,
  JOB_LIMIT_MS,
  jobDir,
  localLaunch,
  paramsOf,
  readRank,
  runChild,
} from "./_rank_jobs.ts";

const available = await mpiexecAvailable();
const required = Deno.env.get("LIONW_REQUIRE_MPI") === "1";
const ignore = !available && !required;

function runJob(ranks: number, scenario: string, exchange = "float32"): Promise<Job> {
  return runChild(localLaunch(ranks), scenario, [exchange]);
}

for (const ranks of [2, 3]) {
  Deno.test({
    name:
      `MpiCollective, ${ranks} ranks: every collective, awaited and blocking, on parts of every shape, as defined`,
    ignore,
    fn: cleaned(async () => {
      const job = await runJob(ranks, "collectives");
      assertJobPassed(job);
      for (let r = 0; r < ranks; r++) {
        assert.match(job.output, new RegExp(`rank ${r}: collectives agree with their definitions`));
      }
    }),
  });

  Deno.test({
    name:
      `data parallel, ${ranks} ranks: every rank bit-identical to one process stepping the averaged gradients`,
    ignore,
    fn: cleaned(async () => {
      const job = await runJob(ranks, "same");
      assertJobPassed(job);
      const expected = await assertSameAsOneProcess(job, ranks);
      // the step with a NaN on one rank was skipped on every rank; the bias lacked rank 1's gradient at step 2
      assert.equal(expected.report[3]!.lastStep.applied, false);
      assert.deepEqual(expected.report[3]!.lastStep.nonFinite, ["emb"]);
      assert.ok(expected.report[1]!.metrics["l2_norm/grad/fc.weight"]! > 0);
    }),
  });

  Deno.test({
    name:
      `sharded state (ZeRO-1), ${ranks} ranks: parameters and state bit-identical to the unsharded run, metrics within float64 rounding, each rank keeps its part`,
    ignore,
    fn: cleaned(async () => {
      const [plain, sharded] = [await runJob(ranks, "same"), await runJob(ranks, "sharded")];
      assertJobPassed(plain);
      assertJobPassed(sharded);
      const reference = await readRank(plain, 0);
      let kept = 0;
      for (let r = 0; r < ranks; r++) {
        const got = await readRank(sharded, r);
        assert.ok(
          got.bin.every((b, i) => b === reference.bin[i]),
          `rank ${r} differs from the unsharded run`,
        );
        got.report.forEach((step, s) => {
          const want = reference.report[s]!;
          assert.deepEqual(step.lastStep, want.lastStep);
          assert.deepEqual(Object.keys(step.metrics), Object.keys(want.metrics));
          for (const [key, value] of Object.entries(want.metrics)) {
            assert.ok(
              Math.abs(step.metrics[key]! - value) <= 1e-12 * Math.abs(value),
              `${key}: ${step.metrics[key]} vs ${value}`,
            );
          }
        });
        const part = got.report.at(-1)!.stateElements;
        assert.ok(
          part < reference.report.at(-1)!.stateElements / ranks * 1.2,
          `rank ${r} keeps ${part} elements`,
        );
        kept += part;
      }
      assert.equal(
        kept,
        reference.report.at(-1)!.stateElements,
        "the parts cover every element once",
      );
    }),
  });
}

for (const ranks of [2, 3]) {
  Deno.test({
    name:
      `exchange "bfloat16" and "sign-vote", ${ranks} ranks: parameters bit-identical on every rank (bfloat16: the state too), run after run`,
    ignore,
    fn: cleaned(async () => {
      for (const exchange of ["bfloat16", "sign-vote"]) {
        const [job, again] = [
          await runJob(ranks, "same", exchange),
          await runJob(ranks, "same", exchange),
        ];
        assertJobPassed(job);
        assertJobPassed(again);
        const first = await readRank(job, 0);
        assert.deepEqual(
          (await readRank(again, 0)).bin,
          first.bin,
          `${exchange}: another run differs`,
        );
        const momenta = new Set<string>();
        for (let r = 0; r < ranks; r++) {
          const got = await readRank(job, r);
          assert.deepEqual(
            paramsOf(got.bin),
            paramsOf(first.bin),
            `${exchange}: rank ${r}'s parameters`,
          );
          assert.deepEqual(got.report.map((s) => s.lastStep), first.report.map((s) => s.lastStep));
          if (exchange === "bfloat16") {
            assert.deepEqual(got.bin, first.bin, `bfloat16: rank ${r}'s state`);
          }
          momenta.add(got.bin.join());
        }
        // the NaN of rank 1 at step 3 was skipped by every rank
        assert.equal(first.report[3]!.lastStep.applied, false, exchange);
        if (exchange === "sign-vote") {
          assert.equal(momenta.size, ranks, "each rank's momentum is its own");
        }
      }
    }),
  });
}

Deno.test({
  name:
    "data parallel: stepSync (blocking collectives) and shard workers give the same bits as step(), sharded or not",
  ignore,
  fn: cleaned(async () => {
    const [plain, sharded] = [await runJob(2, "same"), await runJob(2, "sharded")];
    for (const scenario of ["sync", "workers", "sharded-sync", "sharded-workers"]) {
      const job = await runJob(2, scenario);
      assertJobPassed(job);
      for (const r of [0, 1]) {
        // each rank keeps its own part of the state: compare it with the same rank of step()
        const reference = await readRank(scenario.startsWith("sharded") ? sharded : plain, r);
        const got = await readRank(job, r);
        assert.ok(
          got.bin.every((b, i) => b === reference.bin[i]),
          `${scenario}: rank ${r} differs`,
        );
        assert.deepEqual(got.report, reference.report, scenario);
      }
    }
  }),
});

Deno.test({
  name:
    "sharded state: pullState on every rank, rank 0 saves the checkpoint, every rank resumes from it bit for bit",
  ignore,
  fn: cleaned(async () => {
    const job = await runJob(2, "checkpoint");
    assertJobPassed(job);
    for (const r of [0, 1]) {
      assert.match(job.output, new RegExp(`rank ${r}: the resumed run matches`));
    }
  }),
});

Deno.test({
  name: "data parallel: a drifted rank is named by the divergence check on every rank",
  ignore,
  fn: cleaned(async () => {
    const job = await runJob(2, "drift");
    assertJobPassed(job);
    for (const r of [0, 1]) {
      assert.match(
        job.output,
        new RegExp(
          `rank ${r} caught: The ranks drifted apart by step 1: rank 1 differs from rank 0 in fc\\.weight\\. `,
        ),
      );
    }
  }),
});

Deno.test({
  name:
    "data parallel: ranks that built different optimizers are refused at the first step, on every rank",
  ignore,
  fn: cleaned(async () => {
    const job = await runJob(2, "layout");
    assertJobPassed(job);
    for (const r of [0, 1]) {
      assert.match(
        job.output,
        new RegExp(
          `rank ${r} caught: Cannot step as the ranks built different optimizers: the parameters of rank 1 .* differ from rank 0's`,
        ),
      );
    }
  }),
});

Deno.test({
  name: "data parallel: a rank that throws ends the whole job non-zero, without a hang",
  ignore,
  fn: cleaned(async () => {
    const job = await runJob(3, "throw");
    assert.notEqual(job.code, 0);
    assert.match(job.output, /rank 1 fails on purpose/);
    assert.ok(job.ms < JOB_LIMIT_MS / 2, `took ${job.ms} ms`);
  }),
});

Deno.test({
  name: "data parallel: a rank killed with SIGKILL ends the job non-zero",
  ignore,
  fn: cleaned(async () => {
    const job = await runJob(2, "kill");
    assert.notEqual(job.code, 0, job.output);
    assert.ok(job.ms < JOB_LIMIT_MS / 2, `took ${job.ms} ms`);
  }),
});

Deno.test({
  name:
    "data parallel: a hung rank trips the watchdog, which names the collective and aborts the job",
  ignore,
  fn: cleaned(async () => {
    const job = await runJob(2, "hang");
    assert.notEqual(job.code, 0);
    assert.match(
      job.output,
      /rank 0: allGather of 2 float64 did not complete within \d+ ms \(timeoutMs 3000\)/,
    );
  }),
});

Deno.test({
  name: "docs/distributed.md's first example, run over 2 ranks, prints what it says",
  ignore,
  fn: cleaned(async () => {
    const doc = await Deno.readTextFile(new URL("../docs/distributed.md", import.meta.url));
    const example = doc.match(/```ts ignore\n([\s\S]*?)```/)![1]!;
    const said = example.match(/console\.log\(.*\); \/\/ (.*)\n/)![1]!;
    // inside the repository, so that deno.json maps "@decoupled/lionw" as a user's import map would
    const build = new URL("../bench/.build/", import.meta.url).pathname;
    await Deno.mkdir(build, { recursive: true });
    const dir = await jobDir("doc_example", build);
    await Deno.writeTextFile(`${dir}/train.ts`, example);
    const out = await mpiJob(2, `${dir}/train.ts`, [], [], {
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(JOB_LIMIT_MS),
    }).output();
    const text = new TextDecoder();
    assert.equal(out.code, 0, text.decode(out.stderr));
    assert.equal(text.decode(out.stdout).trim(), said);
  }),
});
