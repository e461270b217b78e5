/**
 * The worker pool: the step engine that shards each step's blocks across
 * Web Workers sharing the store's memory.
 *
 * Workers are spawned once, get the arenas and the control block once, and
 * are ended by `close()`. A step is one bump of the control block's
 * generation; the main thread awaits `done` with `Atomics.waitAsync`, or
 * blocks on it in `Atomics.wait` for a synchronous step.
 *
 * @module
 */

import { spawnWorkerThread, type WorkerThread } from "./worker_thread.ts";
import type { StepEngine, StepRequest, StepResult } from "../src/engine/engine.ts";
import type { RunnerSpec } from "../src/engine/runner_spec.ts";
import type { WorkerPoolOptions } from "../src/engine/edges.ts";
import { PARTIAL_COUNT } from "../src/kernels/kernel.ts";
import type { BackendName, StateResidence } from "../src/engine/backends.ts";
import {
  deserializeError,
  type SerializedError,
  ShardError,
  shardFailure,
} from "../src/engine/shard_error.ts";
import { balanceShards } from "../src/step/shards.ts";
import { decideStep, gateNeedsScan } from "../src/step/step_decision.ts";
import type { StepPlan } from "../src/step/step_plan.ts";
import { ControlBlock, Header } from "./control_block.ts";
import type { InitMessage, ReadyMessage } from "./messages.ts";

// the npm package's modules are .js files (built from these .ts ones)
/** The library's own shard worker module. */
export const WORKER_URL: URL = new URL(
  import.meta.url.endsWith(".ts") ? "./shard_worker.ts" : "./shard_worker.js",
  import.meta.url,
);
/** How long stopping workers may take before they are terminated regardless. */
const STOP_GRACE_MS = 2_000;
/**
 * How long a synchronous step waits for the workers to finish before it
 * gives up: a thread blocked in `Atomics.wait` cannot hear that a worker
 * died, so it needs a limit.
 */
export const SYNC_LIMIT_MS = 120_000;
/** How long a synchronous step waits for the workers to start (they start in well under a second). */
export const SYNC_START_LIMIT_MS = 30_000;

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

/**
 * Blocks until `header[index]` reaches `value` or `limitMs` pass.
 *
 * @returns Whether it was reached.
 */
function waitForSync(header: Int32Array, index: number, value: number, limitMs: number): boolean {
  const deadline = performance.now() + limitMs;
  for (let seen = Atomics.load(header, index); seen < value; seen = Atomics.load(header, index)) {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    Atomics.wait(header, index, seen, left);
  }
  return true;
}

/** Shards steps across Web Workers. */
export class WorkerPool implements StepEngine {
  readonly #options: WorkerPoolOptions;
  #control: ControlBlock;
  #workers: WorkerThread[] = [];
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
  #spawnError: ShardError | undefined;
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

  get backend(): BackendName {
    return this.#options.backend;
  }

  /** Why the workers could not be spawned at all (`new Worker` threw), if so. */
  get spawnError(): ShardError | undefined {
    return this.#spawnError;
  }

  get stateLives(): StateResidence {
    return this.#options.stateLives;
  }

  get workers(): number {
    return this.#options.workers;
  }

  async run(request: StepRequest): Promise<StepResult> {
    await this.#ready;
    if (this.#death.error) throw this.#death.error;
    this.#begin(request);
    await this.#dispatch();
    return this.#result(request);
  }

  runSync(request: StepRequest): StepResult {
    if (this.stateLives !== "host") {
      throw new RangeError(
        `Cannot step synchronously on the ${this.backend} backend, whose workers read back from a device asynchronously: use step()`,
      );
    }
    this.#awaitStartSync();
    this.#begin(request);
    const { header } = this.#control;
    if (!waitForSync(header, Header.done, this.workers, SYNC_LIMIT_MS)) {
      const error = new ShardError(
        `Step did not finish within ${
          SYNC_LIMIT_MS / 1000
        } s on ${this.workers} workers: a worker may have died, which a thread blocked in Atomics.wait cannot hear`,
      );
      this.#death.error ??= error;
      throw error;
    }
    if (Atomics.load(header, Header.failed) !== 0) throw this.#failure();
    return this.#result(request);
  }

  started(): Promise<void> {
    return (this.#ready ?? Promise.resolve()).catch(() => {});
  }

  /**
   * Blocks until every worker has started: workers count themselves in the
   * control block, as no message reaches a blocked thread.
   */
  #awaitStartSync(): void {
    if (this.#death.error) throw this.#death.error; // a spawn that failed, a worker that died
    const { header } = this.#control;
    if (Atomics.load(header, Header.started) < this.workers) this.#assertWorkerReadable();
    if (!waitForSync(header, Header.started, this.workers, SYNC_START_LIMIT_MS)) {
      throw new ShardError(
        `Cannot step synchronously as the shard workers did not start within ${
          SYNC_START_LIMIT_MS / 1000
        } s: where a thread cannot start workers while it blocks (browsers), await opt.ready() before the first step; a worker that failed to start says why in an awaited step()`,
      );
    }
    if (Atomics.load(header, Header.startFailed) !== 0) {
      const error = this.#failure();
      this.#death.error ??= error;
      throw error;
    }
  }

  /**
   * A worker that cannot read its module dies with an error event, which a
   * blocked thread never hears: in Deno, ask for the permission up front.
   */
  #assertWorkerReadable(): void {
    const url = this.#options.workerUrl ?? WORKER_URL;
    if (!workerModuleUnreadable(url)) return;
    const error = new ShardError(
      `Cannot step on ${this.workers} workers as their module ${url.pathname} may not be read: run with --allow-read, or use workers: 0`,
    );
    this.#death.error ??= error;
    throw error;
  }

  /** Writes the step (and the plan, when it changed) into the control block and starts it. */
  #begin(request: StepRequest): void {
    if (request.plan !== this.#lastPlan) this.#writePlan(request.plan);
    this.#control.writeStep(request);
    this.#start();
  }

  #result(request: StepRequest): StepResult {
    const control = this.#control;
    const blockCount = request.plan.blocks.length;
    const scanned = gateNeedsScan(request.gate);
    // without a scan every worker took the same decision alone, from no sums
    const decision = scanned ? control.readDecision() : decideStep(request.gate, null);
    return {
      decision,
      gradSquares: scanned ? control.gradSquares.slice(0, blockCount) : null,
      partials: request.metrics && decision.action === "update"
        ? control.partials.slice(0, blockCount * PARTIAL_COUNT)
        : null,
    };
  }

  async pullState(): Promise<void> {
    if (this.stateLives === "host") return;
    await this.#ready;
    if (this.#death.error) throw this.#death.error;
    this.#control.writePull();
    this.#start();
    await this.#dispatch();
  }

  /** Clears the step's counters and bumps the generation: every worker starts what the control block holds. */
  #start(): void {
    const { header } = this.#control;
    Atomics.store(header, Header.done, 0);
    Atomics.store(header, Header.scanArrived, 0);
    Atomics.store(header, Header.countArrived, 0);
    Atomics.store(header, Header.cautionReady, 0);
    Atomics.store(header, Header.decision, 0);
    Atomics.store(header, Header.failed, 0);
    Atomics.add(header, Header.generation, 1);
    Atomics.notify(header, Header.generation);
  }

  /** Waits until every worker is done with what #start() started. */
  async #dispatch(): Promise<void> {
    const { header } = this.#control;

    const died = new Promise<never>((_, reject) => (this.#death.reject = reject));
    try {
      await Promise.race([waitFor(header, Header.done, this.workers), died]);
    } finally {
      this.#death.reject = undefined;
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
    // releases the scan and count barriers
    for (const barrier of [Header.scanArrived, Header.countArrived]) {
      Atomics.store(header, barrier, this.workers + 1);
      Atomics.notify(header, barrier);
    }
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
    const { runner } = this.#options;
    try {
      // gpujs: the mode is settled (adapter probed) once, here, for all workers
      this.#ready = runner instanceof Promise
        ? runner.then((spec) => this.#closed ? undefined : this.#spawnWorkers(spec))
        : this.#spawnWorkers(runner);
    } catch (error) {
      // `new Worker` refused at once (a bad workerUrl): the first step reports it, as a later failure
      const cause = error instanceof Error ? error : new Error(String(error));
      this.#death.error = new ShardError(`Shard workers could not start: ${cause.message}`, {
        cause,
      });
      this.#spawnError = this.#death.error;
      this.#ready = Promise.reject(this.#death.error);
    }
    this.#ready.catch(() => {}); // reported by the first step
  }

  #spawnWorkers(runner: RunnerSpec): Promise<void> {
    const { workers, arenas } = this.#options;
    const memories = arenas.map((arena) => arena.memory);
    const starting = Array.from({ length: workers }, (_, index) => {
      const worker = spawnWorkerThread(this.#options.workerUrl ?? WORKER_URL);
      this.#workers.push(worker);
      let end!: () => void;
      this.#ended.push(new Promise<void>((resolve) => (end = resolve)));
      return new Promise<void>((resolve, reject) => {
        worker.onMessage((data) => {
          const reply = data as ReadyMessage;
          if (reply.type === "ready") resolve();
          else if (reply.type === "closed") end();
          else {
            end();
            const cause = deserializeError(reply.err);
            reject(
              new ShardError(`Shard worker ${index} could not start: ${cause.message}`, { cause }),
            );
          }
        });
        worker.onError((message) => {
          const error = new ShardError(
            `Shard worker ${index} (${this.#describeShard(index)}) died: ${message}`,
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
          runner,
        };
        worker.postMessage(init);
      });
    });
    return Promise.all(starting).then(() => {});
  }

  /** Shares the plan's blocks out (balanced by elements) and writes the block table. */
  #writePlan(plan: StepPlan): void {
    const lengths = new Int32Array(plan.blocks.length);
    plan.blocks.forEach((block, i) => (lengths[i] = block.length));
    this.#bounds = balanceShards(lengths, this.workers);
    this.#control.writeBlocks(plan.blocks, this.#bounds);
    this.#lastPlan = plan;
  }

  #describeShard(index: number): string {
    const start = this.#bounds[index];
    const end = this.#bounds[index + 1];
    return start === undefined || end === undefined ? "no shard yet" : `blocks ${start}–${end}`;
  }

  /** The failed workers' errors: the first as the cause, the others named in the message. */
  #failure(): ShardError {
    const failed: { where: string; error: SerializedError }[] = [];
    for (let w = 0; w < this.workers; w++) {
      const error = this.#control.readError(w);
      if (error) failed.push({ where: `shard worker ${w} (${this.#describeShard(w)})`, error });
    }
    this.#control.clearErrors();
    const [first, ...others] = failed;
    if (first === undefined) return new ShardError("Step failed in a shard worker");
    const failure = shardFailure(first.where, deserializeError(first.error));
    if (others.length === 0) return failure;
    const also = others.map(({ where, error }) => `${where}: ${error.name}: ${error.message}`);
    return new ShardError(`${failure.message}; also ${also.join("; ")}`, { cause: failure.cause });
  }
}

/**
 * Whether this process may not read the worker module `url`: in Deno, a
 * `file:` module needs read permission, and a worker that cannot read its
 * module dies with an error event, which a thread blocked in `Atomics.wait`
 * never hears. `false` where that cannot be known (browsers, Node).
 *
 * @param url The worker module.
 * @returns `true` when the permission to read it is not granted.
 */
export function workerModuleUnreadable(url: URL): boolean {
  const permissions = (globalThis as {
    Deno?: { permissions?: { querySync?(d: { name: "read"; path: URL }): { state: string } } };
  }).Deno?.permissions;
  if (url.protocol !== "file:" || permissions?.querySync === undefined) return false;
  return permissions.querySync({ name: "read", path: url }).state !== "granted";
}
