import assert from "node:assert/strict";
import { DecoupledLionW, type Parameter, ParameterStore } from "../mod.ts";
import { jsKernel } from "../src/kernels/js_kernel.ts";
import { createWasmKernel } from "../src/kernels/wasm_kernel.ts";
import { BLOCK_ELEMENTS, planStep } from "../src/step/step_plan.ts";
import { gradientWriter, writtenScan } from "../src/step/written_scan.ts";
import { parameterSlots } from "../src/store/slots.ts";

/** Values with every kind of magnitude, some of them exactly representable. */
function gradient(size: number, seed: number): Float32Array {
  return Float32Array.from({ length: size }, (_, i) => Math.sin(i * seed) * 10 ** ((i % 7) - 3));
}

Deno.test("gradientWriter() copies exactly and gives the step scan's own sums per block", () => {
  for (const kernel of [jsKernel, createWasmKernel("auto")]) {
    // one block, a partial block, several chunks and a partial chunk
    for (const size of [5, BLOCK_ELEMENTS + 3, 9 * BLOCK_ELEMENTS + 11]) {
      const store = new ParameterStore();
      const p = store.add("p", [size]);
      const slots = parameterSlots(p);
      const values = gradient(size, 3);
      gradientWriter(kernel, true)(slots, values);
      assert.deepEqual(slots.gradView, values, `${kernel.name} ${size}: the copy`);
      // what the step's scan computes over the same blocks
      slots.hasGrad = true;
      const plan = planStep([{ param: p, slots, group: 0 }]);
      const expected = new Float64Array(plan.blocks.length);
      kernel.scanGradients(slots.memory.arenas[0]!.memory, plan.blocks, expected, true);
      assert.deepEqual(slots.gradScan, { sums: expected, squares: true }, `${kernel.name} ${size}`);
      assert.deepEqual(writtenScan(plan, true), expected);
      // the verdict alone: the scan's own too, and not taken for Σg²
      gradientWriter(kernel, false)(slots, values);
      const verdict = new Float64Array(plan.blocks.length);
      kernel.scanGradients(slots.memory.arenas[0]!.memory, plan.blocks, verdict, false);
      assert.deepEqual(writtenScan(plan, false), verdict);
      assert.equal(writtenScan(plan, true), null);
    }
  }
});

Deno.test("writtenScan() is null once a view of a gradient was handed out, or a gradient was not written by the library", () => {
  const store = new ParameterStore();
  const a = store.add("a", [4]);
  const b = store.add("b", [4]);
  const writer = gradientWriter(jsKernel, true);
  const plan = () =>
    planStep([a, b].map((param, group) => ({ param, slots: parameterSlots(param), group })));
  for (const p of [a, b]) writer(parameterSlots(p), [1, 2, 3, 4]);
  assert.deepEqual(writtenScan(plan(), true), new Float64Array([30, 30]));
  b.ensureGrad(); // a view: b may now be written in place
  assert.equal(writtenScan(plan(), true), null);
});

/** A step's outcome: values, state, the report. */
async function run(
  write: (p: Parameter, values: Float32Array) => void,
  options: { workers: number; backend: "wasm" | "js"; maxGradNorm?: number },
) {
  const store = new ParameterStore();
  const a = store.add("a", [3 * BLOCK_ELEMENTS + 5], gradient(3 * BLOCK_ELEMENTS + 5, 7));
  const b = store.add("b", [9], gradient(9, 2));
  await using opt = new DecoupledLionW([a, b], { lr: 1e-2, weightDecay: 0.1, ...options });
  const reports = [];
  for (let step = 1; step <= 3; step++) {
    write(a, gradient(a.size, step + 10));
    write(b, gradient(b.size, step + 20));
    await opt.step({ metrics: true });
    reports.push(opt.lastStep, opt.getMetrics());
  }
  return { a: [...a.data], b: [...b.data], m: [...opt.state(a)!.expAvg], reports };
}

Deno.test("a step decided from the writes' scans equals one that scans: values, state, norm, scale, metrics", async () => {
  const set = (p: Parameter, values: Float32Array) => (p.grad = values);
  const inPlace = (p: Parameter, values: Float32Array) => p.ensureGrad().set(values);
  for (const backend of ["wasm", "js"] as const) {
    for (const workers of [0, 2]) {
      for (const maxGradNorm of [Infinity, 0.5]) {
        const options = { backend, workers, maxGradNorm };
        const [written, scanned] = [await run(set, options), await run(inPlace, options)];
        const what = JSON.stringify(options);
        // the first difference, not a diff of 50,000 numbers
        for (const key of ["a", "b", "m"] as const) {
          const i = written[key].findIndex((x, j) => !Object.is(x, scanned[key][j]));
          assert.equal(i, -1, `${what}: ${key}[${i}] ${written[key][i]} vs ${scanned[key][i]}`);
        }
        assert.deepEqual(written.reports, scanned.reports, what);
      }
    }
  }
});

Deno.test("a non-finite gradient still throws and changes nothing, whichever way it was written", async () => {
  const store = new ParameterStore();
  const w = store.add("w", [BLOCK_ELEMENTS + 7], gradient(BLOCK_ELEMENTS + 7, 5));
  await using opt = new DecoupledLionW([w], { lr: 1e-2, workers: 0 });
  const before = [...w.data];
  const bad = gradient(w.size, 9);
  for (const value of [NaN, Infinity, -Infinity]) {
    bad[BLOCK_ELEMENTS + 3] = value;
    w.grad = bad; // the setter: scanned as written
    await assert.rejects(opt.step(), /holds NaN or Infinity/, `setter, ${value}`);
    assert.deepEqual([...w.data], before);
  }
  // a finite gradient through the setter, then a NaN written into the slot in place
  const view = w.ensureGrad();
  w.grad = gradient(w.size, 9);
  view[0] = NaN;
  await assert.rejects(opt.step(), /holds NaN or Infinity/, "ensureGrad() after the setter");
  assert.deepEqual([...w.data], before);
});

Deno.test("every path that changes a gradient after the setter scanned it makes the step scan again", async (t) => {
  const size = BLOCK_ELEMENTS + 7;
  const finite = () => gradient(size, 9);
  const withNaN = () => {
    const g = finite();
    g[BLOCK_ELEMENTS + 3] = NaN;
    return g;
  };
  for (const workers of [0, 2]) {
    const fresh = () => {
      const store = new ParameterStore();
      const w = store.add("w", [size], gradient(size, 5));
      return { w, opt: new DecoupledLionW([w], { lr: 1e-2, workers, logger: null }) };
    };
    await t.step(`workers ${workers}: a NaN through the grad getter's view`, async () => {
      const { w, opt } = fresh();
      const before = [...w.data];
      w.grad = finite(); // scanned as written: finite
      w.grad![0] = NaN; // the getter hands out the view: the scan no longer holds
      await assert.rejects(opt.step(), /holds NaN or Infinity/);
      assert.deepEqual([...w.data], before);
      await opt.close();
    });
    await t.step(`workers ${workers}: zeroGrad({ setToNone: false }) after a NaN`, async () => {
      const { w, opt } = fresh();
      w.grad = withNaN();
      await assert.rejects(opt.step(), /holds NaN or Infinity/);
      opt.zeroGrad({ setToNone: false }); // zeros now: the NaN write's verdict is gone
      await opt.step();
      assert.equal(opt.lastStep.applied, true);
      assert.equal(opt.iterations, 1);
      await opt.close();
    });
    await t.step(`workers ${workers}: a finite write after a rejected one`, async () => {
      const { w, opt } = fresh();
      w.grad = withNaN();
      await assert.rejects(opt.step(), /holds NaN or Infinity/);
      w.grad = finite();
      await opt.step();
      assert.equal(opt.iterations, 1);
      await opt.close();
    });
    await t.step(
      `workers ${workers}: ensureGrad() after zeroGrad(), then a NaN in place`,
      async () => {
        const { w, opt } = fresh();
        const before = [...w.data];
        w.grad = finite();
        opt.zeroGrad(); // set to none
        w.ensureGrad()[5] = Infinity;
        await assert.rejects(opt.step(), /holds NaN or Infinity/);
        assert.deepEqual([...w.data], before);
        await opt.close();
      },
    );
  }
});
