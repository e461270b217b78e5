/**
 * The worker pool: the step engine that shards each step's blocks across
 * Web Workers sharing the store's memory.
 *
 * Workers are spawned once, get the arenas and the control block once, and
 * are ended by `close()`. A step is one bump of the control block's
 * generation; the main thread awaits `done` with `Atomics.waitAsync`.
 *
 * @module
 */

import type { Arena } from "../src/arena.ts";
import type { StepEngine, StepRequest, StepResult } from "../src/engine.ts";
import { packGroupConstants, PARTIAL_COUNT } from "../src/kernel.ts";
import { balanceShards } from "../src/shards.ts";
import type { StepPlan } from "../src/step_plan.ts";
import { BLOCK_FIELDS, ControlBlock, Flags, Header } from "./control_block.ts";
import type { InitMessage, ReadyMessage } from "./messages.ts";
import type { GpuJsMode } from "../gpu/gpujs_kernels.ts";
import type { ResolvedGpuMode } from "../gpu/gpujs_runtime.ts";

/** Options of {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /** Number of workers, >= 1. */
  readonly workers: number;
  /** The kernel each worker runs. */
  readonly backend: "js" | "wasm" | "gpujs";
  /** The gpu.js mode, being resolved, for `gpujs`. */
  readonly gpuMode?: Promise<ResolvedGpuMode> | undefined;
  /** The wasm kernel's fma mode. */
  readonly fma: "auto" | "exact";
  /** The store's arenas (shared memories). */
  readonly arenas: readonly Arena[];
  /** Parameter groups (fixed for the optimizer's life). */
  readonly groups: number;
  /** The most blocks a step can have (all parameters active). */
  readonly maxBlocks: number;
}

/**
 * A step that failed inside a shard worker (its kernel threw, or the worker
 * died). The message names the worker and its blocks. After it, the
 * optimizer refuses steps until a state dict is loaded.
 *
 * @example Recover from a failed step
 * ```ts
 * import { DecoupledLionW, ParameterStore, ShardError } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [4]);
 * await using opt = new DecoupledLionW([w], { workers: 0 });
 * const checkpoint = opt.stateDict();
 * try {
 *   w.grad = [1, 2, 3, 4];
 *   await opt.step();
 * } catch (error) {
 *   if (!(error instanceof ShardError)) throw error;
 *   opt.loadStateDict(checkpoint); // and restore the parameters
 * }
 * assert.equal(new ShardError("shard worker 1 (blocks 0–8): boom").name, "ShardError");
 * ```
 */
export class ShardError extends Error {
  /**
   * Makes the error.
   *
   * @param message What failed, naming the worker and its shard.
   */
  constructor(message: string) {
    super(message);
    this.name = "ShardError";
  }
}

const WORKER_URL = new URL("./shard_worker.ts", import.meta.url);
/** How long stopping workers may take before they are terminated regardless. */
const STOP_GRACE_MS = 2_000;

/** Waits until `header[index]` reaches `value`, without blocking the thread. */
async function waitFor(header: Int32Array, index: number, value: number): Promise<void> {
  for (let seen = Atomics.load(header, index); seen < value; seen = Atomics.load(header, index)) {
    if (typeof Atomics.waitAsync === "function") {
      const wait = Atomics.waitAsync(header, index, seen);
      if (wait.async) await wait.value;
    } else {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}

/** Shards steps across Web Workers. */
export class WorkerPool implements StepEngine {
  readonly #options: WorkerPoolOptions;
  #control: ControlBlock;
  #workers: Worker[] = [];
  /** Settles when each worker has ended: said `closed`, failed to start, or died. */
  #ended: Promise<void>[] = [];
  #ready: Promise<void> | undefined;
  /** Set when a worker died; rejects the step in flight and every later one. */
  #death: { error: ShardError | undefined; reject: ((error: ShardError) => void) | undefined } = {
    error: undefined,
    reject: undefined,
  };
  #lastPlan: StepPlan | undefined;
  #bounds: Int32Array = new Int32Array(0);
  #closed = false;
  /** Workers replaced by `reset()`, still stopping. */
  #stopping: Promise<void>[] = [];

  /**
   * Spawns the workers (they start in the background; the first step waits).
   *
   * @param options Sizes and kernel.
   */
  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#control = this.#newControl();
    this.#spawn();
  }

  get backend(): string {
    return this.#options.backend;
  }

  get workers(): number {
    return this.#options.workers;
  }

  /** Test hook: make worker `index` throw (`"throw"`) or die (`"die"`) in the next step. */
  injectFault(index: number, mode: "throw" | "die"): void {
    Atomics.store(this.#control.header, Header.faultWorker, index + 1);
    Atomics.store(this.#control.header, Header.faultMode, mode === "throw" ? 1 : 2);
  }

  async run(request: StepRequest): Promise<StepResult> {
    await this.#ready;
    if (this.#death.error) throw this.#death.error;
    const { header } = this.#control;
    this.#write(request);
    await this.#dispatch();

    const { slotCount } = request.plan;
    const applied = Atomics.load(header, Header.nonFinite) === 0;
    return {
      applied,
      gradSquares: request.scan ? this.#control.gradSquares.slice(0, slotCount) : null,
      partials: request.metrics && applied
        ? this.#control.partials.slice(0, slotCount * PARTIAL_COUNT)
        : null,
    };
  }

  async pullState(): Promise<void> {
    if (this.#options.backend !== "gpujs") return;
    await this.#ready;
    if (this.#death.error) throw this.#death.error;
    Atomics.store(this.#control.header, Header.flags, Flags.pull);
    await this.#dispatch();
  }

  /** Starts what the control block holds on every worker and waits until all are done. */
  async #dispatch(): Promise<void> {
    const { header } = this.#control;
    Atomics.store(header, Header.done, 0);
    Atomics.store(header, Header.scanArrived, 0);
    Atomics.store(header, Header.nonFinite, 0);
    Atomics.store(header, Header.failed, 0);
    Atomics.add(header, Header.generation, 1);
    Atomics.notify(header, Header.generation);

    const died = new Promise<never>((_, reject) => (this.#death.reject = reject));
    try {
      await Promise.race([waitFor(header, Header.done, this.workers), died]);
    } finally {
      this.#death.reject = undefined;
      Atomics.store(header, Header.faultWorker, 0);
    }
    if (Atomics.load(header, Header.failed) !== 0) throw this.#failure();
  }

  /**
   * Replaces the workers and the control block: a failed step may have left
   * workers waiting at the scan barrier, and a terminated worker may still
   * wake once; with a control block of their own, the old ones can never
   * count in a new step.
   */
  reset(): void {
    this.#stopping.push(this.#stop()); // close() waits for these too
    this.#death = { error: undefined, reject: undefined };
    this.#lastPlan = undefined;
    this.#control = this.#newControl();
    this.#spawn();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    // a step in flight, or one about to dispatch, ends instead of waiting for gone workers
    const closed = new ShardError("The worker pool was closed during the step");
    this.#death.error = closed;
    this.#death.reject?.(closed);
    // no worker, replaced ones included, may outlive close(): a worker
    // terminated while it holds a WebGPU device can crash Deno at exit
    return Promise.all([this.#stop(), ...this.#stopping]).then(() => {});
  }

  #newControl(): ControlBlock {
    const { workers, groups, maxBlocks } = this.#options;
    return new ControlBlock({ workers, groups, maxBlocks: Math.max(1, maxBlocks) });
  }

  /**
   * Tells the workers to stop and wakes them; terminates them once each has
   * ended (a gpujs worker first releases its device: Deno can crash at exit
   * when a worker is terminated holding one), or after {@linkcode STOP_GRACE_MS}.
   */
  async #stop(): Promise<void> {
    const { header } = this.#control;
    Atomics.store(header, Header.stop, 1);
    Atomics.add(header, Header.generation, 1);
    Atomics.notify(header, Header.generation);
    Atomics.store(header, Header.scanArrived, this.workers); // releases the scan barrier
    Atomics.notify(header, Header.scanArrived);
    const workers = this.#workers;
    const ended = Promise.all(this.#ended);
    this.#workers = [];
    this.#ended = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      ended,
      new Promise((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS))),
    ]);
    clearTimeout(timer);
    for (const worker of workers) worker.terminate();
  }

  #spawn(): void {
    const { gpuMode } = this.#options;
    // gpujs: the mode is settled (adapter probed) once, here, for all workers
    this.#ready = gpuMode === undefined ? this.#spawnWorkers(undefined) : gpuMode.then(
      ({ mode }) => this.#closed ? undefined : this.#spawnWorkers(mode),
    );
    this.#ready.catch(() => {}); // reported by the first step
  }

  #spawnWorkers(gpuMode: GpuJsMode | undefined): Promise<void> {
    const { workers, backend, fma, arenas } = this.#options;
    const memories = arenas.map((arena) => arena.memory);
    const starting = Array.from({ length: workers }, (_, index) => {
      const worker = new Worker(WORKER_URL, { type: "module" });
      this.#workers.push(worker);
      let end!: () => void;
      this.#ended.push(new Promise<void>((resolve) => (end = resolve)));
      return new Promise<void>((resolve, reject) => {
        worker.onmessage = (event: MessageEvent<ReadyMessage>) => {
          const reply = event.data;
          if (reply.type === "ready") resolve();
          else if (reply.type === "closed") end();
          else {
            end();
            reject(new ShardError(`Shard worker ${index} could not start: ${reply.err.message}`));
          }
        };
        // addEventListener, not onerror: Deno lets an uncaught worker error
        // end the process unless a listener prevents it
        worker.addEventListener("error", (event: ErrorEvent) => {
          event.preventDefault();
          const error = new ShardError(
            `Shard worker ${index} (${this.#describeShard(index)}) died: ${event.message}`,
          );
          this.#death.error ??= error;
          this.#death.reject?.(error);
          end();
          reject(error);
        });
        const init: InitMessage = {
          type: "init",
          index,
          control: this.#control.buffer,
          sizes: this.#control.sizes,
          arenas: memories,
          backend,
          gpuMode,
          fma,
        };
        worker.postMessage(init);
      });
    });
    return Promise.all(starting).then(() => {});
  }

  /** Writes the step into the control block. */
  #write({ plan, groups, scan, metrics, writes }: StepRequest): void {
    const control = this.#control;
    packGroupConstants(groups, control.groups);
    if (plan !== this.#lastPlan) {
      const lengths = new Int32Array(plan.slotCount);
      plan.byArena.forEach((segments, arena) => {
        for (const s of segments) {
          control.blocks.set(
            [arena, s.data, s.grad, s.expAvg, s.length, s.group],
            s.slot * BLOCK_FIELDS,
          );
          lengths[s.slot] = s.length;
        }
      });
      this.#bounds = balanceShards(lengths, this.workers);
      for (let w = 0; w < this.workers; w++) {
        control.ranges[2 * w] = this.#bounds[w]!;
        control.ranges[2 * w + 1] = this.#bounds[w + 1]!;
      }
      this.#lastPlan = plan;
      Atomics.add(control.header, Header.planVersion, 1);
    }
    Atomics.store(
      control.header,
      Header.flags,
      (scan ? Flags.scan : 0) | (metrics ? Flags.metrics : 0) |
        (writes.params ? Flags.paramsWritten : 0) | (writes.state ? Flags.stateWritten : 0),
    );
  }

  #describeShard(index: number): string {
    const start = this.#bounds[index];
    const end = this.#bounds[index + 1];
    return start === undefined || end === undefined ? "no shard yet" : `blocks ${start}–${end}`;
  }

  #failure(): ShardError {
    const messages: string[] = [];
    for (let w = 0; w < this.workers; w++) {
      const message = this.#control.readError(w);
      if (message) messages.push(`shard worker ${w} (${this.#describeShard(w)}): ${message}`);
    }
    this.#control.errors.fill(0);
    return new ShardError(`Step failed in ${messages.join("; ")}`);
  }
}
