import assert from "node:assert/strict";
import { groupConstants } from "../src/kernels/kernel.ts";
import type { PlannedBlock } from "../src/step/step_plan.ts";
import { ControlBlock, ERROR_BYTES } from "../workers/control_block.ts";

const sizes = { workers: 2, groups: 2, maxBlocks: 4 };

/** The main thread's view and a worker's view of one buffer. */
function pair(): [ControlBlock, ControlBlock] {
  const main = new ControlBlock(sizes);
  return [main, new ControlBlock(sizes, main.buffer)];
}

Deno.test("ControlBlock: a step written by the main thread reads back the same in a worker", () => {
  const [main, worker] = pair();
  const groups = [
    groupConstants(1e-3, 1e-3, 0.9, 0.99, 0.1),
    groupConstants(0, 2e-3, 0.5, 0.25, 0),
  ];
  for (const nonFinite of ["error", "skip", "ignore"] as const) {
    for (const [metrics, params, state] of [[true, false, true], [false, true, false]]) {
      main.writeStep({
        groups,
        gate: { nonFinite, maxGradNorm: metrics ? 2.5 : Infinity },
        metrics: metrics!,
        writes: { params: params!, state: state! },
      });
      assert.deepEqual(worker.readStep(), {
        groups,
        gate: { nonFinite, maxGradNorm: metrics ? 2.5 : Infinity },
        metrics,
        writes: { params, state },
      });
      assert.equal(worker.readPull(), false);
    }
  }
  main.writePull();
  assert.equal(worker.readPull(), true);
});

Deno.test("ControlBlock: the block table and ranges read back per worker", () => {
  const [main, worker] = pair();
  const blocks: PlannedBlock[] = [
    {
      arena: 0,
      data: 16,
      grad: 2 ** 31 + 16,
      expAvg: 4_000_000_000,
      length: 7,
      group: 1,
      block: 0,
      firstBlock: 0,
    },
    { arena: 1, data: 32, grad: 48, expAvg: 64, length: 3, group: 0, block: 1, firstBlock: 1 },
    { arena: 1, data: 80, grad: 96, expAvg: 112, length: 9, group: 1, block: 2, firstBlock: 1 },
  ];
  main.writeBlocks(blocks, new Int32Array([0, 1, 3]));
  // offsets past 2^31 survive the Int32 table
  assert.deepEqual(worker.readBlocks(0), blocks.slice(0, 1));
  assert.deepEqual(worker.readBlocks(1), blocks.slice(1));
  assert.equal(worker.blockCount(), 3);
});

Deno.test("ControlBlock: the decision reads back, with its gradient scale", () => {
  const [main, worker] = pair();
  for (
    const decision of [
      { action: "update", gradScale: 1 },
      { action: "update", gradScale: 0.125 },
      { action: "skip" },
      { action: "abort" },
    ] as const
  ) {
    worker.writeDecision(decision);
    assert.deepEqual(main.readDecision(), decision);
  }
});

Deno.test("ControlBlock: a worker's error keeps its name, message and stack", () => {
  const [main, worker] = pair();
  assert.equal(main.readError(1), undefined);
  const error = { name: "TypeError", message: "bad — ünïcode", stack: "TypeError: bad\n    at x" };
  worker.writeError(1, error);
  assert.deepEqual(main.readError(1), error);
  assert.equal(main.readError(0), undefined);
  // a stack too long for the field is dropped, the name and message kept
  worker.writeError(0, { name: "RangeError", message: "long", stack: "x".repeat(ERROR_BYTES) });
  assert.deepEqual(main.readError(0), { name: "RangeError", message: "long" });
  main.clearErrors();
  assert.equal(main.readError(1), undefined);
});
