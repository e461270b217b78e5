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

export { DecoupledLionW } from "./src/decoupled_lionw.ts";
export type {
  BackendChoice,
  BackendName,
  Calibration,
  DecoupledLionWOptions,
  GpuJsMode,
  GpuModeOption,
  NonFinitePolicy,
  StepOptions,
  StepReport,
  SyncStepOptions,
} from "./src/options.ts";
export type { GroupHyperparameters } from "./src/hyperparameters.ts";
export { ParamGroup } from "./src/param_group.ts";
export type { ParamGroupOptions } from "./src/param_group.ts";
export { Parameter } from "./src/parameter.ts";
export { ParameterStore } from "./src/parameter_store.ts";
export type { ParameterStoreOptions } from "./src/parameter_store.ts";
export type { LionParameterState, LionParamGroupState, LionStateDict } from "./src/state_dict.ts";
export {
  finalizeMetrics,
  METRIC_KINDS,
  postReduceMetrics,
  preReduceMetrics,
  sumMetricPartials,
} from "./src/metrics.ts";
export type { MetricPartials, MetricRecord } from "./src/metrics.ts";
export type { Logger } from "./src/logger.ts";
export type { MomentumDtype } from "./src/moment_dtype.ts";
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
} from "./src/schedules.ts";
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
} from "./src/schedules.ts";
export { LrScheduler } from "./src/lr_scheduler.ts";
export { decayGroups } from "./src/decay_groups.ts";
export { clipGradNorm } from "./src/clip_grad_norm.ts";
export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  MOMENT_PREFIX,
  saveCheckpoint,
} from "./src/checkpoint.ts";
export type { LoadCheckpointOptions, SaveCheckpointOptions } from "./src/checkpoint.ts";
export { KV_CHUNK_BYTES, loadCheckpointKv, saveCheckpointKv } from "./src/checkpoint_kv.ts";
export type { CheckpointKv, KvAtomic, KvCheckpointHead, KvKey } from "./src/checkpoint_kv.ts";
export type { ClipGradNormOptions } from "./src/clip_grad_norm.ts";
export type { DecayGroups, DecayGroupsOptions, NoDecayRule } from "./src/decay_groups.ts";
export type { LrSchedulerState, ScheduledOptimizer } from "./src/lr_scheduler.ts";
export { ShardError } from "./src/shard_error.ts";
export type { BlockingCollectives, Collective, CollectiveBuffer } from "./src/collective.ts";
export { LocalCollective } from "./src/local_collective.ts";
export { probeGpuAdapter } from "./gpu/adapter.ts";
export type { GpuAdapterReport } from "./gpu/adapter.ts";
export { recommendBackend } from "./gpu/recommend_backend.ts";
export type { RecommendBackendOptions } from "./gpu/recommend_backend.ts";
