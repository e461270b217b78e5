import assert from "node:assert/strict";

const MAIN = new URL("../demo/main.ts", import.meta.url).pathname;

/** Runs the demo's command line; returns its exit code and output. */
async function demo(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-read", "--allow-write", "--allow-env", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** The report of a run in `dir`. */
async function report(dir: string) {
  return JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
}

const SHORT = ["--steps", "40", "--eval-every", "20"];

Deno.test("the demo trains both optimizers, the loss falls, and it writes every output", async () => {
  const out = await Deno.makeTempDir();
  const { code, stdout, stderr } = await demo(...SHORT, "--out", out);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /step 20\/40 \|/); // a line per evaluation when stdout is not a terminal
  assert.match(stdout, /DecoupledLionW\s+\d\.\d{3}\s+\d\.\d{3}\s+\d+\.\d{3} ms/);
  const run = await report(out);
  assert.deepEqual(run.evalSteps, [0, 20, 40]);
  for (const name of ["lionw", "adam"]) {
    const { trainLoss, valLoss } = run[name];
    assert.equal(trainLoss.length, 3);
    assert.ok(
      Math.abs(valLoss[0] - Math.log(27)) < 0.01,
      `${name} starts near ln 27: ${valLoss[0]}`,
    );
    assert.ok(valLoss[2] < valLoss[0] - 0.3, `${name} learns: ${valLoss}`);
    assert.ok(trainLoss[2] < trainLoss[0] - 0.3, `${name} learns: ${trainLoss}`);
  }
  assert.deepEqual(run.lionw.metricSteps, [20, 40]);
  assert.equal(run.lionw.metrics["l2_norm/grad/lionw/hidden.weight"].length, 2);
  assert.equal(run.lionw.metrics["cosine/update_grad/lionw/out.weight"].length, 2);
  for (const file of ["loss.svg", "metrics.svg"]) {
    assert.match(await Deno.readTextFile(`${out}/${file}`), /^<svg [^>]*>.*<\/svg>$/s, file);
  }
  assert.match(await Deno.readTextFile(`${out}/names.txt`), /^# lionw\n([a-z]*\n){10}\n# adam\n/);
  for (const file of ["lionw.safetensors", "adam.bin", "state.json"]) {
    assert.ok((await Deno.stat(`${out}/checkpoint/${file}`)).size > 0, file);
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test("a seed gives the same numbers twice, and on 0 or 2 LionW workers", async () => {
  const [a, b] = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  assert.equal((await demo(...SHORT, "--seed", "7", "--out", a)).code, 0);
  assert.equal((await demo(...SHORT, "--seed", "7", "--workers", "2", "--out", b)).code, 0);
  const [first, second] = [await report(a), await report(b)];
  assert.equal(second.lionwBackend.workers, 2);
  for (const name of ["lionw", "adam"]) {
    assert.deepEqual(second[name].valLoss, first[name].valLoss, name);
    assert.deepEqual(second[name].trainLoss, first[name].trainLoss, name);
  }
  assert.deepEqual(second.lionw.metrics, first.lionw.metrics);
  assert.deepEqual(second.names, first.names);
  const other = await Deno.makeTempDir();
  assert.equal((await demo(...SHORT, "--seed", "8", "--out", other)).code, 0);
  assert.notDeepEqual((await report(other)).lionw.valLoss, first.lionw.valLoss);
  for (const dir of [a, b, other]) await Deno.remove(dir, { recursive: true });
});

Deno.test("--resume finishes an interrupted run with the numbers of an uninterrupted one", async () => {
  const [straight, resumed] = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  assert.equal((await demo(...SHORT, "--out", straight)).code, 0);
  assert.equal((await demo(...SHORT, "--stop-at", "20", "--out", resumed)).code, 0);
  assert.deepEqual((await report(resumed)).evalSteps, [0, 20]);
  const { code, stdout } = await demo(...SHORT, "--resume", "--out", resumed);
  assert.equal(code, 0);
  assert.match(stdout, /resumed from step 20/);
  const [expected, actual] = [await report(straight), await report(resumed)];
  assert.deepEqual(actual.evalSteps, expected.evalSteps);
  for (const name of ["lionw", "adam"]) {
    assert.deepEqual(actual[name].valLoss, expected[name].valLoss, name);
    assert.deepEqual(actual[name].trainLoss, expected[name].trainLoss, name);
    assert.deepEqual(actual[name].lr, expected[name].lr, name);
  }
  assert.deepEqual(actual.lionw.metrics, expected.lionw.metrics);
  assert.deepEqual(actual.names, expected.names);
  // stopping before the checkpoint, or nothing left to do: a clear refusal
  const early = await demo("--steps", "60", "--stop-at", "30", "--resume", "--out", resumed);
  assert.equal(early.code, 2);
  assert.match(early.stderr, /--stop-at 30 is not past the checkpoint's step 40/);
  const again = await demo(...SHORT, "--resume", "--out", resumed);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /the checkpoint is at step 40 already; pass --steps above it/);
  for (const dir of [straight, resumed]) await Deno.remove(dir, { recursive: true });
});

Deno.test("bad options get a clear message and exit code 2; --help exits 0", async () => {
  const help = await demo("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--steps N/);
  assert.match(help.stdout, /--resume/);
  const cases: [string[], RegExp][] = [
    [["--steps", "0"], /--steps must be a positive integer: got "0"/],
    [["--steps", "1e3"], /--steps must be a positive integer: got "1e3"/],
    [["--batch=-4"], /--batch must be a positive integer: got "-4"/],
    [["--batch", "-4"], /Option .--batch. argument is ambiguous/],
    [["--workers", "two"], /--workers must be "auto" or an integer >= 0: got "two"/],
    [["--backend", "gpujs"], /--backend must be auto, wasm or js: got "gpujs"/],
    [["--seed", "x"], /--seed must be an integer/],
    [["--stop-at", "50", "--steps", "40"], /--stop-at 50 is past --steps 40/],
    [["--bogus"], /unknown flag --bogus/],
    [["--step", "3"], /unknown flag --step: did you mean --steps\?/],
    [["extra"], /Unexpected argument 'extra'/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr, stdout } = await demo(...args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, message, args.join(" "));
    assert.match(stderr, /--help/);
    assert.equal(stdout, "", "nothing trained");
  }
  const empty = await Deno.makeTempDir();
  const resume = await demo("--resume", "--out", empty);
  assert.equal(resume.code, 2);
  assert.match(resume.stderr, /--resume found no checkpoint in/);
  // a checkpoint missing a file: named, not a stack trace
  await Deno.mkdir(`${empty}/checkpoint`);
  await Deno.writeTextFile(
    `${empty}/checkpoint/state.json`,
    JSON.stringify({
      step: 20,
      config: { batch: 64, seed: 42, steps: 40 },
      history: {},
      adamSpecs: [],
    }),
  );
  const partial = await demo("--resume", "--steps", "40", "--out", empty);
  assert.equal(partial.code, 2);
  assert.match(partial.stderr, /the checkpoint in .* lacks lionw.safetensors/);
  await Deno.remove(empty, { recursive: true });
});
