import assert from "node:assert/strict";
import { DecoupledLionW, ParameterStore } from "../mod.ts";
import { KERNEL_TABLES } from "../src/store/uint8_moments.ts";

Deno.test("ParameterStore.add() places three 64-byte aligned slots in shared memory", () => {
  const store = new ParameterStore();
  const a = store.add("a", [3], [1, 2, 3]);
  const b = store.add("b", [2, 5]);
  assert.ok(a.data.buffer instanceof SharedArrayBuffer);
  assert.equal(a.data.buffer, b.data.buffer); // one arena
  for (const view of [a.data, a.ensureGrad(), b.data, b.ensureGrad()]) {
    assert.equal(view.byteOffset % 64, 0);
  }
  assert.deepEqual([...a.data], [1, 2, 3]);
  assert.deepEqual([...b.data], new Array(10).fill(0));
  assert.equal(b.size, 10);
  assert.deepEqual(b.shape, [2, 5]);
  assert.equal(store.size, 13);
  // the kernels' tables, then the first chunk: three regions of 2^14 elements, each followed
  // by a skew of 64 KiB + 1344
  assert.equal(store.byteLength, KERNEL_TABLES.bytes + 3 * (4 * 2 ** 14 + 65536 + 1344));
  assert.deepEqual(store.parameters.map((p) => p.name), ["a", "b"]);
  assert.deepEqual([...store].map((p) => p.name), ["a", "b"]);
  assert.equal(store.get("b"), b);
  assert.equal(store.get("c"), undefined);
  assert.ok(store.has(a));
  assert.ok(!new ParameterStore().has(a));
});

Deno.test("ParameterStore.add() accepts a scalar shape", () => {
  const store = new ParameterStore();
  const s = store.add("s", [], [4]);
  assert.equal(s.size, 1);
  assert.deepEqual([...s.data], [4]);
});

Deno.test("ParameterStore.add() rejects bad names, shapes and initial values", () => {
  const store = new ParameterStore();
  store.add("taken", [1]);
  for (const dim of [0, -1, 1.5, NaN, Infinity]) {
    assert.throws(() => store.add("x", [2, dim]), {
      name: "RangeError",
      message:
        `Cannot add parameter 'x' as 'shape[1]' must be a positive integer: current value is ${dim}`,
    });
  }
  assert.throws(() => store.add("x", [2, "3" as unknown as number]), RangeError);
  assert.throws(() => store.add("x", 3 as unknown as number[]), {
    name: "TypeError",
    message: "Cannot add parameter 'x' as 'shape' must be an array: current value is 3",
  });
  for (const name of ["", 7, null]) {
    assert.throws(() => store.add(name as string, [1]), TypeError);
  }
  assert.throws(() => store.add("taken", [1]), {
    name: "RangeError",
    message: "Cannot add parameter 'taken' as the name is already taken",
  });
  assert.throws(() => store.add("x", [2, 2], [1, 2, 3]), {
    name: "RangeError",
    message: "Cannot add parameter 'x' as 'initial' must have 4 values: current length is 3",
  });
  assert.throws(() => store.add("x", [1], 5 as unknown as number[]), TypeError);
  assert.equal(store.size, 1, "nothing was added by the failed calls");
});

Deno.test("ParameterStore rejects a bad arena limit and oversized parameters", () => {
  for (const arenaBytes of [0, -65536, 1000, 65536.5, 2 ** 33, NaN]) {
    assert.throws(() => new ParameterStore({ arenaBytes }), RangeError);
  }
  const store = new ParameterStore({ arenaBytes: 65536 });
  assert.throws(() => store.add("big", [6000]), {
    name: "RangeError",
    message:
      `Cannot add parameter 'big' as its 6000 elements need 72000 bytes of slots, more than one arena holds (65536 bytes, of which the kernels' tables take ${KERNEL_TABLES.bytes})`,
  });
  assert.throws(() => new ParameterStore({ shared: "yes" as unknown as boolean }), TypeError);
});

Deno.test("ParameterStore spreads parameters over arenas, never splitting one", () => {
  const store = new ParameterStore({ arenaBytes: 65536 });
  // 2,500 elements: 30,000 bytes of slots beside the kernels' tables (33,600 bytes)
  assert.equal(KERNEL_TABLES.bytes, 33600);
  const params = [0, 1, 2].map((i) => store.add(`p${i}`, [2500]));
  assert.equal(store.arenaCount, 3);
  assert.notEqual(params[0]!.data.buffer, params[1]!.data.buffer);
  for (const p of params) {
    for (const view of [p.data, p.ensureGrad()]) {
      assert.equal(view.buffer, p.data.buffer);
      assert.ok(view.byteOffset + view.byteLength <= 65536);
    }
  }
  store.add("small", [10]); // fits beside p2
  assert.equal(store.arenaCount, 3);
});

Deno.test("ParameterStore({ shared: false }) uses plain memory of fixed capacity", () => {
  const store = new ParameterStore({ shared: false });
  const a = store.add("a", [4], [1, 2, 3, 4]);
  const b = store.add("b", [300_000]); // more than the first plain arena's 1 MiB
  assert.ok(!(a.data.buffer instanceof SharedArrayBuffer));
  assert.equal(store.shared, false);
  assert.equal(store.arenaCount, 2);
  assert.deepEqual([...a.data], [1, 2, 3, 4], "views handed out earlier stay valid");
  assert.equal(b.data.length, 300_000);
});

Deno.test("ParameterStore takes no parameters while an optimizer uses it", async () => {
  const store = new ParameterStore();
  const w = store.add("w", [2]);
  const opt = new DecoupledLionW([w], { logger: null });
  assert.throws(() => store.add("late", [1]), {
    name: "RangeError",
    message:
      "Cannot add parameter 'late' as an optimizer uses this store: add every parameter before building the optimizer, or close it first",
  });
  await opt.close();
  assert.equal(store.add("late", [1]).size, 1);
});

Deno.test("Parameter.grad follows torch's None semantics", () => {
  const store = new ParameterStore();
  const w = store.add("w", [3]);
  assert.equal(w.grad, null);
  w.grad = new Float64Array([0.5, 1.5, -2]);
  assert.deepEqual([...w.grad!], [0.5, 1.5, -2]);
  assert.equal(w.grad!.buffer, w.data.buffer, "the gradient lives in shared memory");
  w.grad = null;
  assert.equal(w.grad, null);
  const slot = w.ensureGrad();
  assert.deepEqual([...slot], [0, 0, 0], "ensureGrad() zeroes an absent gradient");
  slot[1] = 7;
  assert.equal(w.ensureGrad()[1], 7, "ensureGrad() keeps a present gradient");
  assert.throws(() => (w.grad = [1, 2]), {
    name: "RangeError",
    message:
      "Cannot set the gradient of parameter 'w' as its length must be 3: current length is 2",
  });
  assert.throws(() => (w.grad = 4 as unknown as number[]), TypeError);
  assert.equal(w.grad![1], 7, "a rejected gradient changes nothing");
});

Deno.test("Parameter.requiresGrad takes booleans only", () => {
  const w = new ParameterStore().add("w", [1]);
  assert.equal(w.requiresGrad, true);
  w.requiresGrad = false;
  assert.equal(w.requiresGrad, false);
  assert.throws(() => (w.requiresGrad = 0 as unknown as boolean), {
    name: "TypeError",
    message:
      "Cannot set 'requiresGrad' of parameter 'w' as it must be a boolean: current value is 0",
  });
});

Deno.test("ParameterStore.add() refuses initial values that are not finite in float32, adding nothing", () => {
  const store = new ParameterStore();
  for (
    const [bad, shown] of [[NaN, "NaN"], [Infinity, "Infinity"], [-Infinity, "-Infinity"], [
      1e39,
      "1e+39",
    ]] as const
  ) {
    assert.throws(() => store.add("w", [3], [1, bad, 2]), {
      name: "RangeError",
      message:
        `Cannot add parameter 'w' as 'initial[1]' must be finite in float32: current value is ${shown}`,
    });
  }
  assert.throws(
    () => store.add("w", [2], new Float32Array([0, NaN])),
    /'initial\[1\]' must be finite/,
  );
  assert.equal(store.parameters.length, 0);
  assert.equal(store.get("w"), undefined);
  assert.deepEqual([...store.add("w", [2], [3.4e38, -1]).data], [Math.fround(3.4e38), -1]);
});
