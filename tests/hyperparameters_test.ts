import assert from "node:assert/strict";
import { OPTION_KEYS } from "../src/optimizer/option_rules.ts";
import {
  checkLoadedValues,
  DEFAULT_HYPERPARAMETERS,
  HYPERPARAMETER_NAMES,
  kernelConstants,
  resolveHyperparameters,
  saveValues,
} from "../src/optimizer/hyperparameters.ts";
import { groupConstants } from "../src/kernels/kernel.ts";

Deno.test("the schema's defaults are the reference's", () => {
  assert.deepEqual(DEFAULT_HYPERPARAMETERS, {
    lr: 1e-4,
    betas: [0.9, 0.99],
    weightDecay: 0,
    maximize: false,
    cautious: false,
  });
  assert.deepEqual(HYPERPARAMETER_NAMES, ["lr", "betas", "weightDecay", "maximize", "cautious"]);
  // every hyperparameter is a known option key
  for (const name of HYPERPARAMETER_NAMES) assert.ok(OPTION_KEYS.includes(name), name);
});

Deno.test("resolveHyperparameters() checks given values and falls back for omitted ones", () => {
  const fallback = {
    lr: 0.5,
    betas: [0.1, 0.2] as const,
    weightDecay: 0.3,
    maximize: false,
    cautious: false,
  };
  assert.deepEqual(resolveHyperparameters("Cannot test", "g.", { lr: 0.25 }, fallback), {
    lr: 0.25,
    betas: [0.1, 0.2],
    weightDecay: 0.3,
    maximize: false,
    cautious: false,
  });
  assert.throws(
    () =>
      resolveHyperparameters("Cannot test", "", { maximize: 1 as unknown as boolean }, fallback),
    {
      name: "TypeError",
      message: "Cannot test as 'maximize' must be a boolean: current value is 1",
    },
  );
  // given values get the construction check: lr > 0
  assert.throws(() => resolveHyperparameters("Cannot test", "g.", { lr: 0 }, fallback), {
    name: "RangeError",
    message: "Cannot test as 'g.lr' must be a finite number > 0: current value is 0",
  });
  assert.throws(
    () => resolveHyperparameters("Cannot test", "", { betas: [0.9, 2] }, fallback),
    {
      name: "RangeError",
      message: "Cannot test as 'betas[1]' must be in [0, 1]: current value is 2",
    },
  );
});

Deno.test("checkLoadedValues() takes a schedule's lr 0 but not an initialLr of 0", () => {
  const loaded = { lr: 0, betas: [0.9, 0.99], weightDecay: 0, initialLr: 1e-3 };
  // a dict from before `maximize` existed loads with its default
  assert.deepEqual(checkLoadedValues("Cannot load", "paramGroups[0].", loaded), {
    ...loaded,
    maximize: false,
    cautious: false,
  });
  assert.throws(
    () => checkLoadedValues("Cannot load", "p.", { ...loaded, maximize: "yes" }),
    {
      name: "TypeError",
      message: `Cannot load as 'p.maximize' must be a boolean: current value is "yes"`,
    },
  );
  assert.throws(
    () => checkLoadedValues("Cannot load", "paramGroups[0].", { ...loaded, initialLr: 0 }),
    {
      message:
        "Cannot load as 'paramGroups[0].initialLr' must be a finite number > 0: current value is 0",
    },
  );
  assert.throws(
    () => checkLoadedValues("Cannot load", "p.", { ...loaded, weightDecay: undefined }),
    {
      name: "TypeError",
      message: "Cannot load as 'p.weightDecay' must be a number: current value is undefined",
    },
  );
});

Deno.test("saveValues() copies arrays, so a saved dict does not change with the group", () => {
  const betas = Object.freeze([0.9, 0.99] as const);
  const saved = saveValues({
    lr: 1,
    betas,
    weightDecay: 0,
    maximize: true,
    cautious: false,
    initialLr: 1,
  });
  assert.notEqual(saved.betas, betas);
  assert.deepEqual(saved, {
    lr: 1,
    betas: [0.9, 0.99],
    weightDecay: 0,
    maximize: true,
    cautious: false,
    initialLr: 1,
  });
});

Deno.test("kernelConstants() derives the reference's float32 constants", () => {
  const values = {
    lr: 3e-4,
    betas: [0.9, 0.99] as const,
    weightDecay: 0.1,
    maximize: false,
    cautious: false,
    initialLr: 1e-3,
  };
  assert.deepEqual(kernelConstants(values), groupConstants(3e-4, 1e-3, 0.9, 0.99, 0.1));
  // 1 − (3e-4 / 1e-3)·0.1 = 0.97, rounded to float32
  assert.equal(kernelConstants(values).decayMultiplier, Math.fround(1 - 0.3 * 0.1));
  assert.equal(kernelConstants(values).gradScale, 1);
  // maximize: the gradient negated, nothing else changed
  assert.deepEqual(kernelConstants({ ...values, maximize: true }), {
    ...groupConstants(3e-4, 1e-3, 0.9, 0.99, 0.1),
    gradScale: -1,
  });
});
