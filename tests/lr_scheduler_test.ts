import assert from "node:assert/strict";
import {
  cosineAnnealingWithWarmupSchedule,
  DecoupledLionW,
  linearSchedule,
  LrScheduler,
  ParameterStore,
  polynomialSchedule,
  stepSchedule,
} from "../mod.ts";

function twoGroups(): { opt: DecoupledLionW; store: ParameterStore } {
  const store = new ParameterStore();
  const opt = new DecoupledLionW(
    [{ params: [store.add("a", [2], [1, 1])], lr: 0.1 }, {
      params: [store.add("b", [2], [1, 1])],
      lr: 0.4,
      weightDecay: 0.5,
    }],
    { backend: "js", workers: 0, logger: null },
  );
  return { opt, store };
}

Deno.test("LrScheduler sets lr = initialLr × Π α(t) in every group, from t = 0", async () => {
  const { opt } = twoGroups();
  const scheduler = new LrScheduler(
    opt,
    linearSchedule({ alphaI: 1, alphaF: 0.5, tMax: 2 }),
    stepSchedule({ stepSize: 1, gamma: 0.5 }),
  );
  const lrs = () => opt.paramGroups.map((group) => group.lr);
  assert.deepEqual(lrs(), [0.1, 0.4]);
  scheduler.step(); // α = 0.75 × 0.5
  assert.deepEqual(lrs(), [0.1 * 0.375, 0.4 * 0.375]);
  scheduler.step(); // α = 0.5 × 0.25
  assert.deepEqual(lrs(), [0.1 * 0.125, 0.4 * 0.125]);
  assert.equal(scheduler.t, 2);
  assert.equal(scheduler.alpha, 0.125);
  assert.deepEqual(opt.paramGroups.map((group) => group.initialLr), [0.1, 0.4]);
  await opt.close();
});

Deno.test("LrScheduler's warmup runs the first step at lr 0, and weight decay follows lr / initialLr", async () => {
  const { opt, store } = twoGroups();
  const scheduler = new LrScheduler(
    opt,
    cosineAnnealingWithWarmupSchedule({ tWarmup: 2, tMax: 6 }),
  );
  const [a, b] = [store.get("a")!, store.get("b")!];
  a.grad = [1, -1];
  b.grad = [1, -1];
  await opt.step();
  // lr 0: no update, and decay 1 - (0 / 0.4) · 0.5 = 1 leaves b alone
  assert.deepEqual([...a.data, ...b.data], [1, 1, 1, 1]);
  scheduler.step(); // α = 0.5
  await opt.step();
  // b: p · (1 - 0.5 · 0.5) - 0.2 · sign(lerp(m, g, 0.1)), m = 0.01 · g after step 1
  assert.deepEqual([...a.data], [
    Math.fround(1 - Math.fround(0.05)),
    Math.fround(1 + Math.fround(0.05)),
  ]);
  assert.deepEqual([...b.data], [
    Math.fround(0.75 - Math.fround(0.2)),
    Math.fround(0.75 + Math.fround(0.2)),
  ]);
  await opt.close();
});

Deno.test("LrScheduler.stateDict() and loadStateDict() restore t and the lrs it implies", async () => {
  const { opt } = twoGroups();
  const scheduler = new LrScheduler(opt, stepSchedule({ stepSize: 2, gamma: 0.5 }));
  for (let i = 0; i < 5; i++) scheduler.step();
  const saved = scheduler.stateDict();
  assert.deepEqual(saved, { t: 5 });
  const { opt: other } = twoGroups();
  const resumed = new LrScheduler(other, stepSchedule({ stepSize: 2, gamma: 0.5 }));
  resumed.loadStateDict(saved);
  assert.deepEqual(other.paramGroups.map((g) => g.lr), opt.paramGroups.map((g) => g.lr));
  assert.deepEqual(other.paramGroups.map((g) => g.lr), [0.1 * 0.25, 0.4 * 0.25]);
  for (const t of [-1, 1.5, NaN, "3"]) {
    assert.throws(() => resumed.loadStateDict({ t } as unknown as { t: number }), {
      name: "RangeError",
      message: `Cannot load scheduler state as 't' must be an integer >= 0: current value is ${
        typeof t === "string" ? `"${t}"` : t
      }`,
    });
  }
  assert.equal(resumed.t, 5);
  await Promise.all([opt.close(), other.close()]);
});

Deno.test("LrScheduler refuses a step whose lr is not finite and changes nothing", async () => {
  const { opt } = twoGroups();
  const scheduler = new LrScheduler(opt, polynomialSchedule({ power: 0.5, tMax: 1 }));
  scheduler.step(); // t = 1: α = 0
  assert.deepEqual(opt.paramGroups.map((g) => g.lr), [0, 0]);
  assert.throws(() => scheduler.step(), {
    name: "RangeError",
    message:
      "Cannot schedule step 2 as the learning rate of paramGroups[0] must be a finite number >= 0: current value is NaN (alpha NaN)",
  });
  assert.equal(scheduler.t, 1);
  assert.deepEqual(opt.paramGroups.map((g) => g.lr), [0, 0]);
  await opt.close();
});

Deno.test("new LrScheduler() says which argument is not a schedule, and what it must be", () => {
  const { opt } = twoGroups();
  assert.throws(() => new LrScheduler(opt, 0.5 as never), {
    name: "TypeError",
    message:
      /^Cannot create LrScheduler as 'schedules\[0\]' \(argument 2\) must be a schedule, a function of the step .*: current value is 0\.5$/,
  });
  assert.throws(
    () => new LrScheduler(opt, stepSchedule({ stepSize: 1 }), "x" as never),
    /'schedules\[1\]' \(argument 3\)/,
  );
  assert.throws(() => new LrScheduler({} as never), /'optimizer' must have paramGroups/);
  assert.equal(opt.paramGroups[0]!.lr, opt.paramGroups[0]!.initialLr); // nothing applied
});
