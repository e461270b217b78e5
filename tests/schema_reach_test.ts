/**
 * One schema, every implementation: each hyperparameter of the schema (and
 * each option that sets a kernel group constant) is walked through every
 * implementation, which must honour it (a step differs when it changes) or
 * refuse it through its capability row: the js, wasm and gpujs engines, the
 * tfjs device path (Deno's webgpu), tfjs's `getConfig()` and its reload, and
 * checkpoints. A new row of the schema, or a new constant, fails here until
 * it has a variant below and every implementation takes it.
 */

import assert from "node:assert/strict";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import {
  decodeCheckpoint,
  DecoupledLionW,
  type DecoupledLionWOptions,
  encodeCheckpoint,
  ParameterStore,
} from "../mod.ts";
import { DecoupledLionWOptimizer } from "../tfjs/mod.ts";
import { type BackendCapabilities, BACKENDS } from "../src/engine/backends.ts";
import { GROUP_CONSTANT_NAMES, type GroupConstants } from "../src/kernels/kernel.ts";
import {
  DEFAULT_HYPERPARAMETERS,
  HYPERPARAMETER_NAMES,
  kernelConstants,
} from "../src/optimizer/hyperparameters.ts";
import { DEVICE_CONSTANTS } from "../tfjs/_device_programs.ts";
import { seededValues } from "./_util.ts";

tf.env().set("PROD", true);

/** Per hyperparameter: a value other than the default, and the capability a backend needs for it. */
const VARIANTS: Record<string, { value: unknown; needs?: keyof BackendCapabilities }> = {
  lr: { value: 3e-2 },
  betas: { value: [0.5, 0.9] },
  weightDecay: { value: 0.3 },
  maximize: { value: true },
  cautious: { value: true, needs: "cautious" },
};

/** Constants no hyperparameter sets, and the option that does. */
const OPTION_CONSTANTS: Partial<Record<keyof GroupConstants, Partial<DecoupledLionWOptions>>> = {
  momentBfloat16: { momentumDtype: "bfloat16" },
  momentUint8: { momentumDtype: "uint8" },
};

/** The smallest tensor whose moments are 8-bit. */
const SIZE = 4096;
const gradients = [1, 2, 3].map((step) => seededValues(SIZE, 40 + step, 0.5));

/** Three steps of the core optimizer; its values and state after them. */
async function core(options: DecoupledLionWOptions): Promise<Float32Array[]> {
  const store = new ParameterStore({ momentumDtype: options.momentumDtype ?? "float32" });
  const w = store.add("w", [SIZE], seededValues(SIZE, 7));
  await using opt = new DecoupledLionW([w], { workers: 0, logger: null, lr: 1e-2, ...options });
  for (const g of gradients) {
    w.grad = g;
    await opt.step();
  }
  await opt.pullState();
  return [w.data.slice(), opt.state(w)!.expAvg.slice()];
}

/** Three steps on tfjs's webgpu backend (the device path). */
async function device(options: DecoupledLionWOptions): Promise<Float32Array[]> {
  await tf.setBackend("webgpu");
  const w = tf.variable(tf.tensor1d(seededValues(SIZE, 7)), true, `reach.${Math.random()}`);
  const optimizer = new DecoupledLionWOptimizer({ logger: null, lr: 1e-2, ...options });
  for (const g of gradients) optimizer.applyGradients({ [w.name]: tf.tensor1d(g) });
  const values = Float32Array.from(await w.data());
  const moment = Float32Array.from(await (await optimizer.getWeights())[1]!.tensor.data());
  await optimizer.close();
  w.dispose();
  return [values, moment];
}

const differs = (a: Float32Array[], b: Float32Array[]) =>
  a.some((values, i) => values.some((x, j) => !Object.is(x, b[i]![j])));

const adapter = await navigator.gpu?.requestAdapter();
const deviceHere = adapter !== null && adapter !== undefined;
const deviceRequired = Deno.env.get("LIONW_REQUIRE_WEBGPU") === "1";

Deno.test("every hyperparameter of the schema has a variant here, and every kernel constant is set by one", () => {
  assert.deepEqual(Object.keys(VARIANTS).sort(), [...HYPERPARAMETER_NAMES].sort());
  const base = { ...DEFAULT_HYPERPARAMETERS, initialLr: 1e-2, lr: 1e-2 };
  const reached = new Set<string>(Object.keys(OPTION_CONSTANTS));
  for (const [name, { value }] of Object.entries(VARIANTS)) {
    const [from, to] = [kernelConstants(base), kernelConstants({ ...base, [name]: value })];
    for (const constant of GROUP_CONSTANT_NAMES) {
      if (!Object.is(from[constant], to[constant])) reached.add(constant);
    }
  }
  assert.deepEqual([...GROUP_CONSTANT_NAMES].filter((c) => !reached.has(c)), []);
  // the device path says what it does with each constant (a type error otherwise; here, at run time)
  assert.deepEqual(Object.keys(DEVICE_CONSTANTS).sort(), [...GROUP_CONSTANT_NAMES].sort());
});

const VARIED: [string, Partial<DecoupledLionWOptions>, keyof BackendCapabilities | undefined][] = [
  ...Object.entries(VARIANTS).map(([name, { value, needs }]) =>
    [name, { [name]: value }, needs] as [string, Partial<DecoupledLionWOptions>, typeof needs]
  ),
  ["momentumDtype", { momentumDtype: "bfloat16" }, "bfloat16Moments"],
  ["momentumDtype", { momentumDtype: "uint8" }, "uint8Moments"],
];

for (const [name, variant, needs] of VARIED) {
  const title = variant.momentumDtype === undefined ? name : `${name} "${variant.momentumDtype}"`;
  Deno.test(`${title}: every implementation honours it or refuses it through a capability row`, async (t) => {
    for (const backend of ["js", "wasm", "gpujs"] as const) {
      await t.step(backend, async () => {
        const options = { backend, gpuMode: "cpu" as const };
        if (needs !== undefined && !BACKENDS[backend][needs]) {
          await assert.rejects(core({ ...options, ...variant }), RangeError, `${backend} refuses`);
          return;
        }
        assert.ok(differs(await core(options), await core({ ...options, ...variant })));
      });
    }
    await t.step({
      name: "the tfjs device path (webgpu)",
      ignore: !deviceHere && !deviceRequired,
      fn: async () => {
        assert.ok(deviceHere, "a WebGPU adapter");
        const refused = variant.momentumDtype === "uint8"
          ? DEVICE_CONSTANTS.momentUint8
          : DEVICE_CONSTANTS.momentBfloat16;
        if (refused === "refused" && name === "momentumDtype") {
          await assert.rejects(device(variant), RangeError);
          return;
        }
        assert.ok(differs(await device({}), await device(variant)));
      },
    });
    await t.step("tfjs getConfig() and a reload from it", async () => {
      await tf.setBackend("cpu");
      const w = tf.variable(tf.tensor1d(seededValues(SIZE, 7)), true, `config.${name}`);
      const optimizer = new DecoupledLionWOptimizer({ workers: 0, logger: null, ...variant });
      optimizer.applyGradients({ [w.name]: tf.tensor1d(gradients[0]!) });
      const config = optimizer.getConfig();
      const reloaded = DecoupledLionWOptimizer.fromConfig(
        DecoupledLionWOptimizer,
        config,
      ) as DecoupledLionWOptimizer;
      reloaded.applyGradients({ [w.name]: tf.tensor1d(gradients[1]!) });
      const [value] = Object.values(variant);
      const inner = reloaded.optimizer;
      const got = name === "momentumDtype"
        ? inner.momentumDtype
        : (inner.paramGroups[0] as unknown as Record<string, unknown>)[name];
      assert.deepEqual(got, value);
      // a config taken before the first step (no saved groups yet) keeps it too
      const early = DecoupledLionWOptimizer.fromConfig(
        DecoupledLionWOptimizer,
        new DecoupledLionWOptimizer({ workers: 0, logger: null, ...variant }).getConfig(),
      ) as DecoupledLionWOptimizer;
      early.applyGradients({ [w.name]: tf.tensor1d(gradients[1]!) });
      const fromEarly = name === "momentumDtype"
        ? early.optimizer.momentumDtype
        : (early.optimizer.paramGroups[0] as unknown as Record<string, unknown>)[name];
      assert.deepEqual(fromEarly, value, "from a config taken before the first step");
      await optimizer.close();
      await reloaded.close();
      await early.close();
      w.dispose();
    });
    await t.step("checkpoints", async () => {
      const store = new ParameterStore({ momentumDtype: variant.momentumDtype ?? "float32" });
      const w = store.add("w", [SIZE], seededValues(SIZE, 7));
      await using opt = new DecoupledLionW([w], { workers: 0, logger: null, ...variant });
      w.grad = gradients[0]!;
      await opt.step();
      const bytes = await encodeCheckpoint(opt);
      const v = new ParameterStore().add("w", [SIZE]);
      await using fresh = new DecoupledLionW([v], { workers: 0, logger: null });
      await decodeCheckpoint(fresh, bytes);
      if (name === "momentumDtype") {
        // a float32 optimizer widens the saved bfloat16 moments exactly, dequantizes 8-bit ones
        assert.deepEqual(fresh.state(v)!.expAvg, opt.state(w)!.expAvg);
      } else {
        const [value] = Object.values(variant);
        assert.deepEqual((fresh.paramGroups[0] as unknown as Record<string, unknown>)[name], value);
      }
    });
  });
}
