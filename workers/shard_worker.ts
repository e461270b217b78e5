/**
 * The shard worker: takes its block range of every step from the control
 * block and runs the kernel on it, in place in the store's shared memory.
 *
 * Lifecycle: spawn → `init` message → `ready` reply → steps (blocking in
 * `Atomics.wait`, which workers may do) → `stop` flag or terminate().
 *
 * @module
 */

import { anyNonFinite } from "../src/engine.ts";
import { jsKernel } from "../src/js_kernel.ts";
import type { GroupConstants, KernelSegment, LionKernel } from "../src/kernel.ts";
import { createWasmKernel } from "../src/wasm_kernel.ts";
import { BLOCK_FIELDS, ControlBlock, Flags, GROUP_FIELDS, Header } from "./control_block.ts";
import type { InitMessage, ReadyMessage } from "./messages.ts";

function groupsOf(control: ControlBlock): GroupConstants[] {
  const g = control.groups;
  return Array.from({ length: control.sizes.groups }, (_, i) => {
    const at = i * GROUP_FIELDS;
    return {
      lr: g[at]!,
      directionWeight: g[at + 1]!,
      momentWeight: g[at + 2]!,
      decayMultiplier: g[at + 3]!,
      stepDecay: g[at + 4]!,
    };
  });
}

/** This worker's blocks, as runs of consecutive blocks in one arena. */
function segmentsOf(control: ControlBlock, start: number, end: number) {
  const runs: { arena: number; segments: KernelSegment[] }[] = [];
  const b = control.blocks;
  for (let slot = start; slot < end; slot++) {
    const at = slot * BLOCK_FIELDS;
    const arena = b[at]!;
    if (runs.at(-1)?.arena !== arena) runs.push({ arena, segments: [] });
    runs.at(-1)!.segments.push({
      data: b[at + 1]! >>> 0,
      grad: b[at + 2]! >>> 0,
      expAvg: b[at + 3]! >>> 0,
      length: b[at + 4]!,
      group: b[at + 5]!,
      slot,
    });
  }
  return runs;
}

/**
 * Spins on the value for a few microseconds before sleeping in
 * `Atomics.wait`. A worker woken from sleep tends to be scheduled on its
 * waker's core, so two workers woken back to back can share one core for a
 * while; a short spin catches the next step, or the other worker at the
 * barrier, while both still hold their cores.
 */
function waitWhile(header: Int32Array, index: number, value: number): void {
  for (let i = 0; i < SPINS; i++) {
    if (Atomics.load(header, index) !== value) return;
  }
  Atomics.wait(header, index, value);
}

/** Loads before `waitWhile` sleeps (a few tens of microseconds). */
const SPINS = 20_000;

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

type Runs = ReturnType<typeof segmentsOf>;

/** Σg² of every block of the shard; flags the step when one is not finite. */
function scanShard(init: InitMessage, control: ControlBlock, kernel: LionKernel, runs: Runs): void {
  for (const { arena, segments } of runs) {
    kernel.sumSquaredGradients(init.arenas[arena]!, segments, control.gradSquares);
  }
  const at = 2 * init.index;
  if (anyNonFinite(control.gradSquares.subarray(control.ranges[at]!, control.ranges[at + 1]!))) {
    Atomics.store(control.header, Header.nonFinite, 1);
  }
}

/** The scan barrier: nobody writes before every gradient is known to be finite. */
function meetAfterScan(header: Int32Array, workers: number): void {
  if (Atomics.add(header, Header.scanArrived, 1) + 1 === workers) {
    Atomics.notify(header, Header.scanArrived);
    return;
  }
  for (let arrived; (arrived = Atomics.load(header, Header.scanArrived)) < workers;) {
    waitWhile(header, Header.scanArrived, arrived);
  }
}

/** The update of every block of the shard, with its partial sums when asked. */
function updateShard(
  init: InitMessage,
  control: ControlBlock,
  kernel: LionKernel,
  runs: Runs,
  metrics: boolean,
): void {
  const groups = groupsOf(control);
  const partials = metrics ? control.partials : null;
  for (const { arena, segments } of runs) {
    kernel.update(init.arenas[arena]!, segments, groups, partials);
  }
}

/**
 * Takes steps until stopped. `generation` is the one read before `ready` was
 * sent: read after, the main thread's first step could slip in between and
 * be missed.
 */
function takeSteps(
  init: InitMessage,
  control: ControlBlock,
  kernel: LionKernel,
  generation: number,
): void {
  const { header } = control;
  const workers = init.sizes.workers;
  let runs: Runs = []; // this worker's segments, rebuilt only when the plan changes
  let planVersion = -1;
  const fail = (error: unknown) => {
    control.writeError(init.index, describe(error));
    Atomics.store(header, Header.failed, 1);
  };
  for (;;) {
    waitWhile(header, Header.generation, generation);
    generation = Atomics.load(header, Header.generation);
    if (Atomics.load(header, Header.stop) !== 0) return;

    const flags = Atomics.load(header, Header.flags);
    const version = Atomics.load(header, Header.planVersion);
    if (version !== planVersion) {
      const at = 2 * init.index;
      runs = segmentsOf(control, control.ranges[at]!, control.ranges[at + 1]!);
      planVersion = version;
    }
    const faulty = Atomics.load(header, Header.faultWorker) === init.index + 1;

    if (flags & Flags.scan) {
      try {
        scanShard(init, control, kernel, runs);
      } catch (error) {
        fail(error);
      }
      meetAfterScan(header, workers); // even after a failure: the others wait here
    }

    if (Atomics.load(header, Header.stop) !== 0) return; // released from the barrier to stop
    if (Atomics.load(header, Header.nonFinite) === 0 && Atomics.load(header, Header.failed) === 0) {
      if (faulty && Atomics.load(header, Header.faultMode) === 2) {
        throw new Error(`injected death of shard worker ${init.index}`); // uncaught: the worker dies
      }
      try {
        if (faulty) throw new Error(`injected fault in shard worker ${init.index}`);
        updateShard(init, control, kernel, runs, (flags & Flags.metrics) !== 0);
      } catch (error) {
        fail(error);
      }
    }

    if (Atomics.add(header, Header.done, 1) + 1 === workers) Atomics.notify(header, Header.done);
  }
}

/** The worker's global scope, typed by what this file uses. */
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<InitMessage>) => void) | null;
  postMessage(message: ReadyMessage): void;
  close(): void;
};

scope.onmessage = (event: MessageEvent<InitMessage>) => {
  const init = event.data;
  let kernel: LionKernel;
  try {
    kernel = init.backend === "wasm" ? createWasmKernel(init.fma) : jsKernel;
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    const reply: ReadyMessage = {
      type: "error",
      index: init.index,
      err: { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) },
    };
    scope.postMessage(reply);
    return;
  }
  const control = new ControlBlock(init.sizes, init.control);
  const generation = Atomics.load(control.header, Header.generation);
  const ready: ReadyMessage = { type: "ready", index: init.index };
  scope.postMessage(ready);
  scope.onmessage = null;
  takeSteps(init, control, kernel, generation);
  scope.close();
};
