/**
 * The shard worker's life: takes its block range of every step from the
 * control block and steps it with its shard runner (in place on the CPU, or
 * on a gpu.js device).
 *
 * Lifecycle: spawn → `init` message → `ready` reply (and `started` counted
 * in the control block) → steps (blocking in
 * `Atomics.wait`, which workers may do) → `stop` flag or terminate().
 *
 * A device runner's results are awaited (WebGPU reads back asynchronously),
 * but the worker only ever blocks when nothing of its own is pending.
 *
 * @module
 */

import { nodeWorkerThreads } from "../src/_internal/node.ts";
import { serializeError } from "../src/engine/shard_error.ts";
import type { GroupConstants } from "../src/kernels/kernel.ts";
import { type ShardRunner, stepIsCautious, stepShard } from "../src/engine/shard_runner.ts";
import { cautionFactors } from "../src/step/step_plan.ts";
import {
  ABORT,
  decideStep,
  gateNeedsScan,
  gateNeedsSquares,
  type StepDecision,
  type StepGate,
} from "../src/step/step_decision.ts";
import { ControlBlock, Header } from "./control_block.ts";
import type { InitMessage, ReadyMessage } from "./messages.ts";

/** Opens a worker's runner from its init message. */
export type OpenRunner = (init: InitMessage) => Promise<ShardRunner>;

/** Loads before `waitWhile` sleeps (a few tens of microseconds). */
const SPINS = 20_000;

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

/**
 * A barrier of the step: every worker adds itself to `header[counter]`; the
 * last to arrive runs `last` (told whether a worker failed before it), then
 * releases the others by taking the counter to `workers + 1`, which the
 * pool's stop also does.
 *
 * @returns Whether the pool is stopping (released to stop, not by the last worker).
 */
function meetAt(control: ControlBlock, counter: number, last: (failed: boolean) => void): boolean {
  const { header } = control;
  const workers = control.sizes.workers;
  if (Atomics.add(header, counter, 1) + 1 === workers) {
    last(Atomics.load(header, Header.failed) !== 0);
    Atomics.add(header, counter, 1);
    Atomics.notify(header, counter);
  } else {
    for (let arrived; (arrived = Atomics.load(header, counter)) <= workers;) {
      waitWhile(header, counter, arrived);
    }
  }
  return Atomics.load(header, Header.stop) !== 0;
}

/**
 * The scan barrier: nobody writes before every gradient is scanned. The
 * last worker to arrive takes the step's decision from every block's sum
 * (or aborts, when a worker failed) and writes it.
 *
 * Waiters read that decision, not the live failure flag: a worker failing
 * just after this barrier must not turn the others back while it waits for
 * them at the count barrier.
 */
function meetAndDecide(control: ControlBlock, gate: StepGate): StepDecision {
  const stopping = meetAt(control, Header.scanArrived, (failed) => {
    const sums = control.gradSquares.subarray(0, control.blockCount());
    control.writeDecision(failed ? ABORT : decideStep(gate, sums));
  });
  return stopping ? ABORT : control.readDecision();
}

/**
 * The count barrier of a cautious step: the last worker to arrive computes
 * every block's caution factor from all counts (none when a worker failed).
 *
 * @returns The factors, or `null` when the step must stop (a worker failed, or stop).
 */
function meetForCaution(
  control: ControlBlock,
  groups: readonly GroupConstants[],
): Float32Array | null {
  const stopping = meetAt(control, Header.countArrived, (failed) => {
    if (!failed) cautionFactors(control.readAllBlocks(), control.counts, groups, control.caution);
    Atomics.store(control.header, Header.cautionReady, failed ? 0 : 1);
  });
  const ready = Atomics.load(control.header, Header.cautionReady) === 1;
  return stopping || !ready ? null : control.caution;
}

/**
 * Takes steps until stopped. `generation` is the one read before `ready` was
 * sent: read after, the main thread's first step could slip in between and
 * be missed.
 */
async function takeSteps(
  index: number,
  control: ControlBlock,
  runner: ShardRunner,
  generation: number,
): Promise<void> {
  const { header } = control;
  const workers = control.sizes.workers;
  let blocksVersion = -1; // the plan version of the blocks the runner holds
  const fail = (error: unknown) => {
    control.writeError(index, serializeError(error));
    Atomics.store(header, Header.failed, 1);
  };
  const done = () => {
    if (Atomics.add(header, Header.done, 1) + 1 === workers) Atomics.notify(header, Header.done);
  };
  for (;;) {
    // stopped before this worker read `generation` (while it was starting): no bump will come
    if (Atomics.load(header, Header.stop) !== 0) return;
    waitWhile(header, Header.generation, generation);
    generation = Atomics.load(header, Header.generation);
    if (Atomics.load(header, Header.stop) !== 0) return;

    if (control.readPull()) {
      try {
        await runner.pull();
      } catch (error) {
        fail(error);
      }
      done();
      continue;
    }
    const step = control.readStep();
    const scan = gateNeedsScan(step.gate);
    const cautious = stepIsCautious(step.groups);
    // how far this worker got, so that a failure still meets the others at every barrier they will wait at
    let decided: StepDecision | undefined;
    let counted = false;
    const meet = {
      decide: () => {
        decided = scan ? meetAndDecide(control, step.gate) : decideStep(step.gate, null);
        return decided;
      },
      caution: () => {
        counted = true;
        return meetForCaution(control, step.groups);
      },
    };
    try {
      const version = Atomics.load(header, Header.planVersion);
      if (version !== blocksVersion) {
        await runner.assign(control.readBlocks(index), step.writes);
        blocksVersion = version;
      }
      await stepShard(runner, {
        scan,
        squares: gateNeedsSquares(step.gate),
        gradSquares: control.gradSquares,
        groups: step.groups,
        writes: step.writes,
        partials: step.metrics ? control.partials : null,
        counts: cautious ? control.counts : null,
      }, meet);
    } catch (error) {
      fail(error);
      // the others wait at the barriers this worker has not passed: it meets
      // them there, and the decider sees its failure
      decided ??= scan ? meetAndDecide(control, step.gate) : decideStep(step.gate, null);
      if (cautious && decided.action === "update" && !counted) meetForCaution(control, step.groups);
    }
    if (Atomics.load(header, Header.stop) !== 0) return; // released from the barrier to stop
    done();
  }
}

/** Counts this worker as started, for a main thread blocked in `Atomics.wait` (no message reaches it). */
function countStarted(header: Int32Array): void {
  Atomics.add(header, Header.started, 1);
  Atomics.notify(header, Header.started);
}

/** How this worker talks to the pool: its global scope, or Node's `parentPort`. */
interface PoolPort {
  /** Calls `listener` with the first message's data only. */
  onceMessage(listener: (data: InitMessage) => void): void;
  postMessage(message: ReadyMessage): void;
  close(): void;
}

function poolPort(): PoolPort {
  const parentPort = nodeWorkerThreads()?.parentPort;
  if (parentPort) {
    return {
      onceMessage(listener) {
        const once = (data: unknown) => {
          parentPort.off("message", once);
          listener(data as InitMessage);
        };
        parentPort.on("message", once);
      },
      postMessage: (message) => parentPort.postMessage(message),
      close: () => parentPort.close(),
    };
  }
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<InitMessage>) => void) | null;
    postMessage(message: ReadyMessage): void;
    close(): void;
  };
  return {
    onceMessage(listener) {
      scope.onmessage = (event) => {
        scope.onmessage = null;
        listener(event.data);
      };
    },
    postMessage: (message) => scope.postMessage(message),
    close: () => scope.close(),
  };
}

/**
 * Serves this worker: waits for `init`, opens the runner, replies `ready`
 * (or `error`), takes steps until stopped, closes the runner, says `closed`.
 *
 * @param openRunner Opens the runner the init message describes.
 */
export function serveShardWorker(openRunner: OpenRunner): void {
  const scope = poolPort();
  scope.onceMessage(async (init) => {
    const control = new ControlBlock(init.sizes, init.control);
    let runner: ShardRunner;
    try {
      runner = await openRunner(init);
    } catch (error) {
      const err = serializeError(error);
      control.writeError(init.index, err);
      Atomics.store(control.header, Header.startFailed, 1);
      countStarted(control.header);
      scope.postMessage({ type: "error", index: init.index, err });
      return;
    }
    const generation = Atomics.load(control.header, Header.generation);
    countStarted(control.header);
    scope.postMessage({ type: "ready", index: init.index });
    await takeSteps(init.index, control, runner, generation);
    try {
      await runner.close();
    } finally {
      scope.postMessage({ type: "closed", index: init.index });
      scope.close();
    }
  });
}
