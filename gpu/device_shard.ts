/**
 * A shard on a gpu.js device: the parameters and exp_avg of a list of
 * segments, packed into device buffers that stay there between steps.
 *
 * What crosses the bus per step: the gradients go up (they are new every
 * step) and the new parameters come down (the host reads them for the next
 * forward pass), with the metric partials (6 floats per 256 elements) when
 * asked. exp_avg stays on the device; it comes down only for `pull()`
 * (state, state dicts) and before the layout changes, and goes up only when
 * the host wrote it (a loaded state dict). Parameters go up only when the
 * host wrote them (`markWritten()`), or the layout is new.
 *
 * @module
 */

import type { HostWrites } from "../src/engine/engine.ts";
import {
  GROUP_CONSTANT_FIELDS,
  type GroupConstants,
  packGroupConstants,
  PARTIAL_COUNT,
} from "../src/kernels/kernel.ts";
import type { GpuJsMode } from "../src/engine/backends.ts";
import type { PlannedBlock } from "../src/step/step_plan.ts";
import {
  compileLionKernels,
  DEVICE_SUMS,
  DEVICE_TILE,
  type DeviceArray,
  type GpuJs,
  type LionDeviceKernels,
  SUM_THREADS_PER_TILE,
} from "./gpujs_kernels.ts";
import { closeGpuJs } from "./gpujs_runtime.ts";

/** Where each segment lies on the device. */
interface DeviceLayout {
  readonly segments: readonly PlannedBlock[];
  /** Device element offset of each segment (a multiple of DEVICE_TILE). */
  readonly offsets: Int32Array;
  /** Device elements (padding included). */
  readonly elements: number;
  /** Group index of each tile. */
  readonly tileGroup: Float32Array;
  /** Block (of the plan) of each tile, -1 for padding. */
  readonly tileBlock: Int32Array;
  /** Host staging for uploads; its padding stays zero. */
  readonly staging: Float32Array;
}

async function readBack(values: DeviceArray): Promise<Float32Array> {
  return values instanceof Float32Array ? values : await values.toArray();
}

function release(values: DeviceArray | undefined): void {
  if (values !== undefined && !(values instanceof Float32Array)) values.delete();
}

function planLayout(segments: readonly PlannedBlock[]): DeviceLayout {
  const offsets = new Int32Array(segments.length);
  let elements = 0;
  segments.forEach((segment, i) => {
    offsets[i] = elements;
    elements += Math.ceil(segment.length / DEVICE_TILE) * DEVICE_TILE;
  });
  elements = Math.max(elements, DEVICE_TILE);
  const tileGroup = new Float32Array(elements / DEVICE_TILE);
  const tileBlock = new Int32Array(elements / DEVICE_TILE).fill(-1);
  segments.forEach((segment, i) => {
    const first = offsets[i]! / DEVICE_TILE;
    const count = Math.ceil(segment.length / DEVICE_TILE);
    tileGroup.fill(segment.group, first, first + count);
    tileBlock.fill(segment.block, first, first + count);
  });
  return {
    segments,
    offsets,
    elements,
    tileGroup,
    tileBlock,
    staging: new Float32Array(elements),
  };
}

/** One shard's device state and kernels. */
export class DeviceShard {
  /** The gpu.js mode. */
  readonly mode: GpuJsMode;
  readonly #gpu: GpuJs;
  #layout: DeviceLayout | undefined;
  #kernels: LionDeviceKernels | undefined;
  #params: DeviceArray | undefined;
  #moment: DeviceArray | undefined;
  /** Whether the device's exp_avg is newer than the host's. */
  #momentAhead = false;

  /**
   * @param gpu A gpu.js instance in `mode`.
   * @param mode Its mode.
   */
  constructor(gpu: GpuJs, mode: GpuJsMode) {
    this.#gpu = gpu;
    this.mode = mode;
  }

  /**
   * Takes a new list of segments. exp_avg the device holds for the old list
   * comes back to the host first, unless the host's is newer (a loaded
   * state dict); the next step uploads everything from the host.
   *
   * @param arenas The store's memories.
   * @param segments The shard's segments, with their arenas.
   * @param writes What the host wrote since the last step.
   */
  async setSegments(
    arenas: readonly WebAssembly.Memory[],
    segments: readonly PlannedBlock[],
    writes: HostWrites,
  ): Promise<void> {
    if (!writes.state) await this.pull(arenas);
    this.#drop();
    const layout = planLayout(segments);
    if (this.#layout?.elements !== layout.elements) {
      this.#kernels?.destroy();
      this.#kernels = compileLionKernels(this.#gpu, layout.elements);
    }
    this.#layout = layout;
  }

  /**
   * One step on the shard: upload what changed, update on the device,
   * bring the new parameters back into the arenas.
   *
   * @param arenas The store's memories.
   * @param groups Float32 constants per group.
   * @param writes What the host wrote since the last step.
   * @param partials Where to write `PARTIAL_COUNT` sums per block, or `null`.
   */
  async step(
    arenas: readonly WebAssembly.Memory[],
    groups: readonly GroupConstants[],
    writes: HostWrites,
    partials: Float64Array | null,
  ): Promise<void> {
    const layout = this.#layout;
    const kernels = this.#kernels;
    if (layout === undefined || kernels === undefined || layout.segments.length === 0) return;
    const views = arenas.map((memory) => new Float32Array(memory.buffer));
    if (this.#params === undefined || writes.params) {
      release(this.#params);
      this.#params = await kernels.copy(this.#gather(views, "data"));
    }
    if (this.#moment === undefined || writes.state) {
      release(this.#moment);
      this.#moment = await kernels.copy(this.#gather(views, "expAvg"));
    }
    const grads = await kernels.copy(this.#gather(views, "grad"));
    const constants = packConstants(groups);
    const params = await kernels.params(
      this.#params,
      grads,
      this.#moment,
      layout.tileGroup,
      constants,
    );
    const moment = await kernels.moment(grads, this.#moment, layout.tileGroup, constants);
    release(this.#params);
    release(this.#moment);
    this.#params = params;
    this.#moment = moment;
    this.#momentAhead = true;
    if (partials !== null) {
      const sums = await kernels.partials(params, grads, moment, layout.tileGroup, constants);
      this.#addPartials(await readBack(sums), partials);
      release(sums);
    }
    release(grads);
    this.#scatter(await readBack(params), views, "data");
  }

  /**
   * Brings exp_avg back into the arenas when the device's is newer.
   *
   * @param arenas The store's memories.
   */
  async pull(arenas: readonly WebAssembly.Memory[]): Promise<void> {
    if (!this.#momentAhead || this.#moment === undefined) return;
    const views = arenas.map((memory) => new Float32Array(memory.buffer));
    this.#scatter(await readBack(this.#moment), views, "expAvg");
    this.#momentAhead = false;
  }

  /** Forgets the device copies (the host's are then the truth); frees them. */
  #drop(): void {
    release(this.#params);
    release(this.#moment);
    this.#params = undefined;
    this.#moment = undefined;
    this.#momentAhead = false;
  }

  /** Frees the device memory and the kernels; the host's copies are the truth after. */
  async close(): Promise<void> {
    this.#drop();
    this.#kernels?.destroy();
    this.#kernels = undefined;
    await closeGpuJs(this.#gpu, this.mode);
  }

  #gather(views: readonly Float32Array[], slot: "data" | "grad" | "expAvg"): Float32Array {
    const { segments, offsets, staging } = this.#layout!;
    segments.forEach((segment, i) => {
      const at = segment[slot];
      staging.set(views[segment.arena]!.subarray(at, at + segment.length), offsets[i]!);
    });
    return staging;
  }

  #scatter(values: Float32Array, views: readonly Float32Array[], slot: "data" | "expAvg"): void {
    const { segments, offsets } = this.#layout!;
    segments.forEach((segment, i) => {
      const from = offsets[i]!;
      views[segment.arena]!.set(values.subarray(from, from + segment.length), segment[slot]);
    });
  }

  /** Adds each block's tiles in tile order, in float64. */
  #addPartials(sums: Float32Array, partials: Float64Array): void {
    const { segments, tileBlock } = this.#layout!;
    for (const { block } of segments) {
      partials.fill(0, block * PARTIAL_COUNT, (block + 1) * PARTIAL_COUNT);
    }
    tileBlock.forEach((block, tile) => {
      if (block < 0) return;
      for (let k = 0; k < DEVICE_SUMS; k++) {
        partials[block * PARTIAL_COUNT + k]! += sums[tile * SUM_THREADS_PER_TILE + k]!;
      }
    });
  }
}

function packConstants(groups: readonly GroupConstants[]): Float32Array {
  const packed = new Float32Array(Math.max(1, groups.length) * GROUP_CONSTANT_FIELDS);
  packGroupConstants(groups, packed);
  return packed;
}
