import assert from "node:assert/strict";
import {
  DecoupledLionW,
  type DecoupledLionWOptions,
  type Parameter,
  ParameterStore,
} from "../mod.ts";
import { withShardFault } from "./_shard_fault.ts";
import { seededValues } from "./_util.ts";

/** A cautious parameter of 3 blocks (it spans both workers' shards) and a plain one. */
function model(options: DecoupledLionWOptions) {
  const store = new ParameterStore();
  const big = store.add("big", [40_000], seededValues(40_000, 1));
  const small = store.add("small", [300], seededValues(300, 2));
  const opt = new DecoupledLionW([{ params: [big], cautious: true }, { params: [small] }], {
    lr: 1e-2,
    logger: null,
    ...options,
  });
  return { opt, params: [big, small] };
}

function feed(params: Parameter[], step: number): void {
  params.forEach((p, i) => (p.grad = seededValues(p.size, 10 * step + i, 0.5)));
}

Deno.test("a worker failing in the caution count fails the step without a hang; the pool recovers", async () => {
  await withShardFault({ worker: 1, mode: "throw", atUpdate: 1, phase: "count" }, async () => {
    const { opt, params } = model({ backend: "wasm", workers: 2 });
    const reference = model({ backend: "js", workers: 0 });
    feed(params, 0);
    feed(reference.params, 0);
    await opt.step();
    await reference.opt.step();
    const saved = { dict: opt.stateDict(), data: params.map((p) => p.data.slice()) };
    feed(params, 1);
    await assert.rejects(opt.step(), {
      name: "ShardError",
      message: /injected fault in the count/,
    });
    // nothing was updated: the failure came before every worker's update
    params.forEach((p, i) => assert.deepEqual(p.data, saved.data[i]));
    opt.loadStateDict(saved.dict);
    await opt.step();
    feed(reference.params, 1);
    await reference.opt.step();
    params.forEach((p, i) => assert.deepEqual(p.data, reference.params[i]!.data, p.name));
    assert.deepEqual(opt.stateDict(), reference.opt.stateDict());
    await Promise.all([opt.close(), reference.opt.close()]);
  });
});

Deno.test("cautious is a group setting: set between steps, saved and loaded with the state dict", async () => {
  const { opt, params } = model({ backend: "js", workers: 0 });
  assert.deepEqual(opt.paramGroups.map((g) => g.cautious), [true, false]);
  assert.throws(() => (opt.paramGroups[1]!.cautious = "yes" as unknown as boolean), {
    name: "TypeError",
    message:
      `Cannot set hyperparameter as 'paramGroups[1].cautious' must be a boolean: current value is "yes"`,
  });
  opt.paramGroups[1]!.cautious = true;
  feed(params, 0);
  await opt.step();
  const dict = opt.stateDict();
  assert.deepEqual(dict.paramGroups.map((g) => g.cautious), [true, true]);
  opt.paramGroups[0]!.cautious = false;
  opt.loadStateDict(dict);
  assert.equal(opt.paramGroups[0]!.cautious, true);
  // a dict from before `cautious` existed loads as not cautious
  const { cautious: _, ...older } = dict.paramGroups[0]!;
  opt.loadStateDict({
    ...dict,
    paramGroups: [older as typeof dict.paramGroups[0], dict.paramGroups[1]!],
  });
  assert.equal(opt.paramGroups[0]!.cautious, false);
  await opt.close();
});
