/**
 * The engine contract: how a step's kernels run, wherever they run. Every
 * engine runs a step as scan → decide → update: it scans the gradients
 * (`Σg²` per block, when the gate needs it), meets (all shards done
 * scanning), takes the one decision of {@linkcode decideStep} from the sums
 * of the whole step, then updates as it says. The inline engine does it on
 * the calling thread; the worker pool (workers/) across Web Workers. The
 * optimizer sees only this interface; `engine_factory.ts` builds engines.
 *
 * @module
 */

import type { GroupConstants } from "../kernels/kernel.ts";
import type { BackendName, GpuJsMode, StateResidence } from "./backends.ts";
import type { StepDecision, StepGate } from "../step/step_decision.ts";
import type { StepPlan } from "../step/step_plan.ts";

/** One step for an engine. */
export interface StepRequest {
  /** The blocks to update. */
  readonly plan: StepPlan;
  /** Float32 constants per group. */
  readonly groups: readonly GroupConstants[];
  /** The gate: what decides between scan and update. */
  readonly gate: StepGate;
  /** Produce the metric partial sums in the update pass. */
  readonly metrics: boolean;
  /** What the host wrote since the last step (engines that keep copies on a device upload it). */
  readonly writes: HostWrites;
}

/** What the host changed behind a device's back since the last step. */
export interface HostWrites {
  /** Parameter values were written (`Parameter.markWritten`). */
  readonly params: boolean;
  /** exp_avg was written (a loaded state dict). */
  readonly state: boolean;
}

/** What an engine did. */
export interface StepResult {
  /** The gate's decision (the update ran only for `"update"`). */
  readonly decision: StepDecision;
  /** What the scan wrote per block, when it ran: `Σg²`, or the verdict alone (NaN or 0) when the gate needs no norm. */
  readonly gradSquares: Float64Array | null;
  /** `PARTIAL_COUNT` sums per block, when metrics were asked for and the update ran. */
  readonly partials: Float64Array | null;
}

/** Runs the kernels of a step, wherever they run. */
export interface StepEngine {
  /** The kernel backend. */
  readonly backend: BackendName;
  /** Number of workers (0: the calling thread). */
  readonly workers: number;
  /** Where exp_avg lives between steps. */
  readonly stateLives: StateResidence;
  /** Runs one step. Rejects with a `ShardError` when a kernel or worker fails. */
  run(request: StepRequest): Promise<StepResult>;
  /**
   * Runs one step before returning, blocking the calling thread in
   * `Atomics.wait` while workers run it (for callers that cannot await,
   * such as a TensorFlow.js optimizer). Only engines whose kernels update the
   * host's memory synchronously can (`stateLives === "host"`).
   *
   * @throws {RangeError} When this engine cannot step synchronously.
   * @throws {ShardError} When a kernel or worker fails, or the workers did
   * not start or finish in time.
   */
  runSync(request: StepRequest): StepResult;
  /** Settles once the engine can step without waiting (its workers started); never rejects. */
  started(): Promise<void>;
  /**
   * Brings state the engine keeps on a device (exp_avg) back into the
   * store's memory; resolves at once for engines that update in place.
   */
  pullState(): Promise<void>;
  /** Makes the engine usable again after a failed step (workers are respawned). */
  reset(): void;
  /** Releases whatever the engine holds (workers, a device); idempotent. */
  close(): Promise<void>;
}

/** What a shard runner is made from: the same on the calling thread and in a worker. */
export interface RunnerSpec {
  /** The backend. */
  readonly backend: BackendName;
  /** The wasm kernel's fma mode. */
  readonly fma: "auto" | "exact";
  /** The gpu.js mode, for a backend that runs gpu.js. */
  readonly gpuMode: GpuJsMode | undefined;
}
