import assert from "node:assert/strict";
import { ParameterStore } from "../mod.ts";
import { jsKernel } from "../src/js_kernel.ts";
import { groupConstants, type LionKernel, PARTIAL_COUNT } from "../src/kernel.ts";
import { parameterSlots } from "../src/_slots.ts";
import { storeArenas } from "../src/parameter_store.ts";
import { planStep } from "../src/step_plan.ts";
import { buildLionWasm, renderLionWasmModule } from "../src/wasm/build_wasm.ts";
import { createWasmKernel, relaxedMaddIsFused, wasmKernelAvailable } from "../src/wasm_kernel.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { seededValues } from "./_util.ts";

Deno.test("the committed wasm module is what lion.wat builds to", async () => {
  const source = await Deno.readTextFile(new URL("../src/wasm/lion.wat", import.meta.url));
  const committed = await Deno.readTextFile(new URL("../src/wasm/lion_wasm.ts", import.meta.url));
  assert.equal(committed, renderLionWasmModule(await buildLionWasm(source)));
});

Deno.test("wasm kernel runs here, and the fma probe answers", () => {
  assert.ok(wasmKernelAvailable());
  assert.equal(typeof relaxedMaddIsFused(), "boolean");
  assert.equal(createWasmKernel("exact").fma, "exact");
  if (relaxedMaddIsFused()) assert.equal(createWasmKernel().fma, "relaxed");
  else assert.throws(() => createWasmKernel("relaxed"), RangeError);
});

/** Values that stress the update: signs, zeros, ties, subnormals, huge, NaN, ±Inf. */
function hardValues(count: number, seed: number): Float32Array {
  const out = seededValues(count, seed, 2);
  const specials = [0, -0, 1e-45, -3e-39, 1e30, -1e30, 0.5, -0.5, NaN, Infinity, -Infinity];
  for (let i = 0; i < count; i += 7) out[i] = specials[(i / 7) % specials.length]!;
  for (let i = 3; i < count; i += 11) out[i] = out[i]! * 1e-20;
  return out;
}

interface Run {
  data: Float32Array;
  expAvg: Float32Array;
  partials: Float64Array;
  gradSquares: Float64Array;
  padding: number[];
}

function runKernel(kernel: LionKernel, betas: [number, number], sizes: number[]): Run {
  const store = new ParameterStore();
  const params = sizes.map((size, i) => store.add(`p${i}`, [size], hardValues(size, i)));
  params.forEach((p, i) => {
    p.grad = hardValues(p.size, 100 + i);
    parameterSlots(p).expAvgView.set(hardValues(p.size, 200 + i).map((x) => x / 4));
  });
  const plan = planStep(
    params.map((param) => ({ param, slots: parameterSlots(param), group: 0 })),
    64,
  );
  const groups = [groupConstants(3e-3, 1e-2, betas[0], betas[1], 0.1)];
  const memory = storeArenas(store)[0]!.memory;
  const gradSquares = new Float64Array(plan.blocks.length);
  kernel.scanGradients(memory, plan.blocks, gradSquares, true);
  const partials = new Float64Array(plan.blocks.length * PARTIAL_COUNT);
  kernel.update(memory, plan.blocks, groups, partials, null);
  kernel.update(memory, plan.blocks, groups, null, null); // a second step, without metrics
  const all = new Float32Array(memory.buffer);
  const padding: number[] = [];
  for (const p of params) {
    const s = parameterSlots(p);
    for (const start of [s.data, s.grad, s.expAvg]) {
      for (let i = start + p.size; i % 16 !== 0; i++) padding.push(all[i]!);
    }
  }
  return {
    data: Float32Array.from(params.flatMap((p) => [...p.data])),
    expAvg: Float32Array.from(params.flatMap((p) => [...parameterSlots(p).expAvgView])),
    partials,
    gradSquares,
    padding,
  };
}

const SIZES = [1, 3, 4, 5, 17, 64, 65, 200, 1001];

for (const fma of ["relaxed", "exact"] as const) {
  for (const betas of [[0.9, 0.99], [0.3, 0.45], [0, 1], [1, 0]] as [number, number][]) {
    Deno.test(`wasm kernel (${fma} fma) equals the js kernel bit for bit, betas ${betas}`, () => {
      if (fma === "relaxed" && !relaxedMaddIsFused()) return; // the exact path covers this machine
      const expected = runKernel(jsKernel, betas, SIZES);
      const actual = runKernel(createWasmKernel(fma), betas, SIZES);
      assertBitsEqual(actual.data, expected.data, "params");
      assertBitsEqual(actual.expAvg, expected.expAvg, "exp_avg");
      assert.deepEqual(actual.padding, actual.padding.map(() => 0), "padding stays zero");
      for (let i = 0; i < expected.gradSquares.length; i++) {
        const [a, e] = [actual.gradSquares[i]!, expected.gradSquares[i]!];
        assert.ok(
          Object.is(a, e) || Math.abs(a - e) <= 1e-12 * Math.abs(e) || (isNaN(a) && isNaN(e)),
          `Σg² ${i}`,
        );
      }
      for (let i = 0; i < expected.partials.length; i++) {
        const [a, e] = [actual.partials[i]!, expected.partials[i]!];
        if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `partial ${i}`);
        else {assert.ok(
            a === e || Math.abs(a - e) <= 1e-6 * Math.abs(e) + 1e-300,
            `partial ${i}: ${a} vs ${e}`,
          );}
      }
    });
  }
}

Deno.test("every kernel rounds the moment's fma once where float64 would round twice", () => {
  // m = 1 + 2^-23, g = 2, so g - m = (2^23 - 1)·2^-23; with w = (2^23 + 1)·2^-47,
  // w·(g − m) = 2^-24·(1 − 2^-46): m + w·(g − m) lies just below the midpoint
  // between 1 + 2^-23 and 1 + 2^-22. Rounded once that is 1 + 2^-23; rounded to
  // float64 first it lands on the midpoint and ties to 1 + 2^-22.
  const w = (2 ** 23 + 1) * 2 ** -47;
  const m = 1 + 2 ** -23;
  assert.equal(Math.fround(m + w * (2 - m)), 1 + 2 ** -22, "the double rounding exists");
  const kernels: LionKernel[] = [jsKernel, createWasmKernel("exact")];
  if (relaxedMaddIsFused()) kernels.push(createWasmKernel("relaxed"));
  for (const kernel of kernels) {
    const store = new ParameterStore();
    const p = store.add("p", [4]);
    p.grad = [2, 2, 2, 2];
    const slots = parameterSlots(p);
    slots.expAvgView.fill(m);
    const plan = planStep([{ param: p, slots, group: 0 }]);
    kernel.update(
      storeArenas(store)[0]!.memory,
      plan.blocks,
      [
        groupConstants(1e-3, 1e-3, 0.9, 1 - w, 0),
      ],
      null,
      null,
    );
    assert.deepEqual(
      [...slots.expAvgView],
      [m, m, m, m],
      `${kernel.name} ${"fma" in kernel ? kernel.fma : ""}`,
    );
  }
});

Deno.test("huge and tiny finite values keep finite, non-zero sums", () => {
  // squares in float32 would overflow above 1.8e19 and vanish below 1e-23
  const values = [3e38, -1e20, 1e-30, -2e-38, 1e-45, 5, 0, 1];
  for (const kernel of [jsKernel, createWasmKernel("exact"), createWasmKernel()]) {
    const store = new ParameterStore();
    const p = store.add("p", [values.length], values);
    p.grad = values;
    const slots = parameterSlots(p);
    const plan = planStep([{ param: p, slots, group: 0 }]);
    const memory = storeArenas(store)[0]!.memory;
    const gradSquares = new Float64Array(1);
    kernel.scanGradients(memory, plan.blocks, gradSquares, true);
    const expected = values.reduce((sum, x) => sum + Math.fround(x) ** 2, 0);
    assert.ok(Math.abs(gradSquares[0]! - expected) <= 1e-12 * expected, `${kernel.name} Σg²`);
    const partials = new Float64Array(PARTIAL_COUNT);
    kernel.update(memory, plan.blocks, [groupConstants(1e-3, 1e-3, 0.9, 0.99, 0)], partials, null);
    assert.ok(partials.every(Number.isFinite), `${kernel.name} partials ${partials}`);
    assert.ok(Math.abs(partials[3]! - expected) <= 1e-12 * expected, `${kernel.name} metric Σg²`);
  }
  const tiny = [1e-30, 2e-30];
  for (const kernel of [jsKernel, createWasmKernel()]) {
    const store = new ParameterStore();
    const p = store.add("p", [2]);
    p.grad = tiny;
    const plan = planStep([{ param: p, slots: parameterSlots(p), group: 0 }]);
    const out = new Float64Array(1);
    kernel.scanGradients(storeArenas(store)[0]!.memory, plan.blocks, out, true);
    assert.ok(out[0]! > 0, `${kernel.name}: tiny gradients still count`);
  }
});
