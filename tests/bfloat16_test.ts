/**
 * `momentumDtype: "bfloat16"`: every CPU engine equals torch's rule (the
 * lerp in float32, then `.to(torch.bfloat16)`) bit for bit, checkpoints hold
 * BF16 tensors, and the backends that cannot hold it refuse it.
 */

import assert from "node:assert/strict";
import {
  decodeCheckpoint,
  DecoupledLionW,
  encodeCheckpoint,
  LocalCollective,
  ParameterStore,
} from "../mod.ts";
import { decodeSafetensors } from "../src/io/safetensors.ts";
import { assertBitsEqual, fixtures } from "./_fixtures.ts";
import { assertStepMatches, buildCase, ENGINES, feedStep } from "./_reference_case.ts";

const BF16 = { momentumDtype: "bfloat16" } as const;

for (const engine of ENGINES) {
  Deno.test(`bfloat16 moments match torch bit for bit (${engine.name})`, async (t) => {
    for (const fixture of fixtures.bfloat16) {
      await t.step(fixture.name, async () => {
        const { opt, params } = buildCase(fixture, { ...engine.options, ...BF16 });
        try {
          for (const [index, step] of fixture.steps.entries()) {
            feedStep(opt, params, step);
            await opt.step({ metrics: index % 3 === 0 }); // metrics must not change the update
            assertStepMatches(opt, params, step, `${fixture.name} step ${index + 1}`);
          }
        } finally {
          await opt.close();
        }
      });
    }
  });
}

Deno.test("the bfloat16 fixture is not the float32 rule: with float32 moments its steps differ", async () => {
  const fixture = fixtures.bfloat16[0]!;
  const { opt, params } = buildCase(fixture, { backend: "js", workers: 0 });
  let differing = 0;
  for (const step of fixture.steps) {
    feedStep(opt, params, step);
    await opt.step();
    try {
      assertStepMatches(opt, params, step, "float32");
    } catch {
      differing++;
    }
  }
  assert.ok(differing > 0);
  await opt.close();
});

function bf16Optimizer(options = {}) {
  const store = new ParameterStore();
  const w = store.add("w", [3], [1, 2, 3]);
  const opt = new DecoupledLionW([w], { lr: 0.1, logger: null, ...BF16, ...options });
  return { w, opt };
}

Deno.test("bfloat16 state reads as exact float32 copies and loads rounded to nearest even", async () => {
  const { w, opt } = bf16Optimizer({ betas: [0.9, 0.5], backend: "js", workers: 0 });
  assert.equal(opt.momentumDtype, "bfloat16");
  w.grad = [1 / 3, -1, 2 ** -130];
  await opt.step();
  // lerp(0, g, 0.5) = g / 2, rounded to 8 significant bits
  assert.deepEqual([...opt.state(w)!.expAvg], [0.1669921875, -0.5, 2 ** -131]);
  const dict = opt.stateDict();
  const expAvg = Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN);
  opt.loadStateDict({ ...dict, state: { w: { expAvg } } });
  const loaded = opt.state(w)!.expAvg;
  assert.deepEqual([...loaded.subarray(0, 2)], [1, 1 + 2 ** -6]); // ties to even
  assert.ok(Number.isNaN(loaded[2]));
  await opt.close();
});

Deno.test("a bfloat16 optimizer's checkpoint holds BF16 moments, and resumes bit for bit", async () => {
  const { w, opt } = bf16Optimizer();
  w.grad = [0.3, -0.7, 1e-3];
  await opt.step();
  const bytes = await encodeCheckpoint(opt);
  const { tensors } = decodeSafetensors(bytes);
  assert.equal(tensors.get("w")!.dtype, "F32");
  assert.equal(tensors.get("exp_avg/w")!.dtype, "BF16");
  assert.equal(tensors.get("exp_avg/w")!.bytes.length, 3 * 2);
  const { w: v, opt: resumed } = bf16Optimizer();
  await decodeCheckpoint(resumed, bytes);
  assertBitsEqual(resumed.state(v)!.expAvg, opt.state(w)!.expAvg, "exp_avg");
  w.grad = v.grad = [0.1, 0.2, -0.3];
  await opt.step();
  await resumed.step();
  assertBitsEqual(v.data, w.data, "params");
  assertBitsEqual(resumed.state(v)!.expAvg, opt.state(w)!.expAvg, "exp_avg");
  // a float32 optimizer loads the BF16 moments widened, exactly
  const f32 = new DecoupledLionW([new ParameterStore().add("w", [3])], { logger: null });
  await decodeCheckpoint(f32, bytes);
  await Promise.all([opt.close(), resumed.close(), f32.close()]);
});

Deno.test("momentumDtype is checked, and refused where the state cannot be bfloat16", () => {
  const w = new ParameterStore().add("w", [2]);
  assert.throws(() => new DecoupledLionW([w], { momentumDtype: "float16" as "float32" }), {
    name: "RangeError",
    message:
      'Cannot create optimizer as \'momentumDtype\' must be "float32", "bfloat16" or "uint8": current value is "float16"',
  });
  assert.throws(() => new DecoupledLionW([w], { ...BF16, backend: "gpujs" }), {
    name: "RangeError",
    message:
      `Cannot create optimizer as 'momentumDtype' "bfloat16" runs on the CPU kernels ("wasm" or "js") without sharded state: current value of 'backend' is "gpujs"`,
  });
  assert.throws(
    () => new DecoupledLionW([w], { ...BF16, collective: new LocalCollective(), shardState: true }),
    /current value of 'shardState' is true/,
  );
});

for (const engine of [ENGINES[0]!, ENGINES[1]!, ENGINES[4]!]) {
  Deno.test(`a bfloat16 store's half-size slots give torch's bits too (${engine.name})`, async () => {
    const fixture = fixtures.bfloat16[0]!;
    const { opt, params } = buildCase(fixture, engine.options, { momentumDtype: "bfloat16" });
    try {
      assert.equal(opt.momentumDtype, "bfloat16"); // the store's, by default
      for (const [index, step] of fixture.steps.entries()) {
        feedStep(opt, params, step);
        await opt.step({ metrics: index % 2 === 0 });
        assertStepMatches(opt, params, step, `step ${index + 1}`);
      }
    } finally {
      await opt.close();
    }
  });
}

Deno.test("a bfloat16 store holds 10 bytes per parameter, and only bfloat16 optimizers", async () => {
  const sizes = [2 ** 20, 33, 1];
  const bytes = (momentumDtype: "float32" | "bfloat16") => {
    const store = new ParameterStore({ momentumDtype });
    sizes.forEach((size, i) => store.add(`p${i}`, [size]));
    return store;
  };
  const [f32, bf16] = [bytes("float32"), bytes("bfloat16")];
  assert.equal(bf16.momentumDtype, "bfloat16");
  // the large parameter dominates: 12 bytes an element against 10
  assert.ok(Math.abs(bf16.byteLength / f32.byteLength - 10 / 12) < 0.01, `${bf16.byteLength}`);
  assert.throws(() => new DecoupledLionW(bf16.parameters, { momentumDtype: "float32" }), {
    name: "RangeError",
    message:
      `Cannot create optimizer as the store's exp_avg slots are bfloat16-sized (ParameterStore momentumDtype "bfloat16"): 'momentumDtype' must be "bfloat16", current value is "float32"`,
  });
  assert.throws(() => new ParameterStore({ momentumDtype: "half" as "float32" }), RangeError);
  // neighbours' moments do not overlap: each parameter steps as it would alone
  const [a, b] = [bf16.parameters[1]!, bf16.parameters[2]!];
  await using opt = new DecoupledLionW([a, b], { logger: null, backend: "wasm", workers: 0 });
  a.grad = Array.from({ length: 33 }, (_, i) => i - 16);
  b.grad = [3];
  await opt.step();
  await opt.step();
  const alone = new ParameterStore({ momentumDtype: "bfloat16" }).add("b", [1]);
  await using single = new DecoupledLionW([alone], { logger: null, backend: "js", workers: 0 });
  alone.grad = [3];
  await single.step();
  await single.step();
  assertBitsEqual(opt.state(b)!.expAvg, single.state(alone)!.expAvg, "b's moment");
  assertBitsEqual(b.data, alone.data, "b");
});
