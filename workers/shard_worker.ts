/**
 * The shard worker: takes its block range of every step from the control
 * block and runs the kernel on it, in place in the store's shared memory.
 *
 * Lifecycle: spawn → `init` message → `ready` reply → steps (blocking in
 * `Atomics.wait`, which workers may do) → `stop` flag or terminate().
 *
 * The `gpujs` backend updates on the worker's device shard instead of in
 * place; its results are awaited (WebGPU reads back asynchronously), but the
 * worker only ever blocks when nothing of its own is pending.
 *
 * @module
 */

import { anyNonFinite, type HostWrites } from "../src/engine.ts";
import { jsKernel } from "../src/js_kernel.ts";
import {
  type GroupConstants,
  type KernelSegment,
  type LionKernel,
  unpackGroupConstants,
} from "../src/kernel.ts";
import { createWasmKernel, wasmKernelAvailable } from "../src/wasm_kernel.ts";
import { DeviceShard } from "../gpu/device_shard.ts";
import { openGpuJs } from "../gpu/gpujs_runtime.ts";
import { BLOCK_FIELDS, ControlBlock, Flags, Header } from "./control_block.ts";
import type { InitMessage, ReadyMessage } from "./messages.ts";

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

/** How a worker updates its shard: in place on the CPU, or on a device. */
interface ShardUpdater {
  /** Updates the shard's blocks, writing their partial sums when `partials` is given. */
  update(
    runs: Runs,
    planVersion: number,
    groups: readonly GroupConstants[],
    writes: HostWrites,
    partials: Float64Array | null,
  ): void | Promise<void>;
  /** Brings device-resident state back into the arenas. */
  pull(): void | Promise<void>;
  /** Releases what the updater holds (a device). */
  close(): void | Promise<void>;
}

/** The CPU kernels update the arenas in place: nothing to pull. */
function inPlaceUpdater(init: InitMessage, kernel: LionKernel): ShardUpdater {
  return {
    update(runs, _version, groups, _writes, partials) {
      for (const { arena, segments } of runs) {
        kernel.update(init.arenas[arena]!, segments, groups, partials);
      }
    },
    pull() {},
    close() {},
  };
}

/** gpujs: the worker's segments live on its device between steps. */
function deviceUpdater(init: InitMessage, shard: DeviceShard): ShardUpdater {
  let layoutVersion = -1;
  return {
    async update(runs, version, groups, writes, partials) {
      if (version !== layoutVersion) {
        const segments = runs.flatMap(({ arena, segments }) =>
          segments.map((segment) => ({ ...segment, arena }))
        );
        await shard.setSegments(init.arenas, segments, writes);
        layoutVersion = version;
      }
      await shard.step(init.arenas, groups, writes, partials);
    },
    pull: () => shard.pull(init.arenas),
    close: () => shard.close(),
  };
}

function writesOf(flags: number): HostWrites {
  return {
    params: (flags & Flags.paramsWritten) !== 0,
    state: (flags & Flags.stateWritten) !== 0,
  };
}

/**
 * Takes steps until stopped. `generation` is the one read before `ready` was
 * sent: read after, the main thread's first step could slip in between and
 * be missed.
 */
async function takeSteps(
  init: InitMessage,
  control: ControlBlock,
  scanKernel: LionKernel,
  updater: ShardUpdater,
  generation: number,
): Promise<void> {
  const { header } = control;
  const workers = init.sizes.workers;
  let runs: Runs = []; // this worker's segments, rebuilt only when the plan changes
  let planVersion = -1;
  const fail = (error: unknown) => {
    control.writeError(init.index, describe(error));
    Atomics.store(header, Header.failed, 1);
  };
  for (;;) {
    // stopped before this worker read `generation` (while it was starting): no bump will come
    if (Atomics.load(header, Header.stop) !== 0) return;
    waitWhile(header, Header.generation, generation);
    generation = Atomics.load(header, Header.generation);
    if (Atomics.load(header, Header.stop) !== 0) return;

    const flags = Atomics.load(header, Header.flags);
    if (flags & Flags.pull) {
      try {
        await updater.pull();
      } catch (error) {
        fail(error);
      }
      if (Atomics.add(header, Header.done, 1) + 1 === workers) Atomics.notify(header, Header.done);
      continue;
    }
    const version = Atomics.load(header, Header.planVersion);
    if (version !== planVersion) {
      const at = 2 * init.index;
      runs = segmentsOf(control, control.ranges[at]!, control.ranges[at + 1]!);
      planVersion = version;
    }
    const faulty = Atomics.load(header, Header.faultWorker) === init.index + 1;

    if (flags & Flags.scan) {
      try {
        scanShard(init, control, scanKernel, runs);
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
        await updater.update(
          runs,
          planVersion,
          unpackGroupConstants(control.groups, control.sizes.groups),
          writesOf(flags),
          (flags & Flags.metrics) !== 0 ? control.partials : null,
        );
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

/** The kernel that scans (and, for the CPU backends, updates) and the updater. */
async function kernelsFor(init: InitMessage): Promise<[LionKernel, ShardUpdater]> {
  const hostKernel = init.backend === "js" || !wasmKernelAvailable()
    ? jsKernel
    : createWasmKernel(init.fma);
  if (init.backend !== "gpujs") return [hostKernel, inPlaceUpdater(init, hostKernel)];
  const mode = init.gpuMode ?? "cpu";
  return [hostKernel, deviceUpdater(init, new DeviceShard(await openGpuJs(mode), mode))];
}

scope.onmessage = async (event: MessageEvent<InitMessage>) => {
  const init = event.data;
  scope.onmessage = null;
  let scanKernel: LionKernel;
  let updater: ShardUpdater;
  try {
    [scanKernel, updater] = await kernelsFor(init);
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
  await takeSteps(init, control, scanKernel, updater, generation);
  try {
    await updater.close();
  } finally {
    const closed: ReadyMessage = { type: "closed", index: init.index };
    scope.postMessage(closed);
    scope.close();
  }
};
