import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { assertSameResult, runScenario } from "./_scenario.ts";
import { recordingLogger } from "./_util.ts";

Deno.test("stepSync() gives what step() gives, inline and on workers, from the first step", async () => {
  for (const backend of ["wasm", "js"] as const) {
    const expected = await runScenario({ backend, workers: 0 });
    for (const workers of [0, 1, 2]) {
      const sync = await runScenario({ backend, workers }, {}, { sync: true });
      assert.equal(sync.workers, workers);
      assertSameResult(sync, expected, `${backend} stepSync on ${workers} workers`);
    }
  }
});

/** Two steps of a clipped, cautious two-group model; returns every value. */
async function clippedCautious(workers: number, sync: boolean): Promise<number[]> {
  const store = new ParameterStore();
  const a = store.add("a.weight", [300_000]);
  const b = store.add("b.bias", [7]);
  a.data.forEach((_, i) => (a.data[i] = Math.sin(i)));
  await using opt = new DecoupledLionW(
    [{ params: [a], cautious: true }, { params: [b], weightDecay: 0 }],
    { lr: 0.01, maxGradNorm: 0.5, workers },
  );
  for (let step = 0; step < 2; step++) {
    a.grad = a.data.map((x, i) => Math.cos(i * (step + 1)) - x);
    b.grad = [1, -2, 3, -4, 5, -6, 7];
    if (sync) opt.stepSync({ metrics: true });
    else await opt.step({ metrics: true });
  }
  return [...a.data, ...b.data, ...opt.state(a)!.expAvg, opt.lastStep.gradNorm!];
}

Deno.test("stepSync() clips and takes the caution count like step()", async () => {
  const expected = await clippedCautious(0, false);
  for (const workers of [0, 2]) {
    assert.deepEqual(await clippedCautious(workers, true), expected, `${workers} workers`);
  }
});

Deno.test("stepSync() skips a non-finite step and reports it like step()", async () => {
  const w = new ParameterStore().add("w", [3], [1, 2, 3]);
  const logger = recordingLogger();
  await using opt = new DecoupledLionW([w], { nonFinite: "skip", workers: 1, logger });
  w.grad = [1, NaN, 1];
  opt.stepSync();
  assert.equal(opt.lastStep.applied, false);
  assert.deepEqual(opt.lastStep.nonFinite, ["w"]);
  assert.deepEqual([...w.data], [1, 2, 3]);
  assert.equal(opt.iterations, 0);
  assert.match(logger.messages.join("\n"), /Skipped step/);
});

Deno.test("stepSync() refuses a closure, bad options and the gpujs backend, changing nothing", async () => {
  const w = new ParameterStore().add("w", [2], [1, 1]);
  await using opt = new DecoupledLionW([w], { workers: 0 });
  w.grad = [1, 1];
  assert.throws(
    () => opt.stepSync({ closure: () => 1 } as never),
    /Cannot step synchronously with a closure/,
  );
  assert.throws(() => opt.stepSync({ metrics: 1 } as never), /'metrics' must be a boolean/);
  assert.deepEqual([...w.data], [1, 1]);
  await opt.close();

  const v = new ParameterStore().add("v", [2], [1, 1]);
  await using gpu = new DecoupledLionW([v], { backend: "gpujs", gpuMode: "cpu", workers: 0 });
  v.grad = [1, 1];
  assert.throws(() => gpu.stepSync(), (error: Error) => {
    assert.ok(error instanceof RangeError);
    assert.match(error.message, /gpujs backend, which reads back from the device asynchronously/);
    return true;
  });
  assert.deepEqual([...v.data], [1, 1]);
  assert.equal(gpu.iterations, 0);
  await gpu.step(); // still usable
  assert.equal(gpu.iterations, 1);
});

Deno.test("stepSync() and step() take turns on one optimizer", async () => {
  const expected = new ParameterStore().add("w", [5], [1, 2, 3, 4, 5]);
  const mixed = new ParameterStore().add("w", [5], [1, 2, 3, 4, 5]);
  await using a = new DecoupledLionW([expected], { lr: 0.1, workers: 0 });
  await using b = new DecoupledLionW([mixed], { lr: 0.1, workers: 2 });
  for (let step = 0; step < 4; step++) {
    for (const w of [expected, mixed]) w.grad = w.data.map((x) => x - step);
    await a.step();
    if (step % 2 === 0) b.stepSync();
    else await b.step();
  }
  assert.deepEqual([...mixed.data], [...expected.data]);
  assert.equal(b.iterations, 4);
});

Deno.test("stepSync() on workers that may not read their module fails at once, saying why", async () => {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", new URL("./_sync_no_read_child.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "null", // Deno also reports the workers' own failure there
  }).output();
  const result = JSON.parse(new TextDecoder().decode(stdout));
  assert.match(result.message, /may not be read: run with --allow-read, or use workers: 0/);
  assert.ok(result.ms < 5_000, `${result.ms} ms`);
  assert.deepEqual(result.data, [1, 2, 3, 4]);
});
