/**
 * The gpujs backend's contract beyond the update rule: what stays on the
 * device, what the host must announce, how "auto" chooses, and its errors.
 * The update rule itself is checked against torch in gpujs_parity_test.ts.
 */

import assert from "node:assert/strict";
import {
  DecoupledLionW,
  type DecoupledLionWOptions,
  type Parameter,
  ParameterStore,
} from "../mod.ts";
import { recommendBackend } from "../mod.ts";
import { recommendFromCalibration } from "../src/tools/backend_choice.ts";
import { resolveGpuMode } from "../gpu/gpujs_runtime.ts";
import { lerpF32, signF32 } from "../src/_internal/float32.ts";
import { type GroupConstants, groupConstants } from "../src/kernels/kernel.ts";
import { deviceMismatch } from "./_device_tolerance.ts";
import { withShardFault } from "./_shard_fault.ts";
import { runChild, seededValues } from "./_util.ts";

/** Two parameters in two groups, 70k elements in all (several blocks, uneven tails). */
function model(): { store: ParameterStore; a: Parameter; b: Parameter } {
  const store = new ParameterStore();
  const a = store.add("a", [250, 257], seededValues(250 * 257, 1));
  const b = store.add("b", [5_000], seededValues(5_000, 2, 10));
  return { store, a, b };
}

/** The model's two groups, on gpujs webasm unless `engine` says otherwise. */
function open(a: Parameter, b: Parameter, engine: DecoupledLionWOptions): DecoupledLionW {
  return new DecoupledLionW(
    [{ params: [a] }, {
      params: [b],
      lr: 3e-3,
      betas: [0.5, 0.8],
      weightDecay: 0.05,
      maximize: true,
    }],
    { backend: "gpujs", gpuMode: "webasm", lr: 1e-2, weightDecay: 0.1, logger: null, ...engine },
  );
}

for (const workers of [0, 2]) {
  Deno.test(`gpujs keeps state on the device across steps, each step within rounding of the scalar rule, clipping and maximize included (${workers} workers)`, async () => {
    const { a, b } = model();
    // the gradients' norm is about 152 (0.15 at step 3): clipped to 100 but at step 3
    await using opt = open(a, b, { workers, maxGradNorm: 100 });
    const scales: number[] = [];
    for (let step = 0; step < 6; step++) {
      // the state before the step: parameters on the host, exp_avg pulled (it stays on the device)
      const before = new Map<Parameter, { p: Float32Array; m: Float32Array }>();
      for (const param of [a, b]) {
        const m = step === 0 ? new Float32Array(param.size) : opt.state(param)!.expAvg.slice();
        before.set(param, { p: param.data.slice(), m });
        param.grad = seededValues(param.size, 100 + step, step === 3 ? 1e-3 : 1);
      }
      await opt.step();
      await opt.pullState();
      const { gradScale } = opt.lastStep;
      scales.push(gradScale);
      opt.paramGroups.forEach((group) => {
        const k = groupConstants(group.lr, group.initialLr, ...group.betas, group.weightDecay);
        for (const param of group.params) {
          const { p, m } = before.get(param)!;
          // the kernel's gradient: scaled by the clipping coefficient, rounded
          // once, and negated where the group maximizes
          const sign = group.maximize ? -1 : 1;
          const g = param.grad!.map((value) => sign * Math.fround(value * gradScale));
          const next = opt.state(param)!.expAvg;
          for (let i = 0; i < param.size; i++) {
            // the scalar rule, from the same state
            const { p: expectedP, m: expectedM } = scalarStep(p[i]!, m[i]!, g[i]!, k);
            const mismatch = deviceMismatch(k, {
              p: p[i]!,
              m: m[i]!,
              g: g[i]!,
              expectedP,
              expectedM,
              actualP: param.data[i]!,
              actualM: next[i]!,
            });
            assert.equal(mismatch, null, `step ${step} ${param.name}[${i}]: ${mismatch}`);
          }
        }
      });
    }
    assert.equal(scales[3], 1);
    assert.equal(scales.filter((scale) => scale < 0.7).length, 5, `scales ${scales}`);
  });
}

/** The scalar kernel's rule on one element (`js_kernel.ts`, the tested oracle). */
function scalarStep(
  p: number,
  m: number,
  g: number,
  k: GroupConstants,
): { p: number; m: number } {
  const sign = signF32(lerpF32(m, g, k.directionWeight));
  return {
    p: Math.fround(Math.fround(p * k.decayMultiplier) - k.lr * sign),
    m: lerpF32(m, g, k.momentWeight),
  };
}

Deno.test("gpujs: state() and stateDict() refuse the host's stale exp_avg until pullState()", async () => {
  const w = new ParameterStore().add("w", [3], [1, 2, 3]);
  await using opt = new DecoupledLionW([w], {
    backend: "gpujs",
    gpuMode: "cpu",
    workers: 0,
    betas: [0.9, 0.5],
  });
  w.grad = [1, -2, 4];
  await opt.step();
  const message =
    "Cannot get state dict as the gpujs backend keeps exp_avg on the device between steps: await opt.pullState() first";
  assert.throws(() => opt.stateDict(), { message });
  assert.throws(() => opt.state(w), { message: message.replace("state dict", "state") });
  await opt.pullState();
  assert.deepEqual([...opt.state(w)!.expAvg], [0.5, -1, 2]); // lerp(0, g, 1 − 0.5)
  assert.deepEqual([...opt.stateDict().state["w"]!.expAvg], [0.5, -1, 2]);
});

Deno.test("gpujs: host writes reach the device only when announced (markWritten, loadStateDict)", async () => {
  const w = new ParameterStore().add("w", [2], [1, 1]);
  await using opt = new DecoupledLionW([w], {
    backend: "gpujs",
    gpuMode: "webasm",
    workers: 0,
    lr: 0.5,
    betas: [0.5, 0.5],
  });
  w.grad = [1, -1];
  await opt.step();
  assert.deepEqual([...w.data], [0.5, 1.5]);

  w.data.set([10, 10]); // not announced: the device's copy wins
  await opt.step();
  assert.deepEqual([...w.data], [0, 2]);

  w.data.set([10, 10]);
  w.markWritten();
  await opt.step();
  assert.deepEqual([...w.data], [9.5, 10.5]);

  // a loaded state dict replaces the device's exp_avg: here m = 0 with g = (−1, 1) flips the sign
  await opt.pullState();
  opt.loadStateDict({ ...opt.stateDict(), state: { w: { expAvg: new Float32Array([0, 0]) } } });
  w.grad = [-1, 1];
  await opt.step();
  assert.deepEqual([...w.data], [10, 10]);
  await opt.pullState();
  assert.deepEqual([...opt.state(w)!.expAvg], [-0.5, 0.5]);
});

Deno.test("gpujs: a parameter leaving and rejoining the step keeps its exp_avg", async () => {
  const store = new ParameterStore();
  const a = store.add("a", [4], [1, 1, 1, 1]);
  const b = store.add("b", [4], [1, 1, 1, 1]);
  const twin = new ParameterStore();
  const ta = twin.add("a", [4], [1, 1, 1, 1]);
  const tb = twin.add("b", [4], [1, 1, 1, 1]);
  const options = { lr: 0.25, betas: [0.5, 0.5] as [number, number], workers: 0, logger: null };
  await using opt = new DecoupledLionW([a, b], { ...options, backend: "gpujs", gpuMode: "cpu" });
  await using reference = new DecoupledLionW([ta, tb], { ...options, backend: "js" });
  const grads = [[1, -1, 2, -2], [-3, 3, 1, 1], [1, 1, -1, -1]];
  for (const [step, grad] of grads.entries()) {
    a.grad = grad;
    ta.grad = grad;
    b.grad = step === 1 ? null : grad.map((x) => -x); // b sits out step 1: a new plan twice
    tb.grad = b.grad;
    await opt.step();
    await reference.step();
  }
  // small integers and halves: every backend computes these exactly
  assert.deepEqual([...a.data], [...ta.data]);
  assert.deepEqual([...b.data], [...tb.data]);
  await opt.pullState();
  assert.deepEqual(opt.stateDict().state, reference.stateDict().state);
});

Deno.test("gpujs: a non-finite gradient is refused before anything is uploaded", async () => {
  const { a, b } = model();
  await using opt = open(a, b, { workers: 2 });
  a.grad = seededValues(a.size, 7);
  b.grad = seededValues(b.size, 8);
  await opt.step();
  await opt.pullState();
  const saved = { a: a.data.slice(), b: b.data.slice(), state: opt.stateDict() };
  b.grad![4_321] = Number.NaN;
  await assert.rejects(() => opt.step(), {
    name: "RangeError",
    message:
      "Cannot step as the gradient of parameter 'b' holds NaN or Infinity: parameters and state are unchanged",
  });
  assert.deepEqual(a.data, saved.a);
  assert.deepEqual(b.data, saved.b);
  assert.deepEqual(opt.stateDict(), saved.state);
});

Deno.test("gpujs mode: auto takes webgpu only on a hardware adapter; webgpu needs an adapter", async () => {
  const hardware = { available: true, fallback: false, description: "NVIDIA H100" };
  const software = { available: true, fallback: true, description: "llvmpipe (LLVM 15.0.6)" };
  const none = { available: false, fallback: false, description: "no WebGPU in this runtime" };
  assert.equal((await resolveGpuMode("auto", hardware)).mode, "webgpu");
  assert.equal((await resolveGpuMode("auto", software)).mode, "webasm");
  assert.equal((await resolveGpuMode("auto", none)).mode, "webasm");
  assert.equal((await resolveGpuMode("webgpu", software)).mode, "webgpu");
  await assert.rejects(() => resolveGpuMode("webgpu", none), {
    name: "RangeError",
    message:
      `Cannot use gpu.js mode "webgpu" as no WebGPU in this runtime: use gpuMode "webasm", "cpu" or "auto"`,
  });
});

Deno.test("recommendFromCalibration(): gpujs only on a hardware adapter and only when measured faster", async () => {
  const hardware = { available: true, fallback: false, description: "NVIDIA H100" };
  const software = { available: true, fallback: true, description: "llvmpipe" };
  const measured: string[] = [];
  const timings = (gpujs: number, cpu: number) => (backend: string, elements: number) => {
    measured.push(`${backend}@${elements}`);
    return Promise.resolve(backend === "gpujs" ? gpujs : cpu);
  };
  const faster = await recommendFromCalibration("wasm", hardware, 2 ** 26, timings(4, 10));
  assert.equal(faster.backend, "gpujs");
  assert.equal(faster.gpuMode, "webgpu");
  assert.deepEqual(faster.calibration, { elements: 2 ** 24, cpuMs: 10, gpujsMs: 4 });
  assert.equal(
    faster.reason,
    "gpujs measured faster than wasm (4.00 ms vs 10.00 ms a step at 16777216 elements)",
  );
  assert.deepEqual(measured.splice(0), ["gpujs@16777216", "wasm@16777216"]);

  const slower = await recommendFromCalibration("wasm", hardware, 1000, timings(3, 1));
  assert.equal(slower.backend, "wasm");
  assert.match(slower.reason, /^wasm measured faster than gpujs \(3\.00 ms vs 1\.00 ms/);
  assert.deepEqual(measured.splice(0), ["gpujs@1000", "wasm@1000"]);

  const soft = await recommendFromCalibration("wasm", software, 2 ** 26, timings(1, 10));
  assert.equal(soft.backend, "wasm");
  assert.equal(soft.adapter, "llvmpipe");
  assert.deepEqual(measured, [], "a software adapter is never calibrated");

  const broken = await recommendFromCalibration(
    "wasm",
    hardware,
    10,
    () => Promise.reject(new Error("lost")),
  );
  assert.deepEqual(broken, {
    backend: "wasm",
    reason: "gpujs failed to run here (lost)",
    adapter: "NVIDIA H100",
  });
});

Deno.test("backend auto on this machine takes wasm, at any size", async () => {
  for (const size of [16, 2 ** 19]) {
    await using opt = new DecoupledLionW([new ParameterStore().add("w", [size])], {
      logger: null,
    });
    const choice = await opt.ready();
    assert.deepEqual(choice, {
      backend: "wasm",
      reason: "auto: WebAssembly SIMD runs here (the wasm kernel, with relaxed SIMD)",
    });
    assert.equal(opt.backend, "wasm");
  }
});

async function autoChoiceIn(variant: "hardware-gpu" | "no-relaxed-simd" | "no-simd") {
  const { stdout } = await runChild(new URL("./_auto_backend_child.ts", import.meta.url), [
    variant,
  ]);
  return JSON.parse(stdout);
}

Deno.test("backend auto on a hardware GPU still takes wasm, without probing the adapter", async () => {
  const { choice, backend, adapterRequests } = await autoChoiceIn("hardware-gpu");
  assert.equal(backend, "wasm");
  assert.deepEqual(choice, {
    backend: "wasm",
    reason: "auto: WebAssembly SIMD runs here (the wasm kernel, with relaxed SIMD)",
  });
  assert.equal(adapterRequests, 0);
});

Deno.test("backend auto without relaxed SIMD (Node 20) takes the strict wasm build", async () => {
  const { choice, backend } = await autoChoiceIn("no-relaxed-simd");
  assert.equal(backend, "wasm");
  assert.equal(
    choice.reason,
    "auto: WebAssembly SIMD runs here (the wasm kernel, without relaxed SIMD)",
  );
});

Deno.test("backend auto without WebAssembly SIMD takes js and says that is why", async () => {
  const { choice, backend } = await autoChoiceIn("no-simd");
  assert.equal(backend, "js");
  assert.equal(
    choice.reason,
    "auto: this runtime lacks WebAssembly SIMD, which the wasm kernel needs, so the scalar js kernel",
  );
});

Deno.test("recommendBackend() on this machine: the adapter it probed and why", async () => {
  const choice = await recommendBackend({ elements: 4096, workers: 0 });
  if (choice.backend === "gpujs") {
    assert.ok(choice.calibration!.gpujsMs < choice.calibration!.cpuMs); // a real GPU, measured faster
  } else {
    assert.equal(choice.backend, "wasm");
    assert.match(
      choice.reason,
      /^(no GPU|the WebGPU adapter is a software one|wasm measured faster)/,
    );
  }
  for (const elements of [0, -1, 1.5, NaN]) {
    await assert.rejects(
      recommendBackend({ elements }),
      RangeError,
      `elements ${elements}`,
    );
  }
});

Deno.test("gpujs: past 2^24 elements on one device, every element takes its own group's constants", async (t) => {
  // 'a' ends one element short of a 256-block boundary past 2^24, where
  // float32 division put element 2^24 + 255 in the next block (b's group)
  const aSize = 2 ** 24 + 255;
  for (const mode of ["webasm", "webgpu"] as const) {
    const adapter = await resolveGpuMode("auto").then((r) => r.adapter);
    await t.step({
      name: mode,
      ignore: mode === "webgpu" && !adapter.available,
      fn: async () => {
        const store = new ParameterStore();
        const a = store.add("a", [aSize], new Float32Array(aSize).fill(1));
        const b = store.add("b", [512], new Float32Array(512).fill(1));
        await using opt = new DecoupledLionW(
          [{ params: [a], lr: 0.25 }, { params: [b], lr: 0.5 }],
          {
            backend: "gpujs",
            gpuMode: mode,
            workers: 0,
          },
        );
        // gradients alternate in sign, so an element that read its
        // neighbour's inputs (an index rounded to float32) shows
        const alternate = (grad: Float32Array) =>
          grad.forEach((_, i) => (grad[i] = i % 2 ? 1 : -1));
        alternate(a.ensureGrad());
        alternate(b.ensureGrad());
        await opt.step({ metrics: true });
        // first step: p − lr·sign(g)
        const expected = (lr: number, i: number) => (i % 2 ? 1 - lr : 1 + lr);
        for (const i of [0, 2 ** 24 - 1, 2 ** 24, aSize - 2, aSize - 1]) {
          assert.equal(a.data[i], expected(0.25, i), `a[${i}]`);
        }
        let wrong = 0;
        for (let i = 0; i < aSize; i++) if (a.data[i] !== expected(0.25, i)) wrong++;
        b.data.forEach((x, i) => x !== expected(0.5, i) && wrong++);
        assert.equal(wrong, 0, "elements that took another element's inputs or constants");
        // metric partials past 2^24 read their own elements too: Σg² = n, u = lr·sign(g)
        const metrics = opt.getMetrics();
        assert.equal(metrics["l2_norm/grad/b"], Math.sqrt(512));
        assert.ok(Math.abs(metrics["cosine/update_grad/b"]! - 1) < 1e-6);
      },
    });
  }
});

Deno.test("gpujs: close() brings exp_avg back, so the state dict still reads after it", async () => {
  const w = new ParameterStore().add("w", [2], [1, 1]);
  const opt = new DecoupledLionW([w], {
    backend: "gpujs",
    gpuMode: "cpu",
    workers: 0,
    betas: [0.5, 0.5],
  });
  w.grad = [2, -4];
  await opt.step();
  await opt.close();
  assert.deepEqual([...opt.stateDict().state["w"]!.expAvg], [1, -2]);
});

Deno.test("gpujs: a worker that fails a step is replaced, and the next step starts from the host's state", async () => {
  // worker 1's second update throws (the workers start once the gpu.js mode is known)
  await withShardFault({ worker: 1, mode: "throw", atUpdate: 1 }, replacedWorkerScenario);
});

async function replacedWorkerScenario(): Promise<void> {
  const { a, b } = model();
  await using opt = open(a, b, { workers: 2 });
  a.grad = seededValues(a.size, 3);
  b.grad = seededValues(b.size, 4);
  await opt.step();
  await opt.pullState();
  const saved = { state: opt.stateDict(), a: a.data.slice(), b: b.data.slice() };
  await assert.rejects(opt.step(), { name: "ShardError" });
  // recover as the ShardError docs say: state dict and parameters
  opt.loadStateDict(saved.state);
  a.data.set(saved.a);
  b.data.set(saved.b);
  a.markWritten();
  b.markWritten();
  await opt.step();
  await opt.pullState();

  // the same step from the same state on the scalar backend
  const twin = model();
  twin.a.data.set(saved.a);
  twin.b.data.set(saved.b);
  await using reference = open(twin.a, twin.b, { backend: "js", workers: 0 });
  reference.loadStateDict(saved.state);
  twin.a.grad = a.grad;
  twin.b.grad = b.grad;
  await reference.step();
  const moment = opt.stateDict().state;
  const expected = reference.stateDict().state;
  for (const [param, twinParam] of [[a, twin.a], [b, twin.b]] as const) {
    let worst = 0;
    for (let i = 0; i < param.size; i++) {
      worst = Math.max(worst, Math.abs(param.data[i]! - twinParam.data[i]!));
      worst = Math.max(
        worst,
        Math.abs(moment[param.name]!.expAvg[i]! - expected[param.name]!.expAvg[i]!),
      );
    }
    assert.ok(worst < 1e-6, `${param.name}: off by ${worst}`);
  }
}
