// Hand-computed values of Composer's formulas (composer/optim/scheduler.py)
// at the steps where each schedule changes shape.
import assert from "node:assert/strict";
import {
  constantSchedule,
  cosineAnnealingSchedule,
  cosineAnnealingWarmRestartsSchedule,
  cosineAnnealingWithWarmupSchedule,
  exponentialSchedule,
  linearSchedule,
  linearWithWarmupSchedule,
  multiStepSchedule,
  multiStepWithWarmupSchedule,
  polynomialSchedule,
  type Schedule,
  stepSchedule,
} from "../mod.ts";

const at = (schedule: Schedule, steps: number[]): number[] => steps.map(schedule);
/** Composer's _cosine_anneal with x already in [0, 1]. */
const cosine = (x: number, alphaF = 0): number =>
  alphaF + (1 - alphaF) * (1 + Math.cos(x * Math.PI)) / 2;

Deno.test("stepSchedule() decays by gamma every stepSize steps", () => {
  assert.deepEqual(
    at(stepSchedule({ stepSize: 3, gamma: 0.5 }), [0, 1, 2, 3, 5, 6, 7]),
    [1, 1, 1, 0.5, 0.5, 0.25, 0.25],
  );
  assert.equal(stepSchedule({ stepSize: 1 })(2), 0.1 ** 2); // gamma defaults to 0.1
});

Deno.test("multiStepSchedule() multiplies by gamma at each milestone reached, repeats included", () => {
  const alpha = multiStepSchedule({ milestones: [5, 2, 2], gamma: 0.5 });
  assert.deepEqual(at(alpha, [0, 1, 2, 4, 5, 100]), [1, 1, 0.25, 0.25, 0.125, 0.125]);
  assert.equal(multiStepSchedule({ milestones: [] })(10), 1);
});

Deno.test("constantSchedule() holds alpha before tMax and 1 from it", () => {
  assert.deepEqual(at(constantSchedule({ alpha: 0.3, tMax: 2 }), [0, 1, 2, 9]), [0.3, 0.3, 1, 1]);
  assert.deepEqual(at(constantSchedule({ alpha: 0.3, tMax: 0 }), [0, 1]), [1, 1]);
  assert.equal(constantSchedule({ tMax: 5 })(0), 1); // alpha defaults to 1
});

Deno.test("linearSchedule() interpolates and clips tau at 1", () => {
  const alpha = linearSchedule({ alphaI: 0.2, alphaF: 1, tMax: 4 });
  assert.deepEqual(at(alpha, [0, 2, 4, 8]), [0.2, 0.2 + 0.5 * 0.8, 1, 1]);
  assert.deepEqual(at(linearSchedule({ tMax: 4 }), [0, 1, 4, 5]), [1, 0.75, 0, 0]);
});

Deno.test("exponentialSchedule() decays continuously", () => {
  const alpha = exponentialSchedule({ gamma: 0.5, decayPeriod: 2 });
  assert.deepEqual(at(alpha, [0, 2, 3]), [1, 0.5, 0.5 ** 1.5]);
});

Deno.test("cosineAnnealingSchedule() follows half a cosine and holds alphaF past tMax", () => {
  const alpha = cosineAnnealingSchedule({ tMax: 8, alphaF: 0.2 });
  assert.deepEqual(
    at(alpha, [0, 2, 4, 8, 20]),
    [1, cosine(0.25, 0.2), cosine(0.5, 0.2), 0.2, 0.2],
  );
  assert.equal(cosineAnnealingSchedule({ tMax: 8 })(8), 0);
});

Deno.test("cosineAnnealingWarmRestartsSchedule() truncates each interval to an integer", () => {
  // t0 4, tMult 1.5: intervals 4, trunc(6) = 6, trunc(9) = 9, trunc(13.5) = 13
  const alpha = cosineAnnealingWarmRestartsSchedule({ t0: 4, tMult: 1.5 });
  assert.deepEqual(
    at(alpha, [0, 3, 4, 7, 10, 12, 19, 31, 32]),
    [1, cosine(3 / 4), 1, cosine(3 / 6), 1, cosine(2 / 9), 1, cosine(12 / 13), 1],
  );
  assert.deepEqual(
    at(cosineAnnealingWarmRestartsSchedule({ t0: 2, alphaF: 0.5 }), [0, 1, 2, 3]),
    [1, 0.75, 1, 0.75],
  );
});

Deno.test("cosineAnnealingWarmRestartsSchedule() throws once an interval decays to 0", () => {
  // t0 2, tMult 0.5: intervals 2, 1, then trunc(0.5) = 0
  const alpha = cosineAnnealingWarmRestartsSchedule({ t0: 2, tMult: 0.5 });
  assert.deepEqual(at(alpha, [0, 1, 2]), [1, cosine(0.5), 1]);
  assert.throws(() => alpha(3), {
    name: "RangeError",
    message:
      "Cannot evaluate cosineAnnealingWarmRestartsSchedule at step 3 as the interval between restarts has decayed to 0 (t0 2, tMult 0.5)",
  });
});

Deno.test("polynomialSchedule() does not clip tau past tMax, as Composer", () => {
  const alpha = polynomialSchedule({ power: 2, tMax: 10, alphaF: 0.1 });
  assert.deepEqual(at(alpha, [0, 5, 10]), [1, 0.1 + 0.25 * 0.9, 0.1]);
  assert.equal(alpha(20), 0.1 + 1 * 0.9); // (1 - 2)^2: rises again
  assert.ok(Number.isNaN(polynomialSchedule({ power: 0.5, tMax: 10 })(20)));
});

Deno.test("multiStepWithWarmupSchedule() warms up linearly, then counts milestones from step 0", () => {
  const alpha = multiStepWithWarmupSchedule({ tWarmup: 4, milestones: [2, 6], gamma: 0.5 });
  // a milestone inside the warmup takes effect when the warmup ends
  assert.deepEqual(at(alpha, [0, 1, 3, 4, 6]), [0, 0.25, 0.75, 0.5, 0.25]);
  assert.deepEqual(at(multiStepWithWarmupSchedule({ tWarmup: 0, milestones: [1] }), [0, 1]), [
    1,
    0.1,
  ]);
});

Deno.test("linearWithWarmupSchedule() warms up to alphaI, and tMax counts from step 0", () => {
  const alpha = linearWithWarmupSchedule({ tWarmup: 4, alphaI: 2, alphaF: 1, tMax: 12 });
  assert.deepEqual(at(alpha, [0, 2, 4, 8, 12, 30]), [0, 1, 2, 1.5, 1, 1]);
});

Deno.test("cosineAnnealingWithWarmupSchedule() warms up, then anneals to tMax (from step 0)", () => {
  const alpha = cosineAnnealingWithWarmupSchedule({ tWarmup: 4, tMax: 12, alphaF: 0.1 });
  assert.deepEqual(
    at(alpha, [0, 2, 4, 6, 8, 12, 40]),
    [0, 0.5, 1, cosine(0.25, 0.1), cosine(0.5, 0.1), 0.1, 0.1],
  );
});

Deno.test("schedules refuse bad durations and numbers with a RangeError that names them", () => {
  const bad = [-1, 1.5, NaN, Infinity, "3"] as unknown as number[];
  for (const value of bad) {
    const shown = typeof value === "string" ? `"${value}"` : String(value);
    assert.throws(() => stepSchedule({ stepSize: value }), {
      name: "RangeError",
      message:
        `Cannot create stepSchedule as 'stepSize' must be an integer > 0 (steps): current value is ${shown}`,
    });
    assert.throws(() => cosineAnnealingWithWarmupSchedule({ tWarmup: value, tMax: 10 }), {
      name: "RangeError",
      message:
        `Cannot create cosineAnnealingWithWarmupSchedule as 'tWarmup' must be an integer >= 0 (steps): current value is ${shown}`,
    });
    assert.throws(() => multiStepSchedule({ milestones: [1, value] }), {
      message:
        `Cannot create multiStepSchedule as 'milestones[1]' must be an integer >= 0 (steps): current value is ${shown}`,
    });
  }
  for (
    const make of [
      () => linearSchedule({ tMax: 0 }),
      () => cosineAnnealingSchedule({ tMax: 0 }),
      () => polynomialSchedule({ power: 1, tMax: 0 }),
      () => exponentialSchedule({ gamma: 0.5, decayPeriod: 0 }),
      () => cosineAnnealingWarmRestartsSchedule({ t0: 0 }),
      () => constantSchedule({ tMax: -2 }),
    ]
  ) {
    assert.throws(make, RangeError);
  }
  assert.throws(() => linearWithWarmupSchedule({ tWarmup: 10, tMax: 10 }), {
    name: "RangeError",
    message:
      "Cannot create linearWithWarmupSchedule as 'tMax' must be > 'tWarmup' (10): current value is 10",
  });
  assert.throws(() => cosineAnnealingWithWarmupSchedule({ tWarmup: 10, tMax: 3 }), RangeError);
  assert.throws(() => stepSchedule({ stepSize: 2, gamma: NaN }), {
    message: "Cannot create stepSchedule as 'gamma' must be a finite number: current value is NaN",
  });
  assert.throws(() => cosineAnnealingWarmRestartsSchedule({ t0: 2, tMult: -1 }), RangeError);
  for (const step of [-1, 0.5, NaN]) {
    assert.throws(() => stepSchedule({ stepSize: 2 })(step), {
      name: "RangeError",
      message:
        `Cannot evaluate schedule as 'step' must be an integer >= 0: current value is ${step}`,
    });
  }
});

Deno.test("warmup schedules with tWarmup 0 start at the full multiplier, not 0/0", () => {
  // no warmup: step 0 is already past it (t < 0 is false), so α(0) is the decay's start
  assert.equal(cosineAnnealingWithWarmupSchedule({ tWarmup: 0, tMax: 10 })(0), 1);
  assert.equal(cosineAnnealingWithWarmupSchedule({ tWarmup: 0, tMax: 10, alphaF: 0.1 })(10), 0.1);
  assert.equal(linearWithWarmupSchedule({ tWarmup: 0, tMax: 10 })(0), 1);
  assert.equal(linearWithWarmupSchedule({ tWarmup: 0, alphaI: 0.5, tMax: 10 })(0), 0.5);
  assert.equal(multiStepWithWarmupSchedule({ tWarmup: 0, milestones: [5] })(0), 1);
});

Deno.test("every schedule factory refuses unknown keys, naming the closest, and non-objects", () => {
  const cases: [string, () => unknown, string][] = [
    [
      "alpha_f",
      () => cosineAnnealingWithWarmupSchedule({ tWarmup: 1, tMax: 9, alpha_f: 0.1 } as never),
      "alphaF",
    ],
    ["t_max", () => cosineAnnealingSchedule({ tMax: 9, t_max: 3 } as never), "tMax"],
    ["step_size", () => stepSchedule({ stepSize: 2, step_size: 3 } as never), "stepSize"],
    ["gama", () => multiStepSchedule({ milestones: [1], gama: 0.5 } as never), "gamma"],
    [
      "twarmup",
      () => linearWithWarmupSchedule({ tWarmup: 1, tMax: 9, twarmup: 1 } as never),
      "tWarmup",
    ],
  ];
  for (const [key, make, closest] of cases) {
    assert.throws(make, {
      name: "TypeError",
      message: new RegExp(`unknown key "${key}".*did you mean "${closest}"`, "i"),
    });
  }
  assert.throws(() => cosineAnnealingSchedule(null as never), {
    name: "TypeError",
    message:
      "Cannot create cosineAnnealingSchedule as 'options' must be an object: current value is null",
  });
});

Deno.test("each of the eleven schedule factories takes every key it documents and refuses any other", () => {
  // every key of each factory, with legal values
  const factories: [string, (options: never) => Schedule, Record<string, unknown>][] = [
    ["stepSchedule", stepSchedule, { stepSize: 2, gamma: 0.5 }],
    ["multiStepSchedule", multiStepSchedule, { milestones: [1, 3], gamma: 0.5 }],
    ["constantSchedule", constantSchedule, { alpha: 0.5, tMax: 3 }],
    ["linearSchedule", linearSchedule, { alphaI: 1, alphaF: 0.1, tMax: 4 }],
    ["exponentialSchedule", exponentialSchedule, { gamma: 0.9, decayPeriod: 2 }],
    ["cosineAnnealingSchedule", cosineAnnealingSchedule, { tMax: 9, alphaF: 0.1 }],
    [
      "cosineAnnealingWarmRestartsSchedule",
      cosineAnnealingWarmRestartsSchedule,
      { t0: 3, tMult: 2, alphaF: 0.1 },
    ],
    ["polynomialSchedule", polynomialSchedule, { power: 2, tMax: 9, alphaF: 0.1 }],
    [
      "multiStepWithWarmupSchedule",
      multiStepWithWarmupSchedule,
      { tWarmup: 2, milestones: [4], gamma: 0.5 },
    ],
    [
      "linearWithWarmupSchedule",
      linearWithWarmupSchedule,
      { tWarmup: 2, alphaI: 1, alphaF: 0.1, tMax: 9 },
    ],
    [
      "cosineAnnealingWithWarmupSchedule",
      cosineAnnealingWithWarmupSchedule,
      { tWarmup: 2, tMax: 9, alphaF: 0.1 },
    ],
  ];
  for (const [name, make, options] of factories) {
    assert.ok(Number.isFinite(make(options as never)(5)), name);
    assert.throws(() => make({ ...options, warmup: 2 } as never), {
      name: "TypeError",
      message: new RegExp(`^Cannot create ${name} as 'options' has an unknown key "warmup"`),
    });
  }
});
