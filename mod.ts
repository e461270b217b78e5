/**
 * DecoupledLionW for TypeScript: Lion with decoupled, lr-scaled weight decay,
 * bit-exact with MosaicML's PyTorch `DecoupledLionW`, on parameters held in
 * shared memory, with per-parameter metrics that stay exact across shards and
 * machines (the pre-reduce scheme).
 *
 * @example Quick start
 * ```ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("fc1.weight", [2, 2], [1, 2, 3, 4]);
 * await using opt = new DecoupledLionW([w], { lr: 0.5 });
 *
 * w.grad = [1, -1, 0, 1];
 * await opt.step({ metrics: true });
 * assert.deepEqual([...w.data], [0.5, 2.5, 3, 3.5]); // p − lr·sign(g) on the first step
 * assert.equal(opt.getMetrics()["l2_norm/grad/fc1.weight"], Math.sqrt(3));
 * ```
 *
 * @module
 */

// The composition root: the engine's edges register themselves with the core, which never
// imports them (src/engine/edges.ts): the worker pool, and the gpu.js runtime.
import "./workers/register.ts";
import "./gpu/register.ts";

export { DecoupledLionW } from "./src/optimizer/decoupled_lionw.ts";
export type {
  DecoupledLionWOptions,
  StepOptions,
  StepReport,
  SyncStepOptions,
} from "./src/optimizer/options.ts";
export type {
  BackendChoice,
  BackendName,
  Calibration,
  GpuJsMode,
  GpuModeOption,
} from "./src/engine/backends.ts";
export type { NonFinitePolicy } from "./src/step/step_decision.ts";
export type { GroupHyperparameters } from "./src/optimizer/hyperparameters.ts";
export { ParamGroup } from "./src/optimizer/param_group.ts";
export type { ParamGroupOptions } from "./src/optimizer/param_group.ts";
export { Parameter } from "./src/store/parameter.ts";
export { ParameterStore } from "./src/store/parameter_store.ts";
export type { ParameterStoreOptions } from "./src/store/parameter_store.ts";
export type {
  LionParameterState,
  LionParamGroupState,
  LionStateDict,
  QuantizedMoments,
} from "./src/optimizer/state_dict.ts";
export {
  finalizeMetrics,
  METRIC_KINDS,
  postReduceMetrics,
  preReduceMetrics,
  sumMetricPartials,
} from "./src/step/metrics.ts";
export type { MetricPartials, MetricRecord } from "./src/step/metrics.ts";
export type { Logger } from "./src/_internal/logger.ts";
export type { MomentumDtype } from "./src/store/moment_dtype.ts";
export {
  constantSchedule,
  cosineAnnealingSchedule,
  cosineAnnealingWarmRestartsSchedule,
  cosineAnnealingWithWarmupSchedule,
  exponentialSchedule,
  linearSchedule,
  linearWithWarmupSchedule,
  multiStepSchedule,
  multiStepWithWarmupSchedule,
  polynomialSchedule,
  stepSchedule,
} from "./src/training/schedules.ts";
export type {
  ConstantScheduleOptions,
  CosineAnnealingScheduleOptions,
  CosineAnnealingWarmRestartsScheduleOptions,
  CosineAnnealingWithWarmupScheduleOptions,
  ExponentialScheduleOptions,
  LinearScheduleOptions,
  LinearWithWarmupScheduleOptions,
  MultiStepScheduleOptions,
  MultiStepWithWarmupScheduleOptions,
  PolynomialScheduleOptions,
  Schedule,
  StepScheduleOptions,
} from "./src/training/schedules.ts";
export { LrScheduler } from "./src/training/lr_scheduler.ts";
export { decayGroups } from "./src/training/decay_groups.ts";
export { clipGradNorm } from "./src/training/clip_grad_norm.ts";
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  MOMENT_PREFIX,
  saveCheckpoint,
} from "./src/io/checkpoint.ts";
export type { LoadCheckpointOptions, SaveCheckpointOptions } from "./src/io/checkpoint.ts";
export { SAFETENSORS_CHECKPOINT } from "./src/io/checkpoint.ts";
export type {
  CheckpointCodec,
  CodecLoadOptions,
  CodecSaveOptions,
} from "./src/io/checkpoint_codec.ts";
export { KV_CHUNK_BYTES, loadCheckpointKv, saveCheckpointKv } from "./src/io/checkpoint_kv.ts";
export type { CheckpointKv, KvAtomic, KvCheckpointHead, KvKey } from "./src/io/checkpoint_kv.ts";
export type { ClipGradNormOptions } from "./src/training/clip_grad_norm.ts";
export type { DecayGroups, DecayGroupsOptions, NoDecayRule } from "./src/training/decay_groups.ts";
export type { LrSchedulerState, ScheduledOptimizer } from "./src/training/lr_scheduler.ts";
export { ShardError } from "./src/engine/shard_error.ts";
export type {
  BlockingCollectives,
  Collective,
  CollectiveBuffer,
} from "./src/distributed/collective.ts";
export { LocalCollective } from "./src/distributed/local_collective.ts";
export { type Exchange, EXCHANGES } from "./src/distributed/exchange.ts";
export { probeGpuAdapter } from "./gpu/adapter.ts";
export type { GpuAdapterReport } from "./src/engine/backends.ts";
export { recommendBackend } from "./src/tools/recommend_backend.ts";
export type { RecommendBackendOptions } from "./src/tools/recommend_backend.ts";
