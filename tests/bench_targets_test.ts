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
  assert.deepEqual(
    targets.map(({ name, value, op, bound }) => ({ name, value, op, bound })),
    run.targets,
  );
  // and a verdict per target: met, not met, or not measured
  assert.deepEqual(
    targets.map(({ met }) => met),
    run.targets.map(({ value, op, bound }) =>
      value === null ? null : op === ">=" ? value >= bound : value <= bound
    ),
  );
});
