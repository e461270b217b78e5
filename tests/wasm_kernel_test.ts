import assert from "node:assert/strict";
import { ParameterStore } from "../mod.ts";
import { jsKernel } from "../src/kernels/js_kernel.ts";
import { groupConstants, type LionKernel, PARTIAL_COUNT } from "../src/kernels/kernel.ts";
import { parameterSlots } from "../src/store/slots.ts";
import { storeArenas } from "../src/store/parameter_store.ts";
import { planStep } from "../src/step/step_plan.ts";
import { buildLionWasm, renderLionWasmModule } from "../scripts/build_wasm.ts";
import {
  createWasmKernel,
  relaxedMaddIsFused,
  wasmKernelAvailable,
  wasmSimdSupport,
} from "../src/kernels/wasm_kernel.ts";
import { type MomentumDtype, readMoments, writeMoments } from "../src/store/moment_dtype.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { seededValues } from "./_util.ts";

Deno.test("the committed wasm module is what lion.wat builds to", async () => {
  const source = await Deno.readTextFile(new URL("../src/kernels/wasm/lion.wat", import.meta.url));
  const committed = await Deno.readTextFile(
    new URL("../src/kernels/wasm/lion_wasm.ts", import.meta.url),
  );
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

function runKernel(
  kernel: LionKernel,
  betas: [number, number],
  sizes: number[],
  dtype: MomentumDtype = "float32",
): Run {
  const store = new ParameterStore();
  // NaN and ±Infinity parameters on purpose: the store refuses them as initial values, so write them
  const params = sizes.map((size, i) => {
    const p = store.add(`p${i}`, [size]);
    p.data.set(hardValues(size, i));
    return p;
  });
  params.forEach((p, i) => {
    p.grad = hardValues(p.size, 100 + i);
    writeMoments(
      parameterSlots(p).expAvgView,
      hardValues(p.size, 200 + i).map((x) => x / 4),
      dtype,
    );
  });
  const plan = planStep(
    params.map((param) => ({ param, slots: parameterSlots(param), group: 0 })),
    64,
    { momentumDtype: dtype, groups: 1 },
  );
  const groups = [{
    ...groupConstants(3e-3, 1e-2, betas[0], betas[1], 0.1),
    momentBfloat16: dtype === "bfloat16" ? 1 : 0,
  }];
  const memory = storeArenas(store)[0]!.memory;
  const gradSquares = new Float64Array(plan.blocks.length);
  kernel.scanGradients(memory, plan.blocks, gradSquares, true);
  const partials = new Float64Array(plan.blocks.length * PARTIAL_COUNT);
  kernel.update(memory, plan.blocks, groups, partials, null);
  kernel.update(memory, plan.blocks, groups, null, null); // a second step, without metrics
  const all = new Float32Array(memory.buffer);
  const padding: number[] = [];
  const words = new Uint16Array(memory.buffer);
  for (const p of params) {
    const s = parameterSlots(p);
    for (const start of [s.data, s.grad, s.expAvg]) {
      for (let i = start + p.size; i % 16 !== 0; i++) padding.push(all[i]!);
    }
    // a bfloat16 moment fills its slot's first half: the rest stays zero too
    if (dtype === "bfloat16") {
      const end = 2 * (s.expAvg + Math.ceil(p.size / 16) * 16);
      for (let i = 2 * s.expAvg + p.size; i < end; i++) padding.push(words[i]!);
    }
  }
  return {
    data: Float32Array.from(params.flatMap((p) => [...p.data])),
    expAvg: Float32Array.from(
      params.flatMap((p) => [...readMoments(parameterSlots(p).expAvgView, dtype, p.size)]),
    ),
    partials,
    gradSquares,
    padding,
  };
}

const SIZES = [1, 3, 4, 5, 17, 64, 65, 200, 1001];

const VARIANTS = [
  { fma: "relaxed", simd: "relaxed" },
  { fma: "exact", simd: "relaxed" },
  { fma: "exact", simd: "strict" }, // the module without relaxed opcodes (Node 20)
] as const;

for (const { fma, simd } of VARIANTS) {
  for (const dtype of ["float32", "bfloat16"] as const) {
    for (const betas of [[0.9, 0.99], [0.3, 0.45], [0, 1], [1, 0]] as [number, number][]) {
      Deno.test(
        `wasm kernel (${fma} fma, ${simd} module, ${dtype} moments) equals the js kernel bit for bit, betas ${betas}`,
        () => {
          if (fma === "relaxed" && !relaxedMaddIsFused()) return; // the exact path covers this machine
          const expected = runKernel(jsKernel, betas, SIZES, dtype);
          const actual = runKernel(createWasmKernel(fma, simd), betas, SIZES, dtype);
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
          assertPartialsClose(actual.partials, expected.partials);
        },
      );
    }
  }
}

/**
 * The float32-run sums against the scalar kernel's float64 ones: squares
 * within 2e-6 relative (16 float32 products a lane: under 1e-6, plus the
 * rounding of each product), dot products within 2e-6 of √(Σx²·Σy²), the
 * bound of a float32 sum of |x·y| (Cauchy–Schwarz).
 */
function assertPartialsClose(actual: Float64Array, expected: Float64Array): void {
  const DOT = { 4: [2, 3], 5: [0, 3] } as Record<number, [number, number]>;
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i]!, expected[i]!];
    if (!Number.isFinite(e)) {
      assert.ok(
        Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)),
        `partial ${i}: ${a} vs ${e}`,
      );
      continue;
    }
    const block = i - (i % PARTIAL_COUNT);
    const dot = DOT[i % PARTIAL_COUNT];
    const scale = dot === undefined
      ? Math.abs(e)
      : Math.sqrt(expected[block + dot[0]]! * expected[block + dot[1]]!);
    assert.ok(Math.abs(a - e) <= 2e-6 * scale + 1e-300, `partial ${i}: ${a} vs ${e}`);
  }
}

Deno.test("the strict module validates without relaxed SIMD, and the kernel picks a build", () => {
  assert.equal(wasmSimdSupport(), "relaxed"); // Deno's V8
  assert.equal(createWasmKernel("exact", "strict").simd, "strict");
  assert.equal(createWasmKernel().simd, "relaxed");
  assert.throws(() => createWasmKernel("relaxed", "strict"), {
    name: "RangeError",
    message: "Cannot use fma 'relaxed' with the strict module, which has no relaxed_madd",
  });
});

Deno.test("metric sums fall back to exact float64 where float32 runs overflow or lose digits", () => {
  for (const scale of [1e25, 1e-25]) {
    const values = Array.from({ length: 100 }, (_, i) => scale * (1 + i / 100) * (i % 2 ? -1 : 1));
    const sums = [jsKernel, createWasmKernel("exact"), createWasmKernel("exact", "strict")].map(
      (kernel) => {
        const store = new ParameterStore();
        const p = store.add("p", [100], values);
        p.grad = values;
        const plan = planStep([{ param: p, slots: parameterSlots(p), group: 0 }], 64);
        const partials = new Float64Array(plan.blocks.length * PARTIAL_COUNT);
        const groups = [groupConstants(1e-3, 1e-3, 0.9, 0.99, 0)];
        kernel.update(storeArenas(store)[0]!.memory, plan.blocks, groups, partials, null);
        return partials;
      },
    );
    for (const wasm of sums.slice(1)) {
      for (let k = 0; k < PARTIAL_COUNT; k++) {
        const [a, e] = [wasm[k]!, sums[0]![k]!];
        assert.ok(Number.isFinite(a) && Math.abs(a - e) <= 1e-12 * Math.abs(e), `${scale}: ${k}`);
      }
    }
  }
});

Deno.test("the metrics' step tensor takes lr · sign(x) for the tiniest x, at any lr", () => {
  // beta1 = 0 and beta2 = 1: the step tensor's direction is g itself, here subnormal or zero, and
  // m stays as set; every sum large enough for the float32 runs to stand (no exact fallback)
  const grads = [2 ** -149, -(2 ** -149), 3e-45, 0, -0, 2 ** -126, -1e-40, 5e-45, 1, -0.5];
  const values = grads.map((_, i) => (i % 3) - 1 + 0.25);
  // 2^60: squares the float32 runs still hold; 2^110: they overflow, and the sums are recomputed
  for (const lr of [1e-3, 2 ** 60, 2 ** 110]) {
    const sums = [
      jsKernel,
      ...VARIANTS.map(({ fma, simd }) => createWasmKernel(fma === "relaxed" ? "auto" : fma, simd)),
    ].map(
      (kernel) => {
        const store = new ParameterStore();
        const p = store.add("p", [grads.length], values);
        p.grad = grads;
        parameterSlots(p).expAvgView.fill(1);
        const plan = planStep([{ param: p, slots: parameterSlots(p), group: 0 }]);
        const partials = new Float64Array(PARTIAL_COUNT);
        const groups = [groupConstants(lr, lr, 0, 1, 0)];
        kernel.update(storeArenas(store)[0]!.memory, plan.blocks, groups, partials, null);
        return partials;
      },
    );
    // Σu² is lr² for each of the 8 nonzero gradients, however tiny (no weight decay)
    assert.ok(sums[0]![2]! >= 8 * lr * lr * 0.99, `lr ${lr}: the scalar kernel's Σu²`);
    for (const wasm of sums.slice(1)) assertPartialsClose(wasm, sums[0]!);
  }
});

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

Deno.test("averageGradients() gives the float32 quotient on every kernel, then the scan's own sums of it", () => {
  const kernels = [
    jsKernel,
    ...VARIANTS.map(({ fma, simd }) => createWasmKernel(fma === "relaxed" ? "auto" : fma, simd)),
  ];
  for (const kernel of kernels) {
    for (const divisor of [1, 2, 3, 4, 6, 7, 8]) {
      for (const squares of [true, false, null]) {
        const store = new ParameterStore();
        const params = SIZES.map((size, i) => store.add(`p${i}`, [size]));
        // from subnormal to near overflow, NaN and ±Infinity among them
        const values = params.map((p, i) => hardValues(p.size, 31 * i + divisor));
        params.forEach((p, i) => parameterSlots(p).gradView.set(values[i]!));
        const plan = planStep(
          params.map((param) => ({ param, slots: parameterSlots(param), group: 0 })),
        );
        const memory = storeArenas(store)[0]!.memory;
        const sums = new Float64Array(plan.blocks.length).fill(-1);
        kernel.averageGradients(
          memory,
          plan.blocks,
          divisor,
          squares === null ? null : sums,
          squares ?? false,
        );
        params.forEach((p, i) => {
          const expected = values[i]!.map((x) => Math.fround(x / divisor));
          assertBitsEqual(parameterSlots(p).gradView, expected, `${kernel.name} ÷${divisor} p${i}`);
        });
        if (squares === null) {
          assert.ok(sums.every((x) => x === -1), `${kernel.name}: no scan asked, none written`);
          continue;
        }
        const scanned = new Float64Array(plan.blocks.length);
        kernel.scanGradients(memory, plan.blocks, scanned, squares);
        assert.deepEqual(sums, scanned, `${kernel.name} ÷${divisor} squares ${squares}`);
      }
    }
  }
});
