import assert from "node:assert/strict";
import { ParameterStore } from "../mod.ts";
import { parameterSlots } from "../src/store/slots.ts";
import type { EngineOptions } from "../src/optimizer/option_rules.ts";
import { startEngine } from "../src/engine/engine_factory.ts";
import { STEP_DRIVERS } from "../src/distributed/step_drivers.ts";
import { openShardRunner } from "../src/engine/runner_spec.ts";
import { wasmKernelAvailable } from "../src/kernels/wasm_kernel.ts";
import { recordingLogger, runChild } from "./_util.ts";

const ENGINE: EngineOptions = {
  backend: "auto",
  workers: "auto",
  gpuMode: "auto",
  fma: "auto",
  nonFinite: "error",
  maxGradNorm: Infinity,
  workerUrl: undefined,
  collective: undefined,
  shardState: false,
  checkRanksEvery: 0,
  exchange: "float32",
  strategy: STEP_DRIVERS.at(-1)!, // local
  momentumDtype: undefined,
};

function specFor(store: ParameterStore, options: Partial<EngineOptions> = {}) {
  const memory = parameterSlots(store.parameters[0]!).memory;
  return {
    options: { ...ENGINE, ...options },
    memory,
    elements: store.size,
    maxBlocks: 1,
    groups: 1,
    logger: recordingLogger(),
  };
}

Deno.test("startEngine() takes wasm where WebAssembly SIMD runs, inline for a small model", async () => {
  const store = new ParameterStore();
  store.add("w", [1000]);
  const started = startEngine(specFor(store));
  await started.ready;
  const backend = wasmKernelAvailable() ? "wasm" : "js";
  assert.equal(started.engine.backend, backend);
  assert.equal(started.engine.workers, 0);
  assert.equal(started.engine.stateLives, "host");
  assert.match(started.choice().reason, /^auto: /);
  await started.engine.close();
});

Deno.test("startEngine() runs inline, with a warning, where the memory is not shared", async () => {
  const store = new ParameterStore({ shared: false });
  store.add("w", [8]);
  const spec = specFor(store, { workers: 2, backend: "js" });
  const started = startEngine(spec);
  assert.equal(started.engine.workers, 0);
  assert.deepEqual(started.choice(), { backend: "js", reason: "asked for" });
  assert.deepEqual(spec.logger.messages, [
    "Running inline instead of on 2 workers as the store's memory is not shared",
  ]);
  await started.engine.close();
});

Deno.test("startEngine() resolves the gpu.js mode of gpujs in the background, keeping state on the device", async () => {
  const store = new ParameterStore();
  store.add("w", [8]);
  const started = startEngine(specFor(store, { backend: "gpujs", gpuMode: "cpu", workers: 0 }));
  assert.equal(started.engine.stateLives, "device");
  assert.equal(started.choice().gpuMode, undefined); // not yet known
  await started.ready;
  assert.equal(started.choice().gpuMode, "cpu");
  assert.match(started.choice().reason, /^asked for; gpu\.js mode cpu: asked for$/);
  await started.engine.close();
});

Deno.test("openShardRunner() updates in place for the CPU backends", async () => {
  const store = new ParameterStore();
  store.add("w", [8]);
  const memories = [parameterSlots(store.parameters[0]!).memory.arenas[0]!.memory];
  for (const backend of ["js", "wasm"] as const) {
    if (backend === "wasm" && !wasmKernelAvailable()) continue;
    const runner = await openShardRunner({ backend, fma: "auto", gpuMode: undefined }, memories);
    assert.equal(runner.stateLives, "host");
    await runner.close();
  }
});

Deno.test("without the entry point's registration the engine runs inline and gpujs says what to import", async () => {
  const { stdout } = await runChild(new URL("./_unregistered_child.ts", import.meta.url));
  const result = JSON.parse(stdout);
  assert.equal(result.workers, 0);
  assert.match(result.reason, /no worker pool is registered/);
  assert.match(result.gpujs, /the gpu\.js edge is not registered: import "@decoupled\/lionw"/);
});

Deno.test("a started engine hands the grad setter a scanning writer only where the step would scan on the host", async () => {
  const store = new ParameterStore();
  store.add("w", [1000]);
  const started = startEngine(specFor(store, { backend: "js", workers: 0 }));
  const gate = (nonFinite: "error" | "ignore", maxGradNorm: number) => ({ nonFinite, maxGradNorm });
  assert.equal(started.gradientWriter(gate("ignore", Infinity)), undefined); // no scan to save
  assert.equal(typeof started.gradientWriter(gate("error", Infinity)), "function");
  assert.equal(typeof started.gradientWriter(gate("ignore", 1)), "function");
  assert.equal(started.copies.deviceNewer, false);
  await started.engine.close();
  // state on a device: the step scans what it uploads, so the setter only copies
  const device = startEngine(specFor(store, { backend: "gpujs", gpuMode: "cpu", workers: 0 }));
  assert.equal(device.gradientWriter(gate("error", 1)), undefined);
  await device.ready;
  await device.engine.close();
});
