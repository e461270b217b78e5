import assert from "node:assert/strict";
import { ParameterStore } from "../mod.ts";
import { OptimizerBook } from "../src/optimizer/optimizer_book.ts";
import { StateCopies } from "../src/engine/state_copies.ts";
import { DEFAULT_HYPERPARAMETERS } from "../src/optimizer/hyperparameters.ts";
import { StepPlanner } from "../src/step/step_planner.ts";

function openBook(): { book: OptimizerBook; planner: StepPlanner; store: ParameterStore } {
  const store = new ParameterStore();
  const w = store.add("w", [3]);
  const b = store.add("b", [2]);
  const book = new OptimizerBook({
    params: [{ params: [w] }, { params: [b], lr: 0.5 }],
    defaults: DEFAULT_HYPERPARAMETERS,
    logger: null,
    momentumDtype: (dtype) => dtype,
  });
  return { book, planner: new StepPlanner(book.entries, book.layout), store };
}

Deno.test("OptimizerBook: state starts at a parameter's first applied step, and the count with it", () => {
  const { book, planner, store } = openBook();
  const [w, b] = [store.get("w")!, store.get("b")!];
  w.grad = [1, 2, 3];
  const plan = planner.plan();
  assert.deepEqual(book.fresh(plan).map(({ param }) => param.name), ["w"]);
  assert.equal(book.state(w), undefined);
  book.applied(plan);
  assert.deepEqual(book.fresh(plan), []);
  assert.deepEqual([...book.state(w)!.expAvg], [0, 0, 0]);
  assert.equal(book.state(b), undefined);
  assert.equal(book.iterations, 1);
  assert.equal(book.stateElements, 3);
  b.grad = [1, 1];
  assert.deepEqual(book.fresh(planner.plan()).map(({ param }) => param.name), ["b"]);
});

Deno.test("OptimizerBook: a state dict round-trips, and a bad one changes nothing", () => {
  const { book, planner, store } = openBook();
  const w = store.get("w")!;
  w.grad = [1, 2, 3];
  book.applied(planner.plan());
  const dict = book.stateDict();
  assert.deepEqual(dict.paramGroups.map((group) => group.lr), [1e-4, 0.5]);
  book.load({ ...dict, state: { w: { expAvg: Float32Array.of(1, -1, 2) } }, iterations: 7 });
  assert.deepEqual([...book.state(w)!.expAvg], [1, -1, 2]);
  assert.equal(book.iterations, 7);
  const bad = { ...dict, state: { w: { expAvg: Float32Array.of(1) } } };
  assert.throws(() => book.load(bad), RangeError);
  assert.deepEqual([...book.state(w)!.expAvg], [1, -1, 2]);
  assert.equal(book.iterations, 7);
  assert.equal(book.groups[1]!.lr, 0.5);
});

Deno.test("StateCopies: which copy of exp_avg is newest, as steps, loads and pulls go", () => {
  const heard: string[] = [];
  const device = new StateCopies("the gpujs backend", "device", () => heard.push("written"));
  assert.deepEqual([device.hostWritten, device.deviceNewer], [false, false]);
  device.stepped();
  assert.deepEqual([device.hostWritten, device.deviceNewer], [false, true]);
  device.wroteHost();
  assert.deepEqual([device.hostWritten, device.deviceNewer], [true, false]);
  assert.deepEqual(heard, ["written"]);
  device.stepped();
  device.synced();
  assert.deepEqual([device.hostWritten, device.deviceNewer], [false, false]);
  const host = new StateCopies("the wasm backend", "host");
  host.wroteHost();
  host.stepped(); // a host engine's copy is the store's own
  assert.deepEqual([host.hostWritten, host.deviceNewer], [false, false]);
});
