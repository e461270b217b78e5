import assert from "node:assert/strict";
import { evaluateTargets, type MeasuredSize } from "../bench/_targets.ts";

Deno.test("the bench's targets, as data, give the values the bench computed for its dated run", async () => {
  // bench/results/2026-12-05.json: written by the bench when its targets were code
  const run = JSON.parse(
    await Deno.readTextFile(new URL("../bench/results/2026-12-05.json", import.meta.url)),
  ) as {
    machine: { gpu: { fallback: boolean }; gpuPeakGbps: number | null };
    results: MeasuredSize[];
    targets: { name: string; value: number | null; op: string; bound: number }[];
  };
  const targets = evaluateTargets(run.results, {
    maxWorkers: 2,
    softwareAdapter: run.machine.gpu.fallback,
    peakGbps: run.machine.gpuPeakGbps,
    kernelBytesPerElement: 28, // bench/gpujs_kernel_row.ts (no peak given: unused here)
  });
  // targets added since (the 8-bit moments') were not measured by that run
  const dated = new Set(run.targets.map(({ name }) => name));
  assert.deepEqual(
    targets.filter(({ name }) => !dated.has(name)).map(({ name, value }) => [name, value]),
    [
      ["8-bit / bfloat16 moments ≤ 1 (16M, error)", null],
      ["8-bit / float32 moments < 1 (16M, error)", null],
    ],
  );
  const kept = targets.filter(({ name }) => dated.has(name));
  assert.deepEqual(
    kept.map(({ name, value, op, bound }) => ({ name, value, op, bound })),
    run.targets,
  );
  // and a verdict per target: met, not met, or not measured
  assert.deepEqual(
    kept.map(({ met }) => met),
    run.targets.map(({ value, op, bound }) =>
      value === null ? null : op === ">=" ? value >= bound : value <= bound
    ),
  );
  // a strict bound: met only below it
  const strict = evaluateTargets(
    [{
      size: "16M",
      rows: ["lionw-wasm-2w-error", "lionw-wasm-2w-error-uint8"].map((id) => ({
        id,
        medianMs: 10,
        gElementsPerS: null,
        percentOfRoof: null,
      })),
    }],
    { maxWorkers: 2, softwareAdapter: false, peakGbps: null, kernelBytesPerElement: 28 },
  ).find(({ op }) => op === "<")!;
  assert.deepEqual([strict.value, strict.met], [1, false]);
});
