import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { oneParam, recordingLogger } from "./_util.ts";

Deno.test("ParamGroup setters check values and keep the old one on error", async () => {
  const { w } = oneParam();
  const opt = new DecoupledLionW([w], { lr: 1e-3, logger: null });
  const group = opt.paramGroups[0]!;
  for (const lr of [-1, -1e-12, NaN, Infinity, -Infinity]) {
    assert.throws(() => (group.lr = lr), {
      name: "RangeError",
      message:
        `Cannot set hyperparameter as 'paramGroups[0].lr' must be a finite number >= 0: current value is ${lr}`,
    });
  }
  assert.throws(() => (group.lr = "0.1" as unknown as number), TypeError);
  assert.equal(group.lr, 1e-3);
  group.lr = 0; // a schedule's warmup start or cosine end
  assert.equal(group.lr, 0);
  assert.throws(() => (group.betas = [0.9, 1.5]), RangeError);
  for (const weightDecay of [NaN, -0.01]) {
    assert.throws(() => (group.weightDecay = weightDecay), {
      name: "RangeError",
      message:
        `Cannot set hyperparameter as 'paramGroups[0].weightDecay' must be a finite number >= 0: current value is ${weightDecay}`,
    });
  }
  assert.equal(group.weightDecay, 0);
  assert.deepEqual(group.betas, [0.9, 0.99]);
  assert.throws(
    () => ((group.betas as unknown as number[])[0] = 0.5),
    TypeError,
    "betas are frozen",
  );
  group.betas = [0.8, 0.9];
  assert.deepEqual(group.betas, [0.8, 0.9]);
  assert.throws(() => ((group as { initialLr: number }).initialLr = 1), TypeError);
  assert.equal(group.initialLr, 1e-3);
  await opt.close();
});

Deno.test("loadStateDict() updates the ParamGroup objects in place", async () => {
  const store = new ParameterStore();
  const w = store.add("w", [2], [1, 1]);
  const b = store.add("b", [2], [1, 1]);
  await using opt = new DecoupledLionW([{ params: [w] }, { params: [b], weightDecay: 0 }], {
    lr: 0.1,
    logger: null,
  });
  const held = opt.paramGroups[0]!; // as a scheduler holds it
  const saved = opt.stateDict();
  const loaded = {
    ...saved,
    paramGroups: [
      { ...saved.paramGroups[0]!, lr: 0.05, betas: [0.5, 0.6] as const, initialLr: 0.2 },
      saved.paramGroups[1]!,
    ],
  };
  opt.loadStateDict(loaded);
  assert.equal(opt.paramGroups[0], held);
  assert.equal(held.lr, 0.05);
  assert.deepEqual(held.betas, [0.5, 0.6]);
  assert.equal(held.initialLr, 0.2);
  // the scheduler's writes reach the next step: lr 0.25 moves w by 0.25
  held.lr = 0.25;
  w.grad = [1, -1];
  await opt.step();
  assert.deepEqual([...w.data], [0.75, 1.25]);
  // and a bad write after the load is refused as before, naming the group
  assert.throws(() => (held.lr = -1), /'paramGroups\[0\]\.lr'/);
});

Deno.test("a ParamGroup setter gives the schema's warning for a high weight decay", async () => {
  const logger = recordingLogger();
  await using opt = new DecoupledLionW([oneParam().w], { logger });
  assert.equal(logger.messages.length, 0);
  opt.paramGroups[0]!.weightDecay = 0.01;
  assert.equal(logger.messages.length, 1);
  assert.match(logger.messages[0]!, /weightDecay=0\.01/);
});

Deno.test("a ParamGroup refuses keys it does not have and read-only ones, changing nothing", async () => {
  const { w } = oneParam();
  await using opt = new DecoupledLionW([w], { lr: 1e-3, weightDecay: 0.01, logger: null });
  const group = opt.paramGroups[0]! as unknown as Record<string, unknown>;
  assert.throws(() => (group.weight_decay = 0.1), {
    name: "TypeError",
    message:
      `Cannot set 'paramGroups[0].weight_decay' as a group has no such key: did you mean "weightDecay"? (known: params, initialLr, lr, betas, weightDecay, maximize, cautious)`,
  });
  assert.throws(() => (group.initialLr = 1), {
    name: "TypeError",
    message:
      "Cannot set 'paramGroups[0].initialLr' as it is read-only (weight decay follows lr / initialLr: set lr)",
  });
  assert.throws(() => (group.params = []), {
    name: "TypeError",
    message: /params' as it is read-only/,
  });
  assert.throws(() => Object.defineProperty(group, "momentum", { value: 0.9 }), TypeError);
  // deleting a key would leave a group that the state dict and a step cannot read
  for (const key of ["params", "lr", "betas", "weightDecay"]) {
    assert.throws(() => delete group[key], {
      name: "TypeError",
      message: `Cannot delete 'paramGroups[0].${key}' as a group keeps every key: set it instead`,
    }, key);
    assert.ok(key in group, key);
  }
  assert.equal(opt.paramGroups[0]!.weightDecay, 0.01);
  assert.equal("weight_decay" in group, false);
  assert.deepEqual(group.params, [w]);
  // the group still works as a group: setters, the state dict, a step
  opt.paramGroups[0]!.lr = 5e-4;
  assert.equal(opt.stateDict().paramGroups[0]!.lr, 5e-4);
  w.grad = [1, 1, 1];
  await opt.step();
  assert.equal(opt.iterations, 1);
});
