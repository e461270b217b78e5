import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { assertSameResult, runScenario, type ScenarioResult } from "./_scenario.ts";
import { runWorkerFault } from "./_worker_fault.ts";
import { DEV_LOCK, recordingLogger, runChild, seededValues } from "./_util.ts";

Deno.test("params, exp_avg and metrics are bit-identical for 0, 1, 2 and 3 workers", async () => {
  const inline = await runScenario({ workers: 0 });
  assert.equal(inline.backend, "wasm");
  for (const workers of [1, 2, 3]) {
    const sharded = await runScenario({ workers });
    assert.equal(sharded.workers, workers);
    assertSameResult(sharded, inline, `${workers} workers`);
  }
  const js = await runScenario({ backend: "js", workers: 0 });
  assertSameResult(await runScenario({ backend: "js", workers: 3 }), js, "js on 3 workers");
});

Deno.test("several arenas (of 1 MiB) shard like one", async () => {
  const one = await runScenario({ workers: 0 });
  const many = await runScenario({ workers: 2 }, { arenaBytes: 65536 * 16 });
  assertSameResult(many, one, "arenas of 256 KiB");
});

Deno.test("without Worker or SharedArrayBuffer the same kernels run inline, with the same results", async () => {
  const expected = await runScenario({ workers: 2 });
  for (const variant of ["no-worker", "no-sab"]) {
    const { stdout } = await runChild(new URL("./_no_worker_child.ts", import.meta.url), [variant]);
    const result: ScenarioResult = JSON.parse(stdout);
    assert.equal(result.workers, 0, variant);
    assert.equal(result.shared, variant === "no-worker", variant);
    assert.ok(
      result.warnings.some((w) => w.startsWith("Running inline instead of on 2 workers as ")),
    );
    assertSameResult(result, expected, variant);
  }
});

function bigModel(policy: "error" | "skip" | "ignore", workers: number) {
  const store = new ParameterStore();
  const params = [0, 1, 2].map((i) => store.add(`p${i}`, [40_000], seededValues(40_000, i)));
  const logger = recordingLogger();
  const opt = new DecoupledLionW(params, { workers, nonFinite: policy, logger });
  params.forEach((p, i) => (p.grad = seededValues(p.size, 10 + i)));
  return { params, opt, logger };
}

Deno.test("nonFinite 'error' across shards: one NaN in the last shard leaves every shard untouched", async () => {
  const { params, opt } = bigModel("error", 3);
  await opt.step();
  const before = params.map((p) => [p.data.slice(), opt.state(p)!.expAvg.slice()]);
  params[2]!.ensureGrad()[39_999] = NaN;
  await assert.rejects(
    opt.step(),
    /parameter 'p2' holds NaN or Infinity: parameters and state are unchanged/,
  );
  params.forEach((p, i) => {
    assertBitsEqual(p.data, before[i]![0]!, `${p.name} data`);
    assertBitsEqual(opt.state(p)!.expAvg, before[i]![1]!, `${p.name} exp_avg`);
  });
  params[2]!.ensureGrad()[39_999] = 0;
  await opt.step(); // the pool goes on
  assert.equal(opt.iterations, 2);
  await opt.close();
});

Deno.test("a worker that throws fails the step, naming its shard, until a state dict is loaded", async () => {
  await runWorkerFault("throw");
});

Deno.test("a worker that dies fails the step, naming its shard, until a state dict is loaded", async () => {
  const { stdout, stderr } = await runChild(
    new URL("./_worker_death_child.ts", import.meta.url),
    [],
    {
      flags: ["--allow-env"],
    },
  );
  assert.equal(stdout.trim(), "ok");
  // the death was a real uncaught error in the worker, not a polite exit
  assert.match(stderr, /Uncaught .*injected death of shard worker 1/);
});

Deno.test("workers: 'auto' takes one worker per 2^18 elements, up to the cores", async () => {
  const store = new ParameterStore();
  const small = new DecoupledLionW([store.add("small", [1000])], { logger: null });
  assert.equal(small.workers, 0);
  await small.close();
  const big = new DecoupledLionW([store.add("big", [2 ** 19])], { logger: null });
  assert.equal(big.workers, Math.min(navigator.hardwareConcurrency, 2));
  await big.close();
});

Deno.test("close() during a step on workers ends it with a clear error and ends the workers", async () => {
  const { opt } = bigModel("error", 2);
  await opt.step();
  const inFlight = assert.rejects(opt.step(), /closed/); // handled before close() waits for the workers
  await opt.close();
  await inFlight;
  await assert.rejects(opt.step(), /Cannot step as the optimizer is closed/);
});

Deno.test("workerUrl names the shard worker's module (a bundle's); a bad one is refused", async () => {
  const w = new ParameterStore().add("w", [4], [1, 2, 3, 4]);
  const url = new URL("../workers/shard_worker.ts", import.meta.url).href; // a string, as a page has it
  await using opt = new DecoupledLionW([w], { workers: 1, lr: 1, weightDecay: 0, workerUrl: url });
  w.grad = [1, -1, 1, -1];
  await opt.step();
  assert.deepEqual([...w.data], [0, 3, 2, 5]);
  await opt.close();
  assert.throws(
    () => new DecoupledLionW([w], { workerUrl: 42 as never }),
    /'workerUrl' must be a URL: current value is 42/,
  );
});

/** The fallback child run without --allow-read (runChild always grants it). */
async function withoutReadPermission(args: string[]) {
  const child = new URL("./_auto_fallback_child.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", `--lock=${DEV_LOCK}`, child, ...args],
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test('workers: "auto" runs inline where workers cannot start, says why, with the same results', async () => {
  const inline = JSON.parse(
    (await runChild(new URL("./_auto_fallback_child.ts", import.meta.url), ["spawn-throws"]))
      .stdout,
  );
  assert.equal(inline.workers, 0);
  assert.match(
    inline.reason,
    /; on the calling thread as the shard workers could not start \(Shard workers could not start: Worker creation is blocked/,
  );
  // no permission to read the worker module: checked before any worker is spawned
  const noRead = await withoutReadPermission([]);
  assert.equal(noRead.code, 0, noRead.stderr);
  assert.equal(noRead.stderr, "", "no worker was started, so none failed");
  const result = JSON.parse(noRead.stdout);
  assert.equal(result.workers, 0);
  assert.match(
    result.reason,
    /on the calling thread as the shard worker module may not be read \(.*shard_worker\.ts; run with --allow-read for \d+ workers\)/,
  );
  assert.deepEqual(result.data, inline.data);
  assert.equal(result.sum, inline.sum);
  // the same numbers as on workers, where they can start
  const onWorkers = JSON.parse(
    (await runChild(new URL("./_auto_fallback_child.ts", import.meta.url), [])).stdout,
  );
  assert.ok(onWorkers.workers > 0);
  assert.deepEqual(onWorkers.data, inline.data);
  assert.equal(onWorkers.sum, inline.sum);
  // an explicit count still fails, saying why: without the permission, and where `new Worker` throws
  const explicit = await withoutReadPermission(["explicit"]);
  assert.match(
    JSON.parse(explicit.stdout).error,
    /could not start|may not be read|died/,
  );
  const refused = JSON.parse(
    (await runChild(new URL("./_auto_fallback_child.ts", import.meta.url), [
      "spawn-throws",
      "explicit",
    ])).stdout,
  );
  assert.equal(refused.workers, 2, "no silent fallback to the calling thread");
  assert.match(refused.error, /Shard workers could not start: Worker creation is blocked/);
  assert.equal(refused.data, undefined);
});
