/**
 * The messages between the demo page and its training worker.
 *
 * @module
 */

import type { DemoHistory } from "../trainer.ts";

/** Page → worker: the run. */
export interface StartMessage {
  readonly steps: number;
  readonly evalEvery: number;
  readonly seed: number;
  readonly workers: number;
  /** The tfjs backend both models train on: "cpu" (the default), "webgl" or "webgpu". */
  readonly backend: string;
}

/** Worker → page: progress, the end, or a failure. */
export type TrainerMessage =
  | {
    readonly type: "progress";
    readonly step: number;
    readonly history: DemoHistory;
    /** LionW's shard workers, and whether its store is in shared memory. */
    readonly lionwWorkers: number;
    readonly sharedMemory: boolean;
    readonly backend: string;
    /** The tfjs backend that trained (where LionW steps on the device on webgl and webgpu). */
    readonly tfjsBackend: string;
  }
  | { readonly type: "done"; readonly names: Record<string, string[]>; readonly seconds: number }
  | { readonly type: "error"; readonly message: string };
