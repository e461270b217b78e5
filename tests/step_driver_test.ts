import assert from "node:assert/strict";
import { DecoupledLionW, LocalCollective, ParameterStore } from "../mod.ts";
import type { StepRequest, StepResult } from "../src/engine/engine.ts";
import {
  LOCAL_STEP,
  type LocalStep,
  runStep,
  runStepSync,
  type StepDriver,
  type StepProgram,
} from "../src/distributed/step_driver.ts";
import { STEP_DRIVERS, stepDriverRow } from "../src/distributed/step_drivers.ts";

/** A strategy that records what it waits for and what it is resumed with. */
function recordingDriver(trace: string[]): StepDriver {
  return {
    ...LOCAL_STEP,
    collective: new LocalCollective(),
    *program(local: LocalStep, metrics: boolean): StepProgram {
      const buffer = new Float32Array([1, 2]);
      const none = yield {
        ops: [{ kind: "allReduceSum", buffer, then: () => trace.push("then") }],
      };
      trace.push(`after ops: ${none}`);
      const result = yield { request: { metrics } as unknown as StepRequest };
      trace.push(`result: ${(result as unknown as { id: string }).id}`);
      yield { ops: [] };
      local.finish({} as StepRequest, result);
    },
  };
}

function recordingLocal(trace: string[]): LocalStep {
  return {
    prepare: () => undefined,
    run: (request) => {
      trace.push(`run metrics=${request.metrics}`);
      return Promise.resolve({ id: "async" } as unknown as StepResult);
    },
    runSync: (request) => {
      trace.push(`runSync metrics=${request.metrics}`);
      return { id: "sync" } as unknown as StepResult;
    },
    finish: () => {
      trace.push("finish");
      return true;
    },
    iterations: () => 0,
  };
}

Deno.test("runStep() and runStepSync() drive one program alike: collectives, the engine, the result back", async () => {
  const [async, sync] = [[], []] as [string[], string[]];
  await runStep(recordingDriver(async), recordingLocal(async), true, Infinity);
  runStepSync(recordingDriver(sync), recordingLocal(sync), true, Infinity);
  const expected = (run: string, id: string) => [
    "then",
    "after ops: undefined",
    `${run} metrics=true`,
    `result: ${id}`,
    "finish",
  ];
  assert.deepEqual(async, expected("run", "async"));
  assert.deepEqual(sync, expected("runSync", "sync"));
});

Deno.test("the strategy rows: sign-vote or data-parallel with a collective, local without; option rules read their capabilities", async () => {
  const options = { shardState: false, checkRanksEvery: 0, nonFinite: "error" as const };
  const comm = new LocalCollective();
  for (const exchange of ["float32", "bfloat16", "sign-vote"] as const) {
    assert.equal(stepDriverRow({ ...options, exchange, collective: undefined }).name, "local");
  }
  for (const exchange of ["float32", "bfloat16"] as const) {
    assert.equal(stepDriverRow({ ...options, exchange, collective: comm }).name, "data-parallel");
  }
  assert.equal(
    stepDriverRow({ ...options, exchange: "sign-vote", collective: comm }).name,
    "sign-vote",
  );
  const all = {
    writtenScans: false,
    clipping: true,
    deviceState: true,
    bfloat16Moments: true,
    uint8Moments: true,
  };
  assert.deepEqual(STEP_DRIVERS.map((row) => [row.name, row.capabilities]), [
    ["sign-vote", {
      shardedState: false,
      writtenScans: true,
      clipping: false,
      deviceState: false,
      bfloat16Moments: false,
      uint8Moments: false,
    }],
    ["data-parallel", { ...all, shardedState: true }],
    ["local", { ...all, shardedState: false, writtenScans: true }],
  ]);
  const w = new ParameterStore().add("w", [2]);
  assert.throws(() => new DecoupledLionW([w], { shardState: true }), {
    name: "RangeError",
    message:
      `Cannot create optimizer as 'shardState' shards the state across the ranks of a 'collective' ("data-parallel" training), and none was given: the options ask for "local" training`,
  });
  // the local and sign-vote strategies take the writes' scans (the gradients are stepped as
  // written), the data-parallel one scans the average again
  const { parameterSlots } = await import("../src/store/slots.ts");
  for (
    const [collective, exchange, writes] of [
      [undefined, "float32", true],
      [new LocalCollective(), "float32", false],
      [new LocalCollective(), "sign-vote", true],
    ] as const
  ) {
    const v = new ParameterStore().add("v", [2]);
    await using opt = new DecoupledLionW([v], {
      workers: 0,
      exchange,
      ...(collective ? { collective } : {}),
    });
    assert.equal(parameterSlots(v).owner?.writeGradient !== undefined, writes, `${opt.workers}`);
  }
});
