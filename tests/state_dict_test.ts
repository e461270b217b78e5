import assert from "node:assert/strict";
import { DecoupledLionW } from "../mod.ts";
import { assertBitsEqual, fixtures } from "./_fixtures.ts";
import { assertStepMatches, buildCase, feedStep } from "./_reference_case.ts";
import { oneParam } from "./_util.ts";

Deno.test("stateDict() and loadStateDict() continue bit-identically to never stopping", async () => {
  const fixture = fixtures.cases.find((c) => c.name === "cosine_warmup")!;
  const half = fixture.steps.length / 2;
  const first = buildCase(fixture);
  for (const step of fixture.steps.slice(0, half)) {
    feedStep(first.opt, first.params, step);
    await first.opt.step();
  }
  const saved = first.opt.stateDict();
  const savedParams = new Map([...first.params].map(([name, p]) => [name, p.data.slice()]));
  await first.opt.close();

  const second = buildCase(fixture);
  second.opt.loadStateDict(saved);
  for (const [name, data] of savedParams) second.params.get(name)!.data.set(data);
  assert.equal(second.opt.iterations, half);
  assert.equal(second.opt.paramGroups[0]!.initialLr, fixture.defaults.lr);
  for (const [index, step] of fixture.steps.slice(half).entries()) {
    feedStep(second.opt, second.params, step);
    await second.opt.step();
    assertStepMatches(second.opt, second.params, step, `resumed step ${half + index + 1}`);
  }
  await second.opt.close();
});

Deno.test("loadStateDict() rejects a dict that does not fit, changing nothing", async () => {
  const { store, w } = oneParam([1, 2, 3]);
  const v = store.add("v", [2]);
  const opt = new DecoupledLionW([{ params: [w] }, { params: [v], lr: 0.5 }], { logger: null });
  w.grad = [1, 1, 1];
  await opt.step();
  const good = opt.stateDict();
  const expAvg = opt.state(w)!.expAvg.slice();
  const bad: [unknown, RegExp][] = [
    [null, /must be an object/],
    [
      { ...good, paramGroups: good.paramGroups.slice(0, 1) },
      /has 1 parameter groups where the optimizer has 2/,
    ],
    [
      { ...good, paramGroups: [{ ...good.paramGroups[0]!, params: ["x"] }, good.paramGroups[1]] },
      /'paramGroups\[0\]\.params' must be \["w"\]/,
    ],
    [
      { ...good, paramGroups: [good.paramGroups[0], { ...good.paramGroups[1]!, lr: -1 }] },
      /'paramGroups\[1\]\.lr' must be a finite number >= 0: current value is -1/,
    ],
    [
      { ...good, paramGroups: [good.paramGroups[0], { ...good.paramGroups[1]!, initialLr: 0 }] },
      /'paramGroups\[1\]\.initialLr' must be a finite number > 0: current value is 0/,
    ],
    [
      {
        ...good,
        paramGroups: [{ ...good.paramGroups[0]!, weightDecay: -1 }, good.paramGroups[1]],
      },
      /'paramGroups\[0\]\.weightDecay' must be a finite number >= 0: current value is -1/,
    ],
    [
      { ...good, paramGroups: [{ ...good.paramGroups[0]!, weight_decay: 0 }, good.paramGroups[1]] },
      /'paramGroups\[0\]' has an unknown key "weight_decay": did you mean "weightDecay"\?/,
    ],
    [{ ...good, step: 3 }, /'dict' has an unknown key "step": did you mean "iterations"\?/],
    [
      { ...good, state: { w: { exp_avg: [0, 0, 0] } } },
      /'state\.w' has an unknown key "exp_avg": did you mean "expAvg"\?/,
    ],
    [
      { ...good, state: { w: { expAvg: [0, "1", 0] } } },
      /'state\.w\.expAvg\[1\]' must be a number: current value is "1"/,
    ],
    [
      { ...good, paramGroups: [{ ...good.paramGroups[0]!, betas: [2, 0] }, good.paramGroups[1]] },
      /betas\[0\]' must be in \[0, 1\]/,
    ],
    [
      { ...good, state: { w: { expAvg: new Float32Array(2) } } },
      /'state\.w\.expAvg' must have 3 values: current length is 2/,
    ],
    [
      { ...good, state: { ghost: { expAvg: new Float32Array(1) } } },
      /'state' has parameter 'ghost'/,
    ],
    [{ ...good, iterations: -1 }, /'iterations' must be a non-negative integer/],
  ];
  for (const [dict, message] of bad) {
    assert.throws(() => opt.loadStateDict(dict as never), message);
  }
  assertBitsEqual(opt.state(w)!.expAvg, expAvg, "exp_avg");
  assert.equal(opt.paramGroups[1]!.lr, 0.5);
  assert.equal(opt.iterations, 1);
  // loading replaces: a parameter without state in the dict loses its state
  opt.loadStateDict({ ...good, state: {}, iterations: 0 });
  assert.equal(opt.state(w), undefined);
  await opt.close();
});
