/**
 * The gpujs shard runner: a {@linkcode DeviceShard} holds the shard's
 * parameters and exp_avg on a gpu.js device between steps. The inline
 * engine runs one for every block; each shard worker runs one for its share.
 *
 * The gradient scan runs on the host, in float64, with a CPU kernel, before
 * anything is uploaded: WGSL lets shader compilers assume there are no NaNs
 * or infinities, so a scan on the device could not be trusted to find them.
 *
 * @module
 */

import type { LionKernel } from "../src/kernels/kernel.ts";
import type { GpuJsMode } from "../src/engine/backends.ts";
import { inPlaceRunner, type ShardRunner } from "../src/engine/shard_runner.ts";
import { DeviceShard } from "./device_shard.ts";
import { openGpuJs } from "./gpujs_runtime.ts";

/**
 * Opens a gpu.js instance in `mode` and a runner on it.
 *
 * @param mode The gpu.js mode.
 * @param scanKernel The CPU kernel that scans gradients on the host.
 * @param memories The store's memories, by arena.
 * @returns The runner.
 */
export async function openDeviceRunner(
  mode: GpuJsMode,
  scanKernel: LionKernel,
  memories: readonly WebAssembly.Memory[],
): Promise<ShardRunner> {
  const shard = new DeviceShard(await openGpuJs(mode), mode);
  const host = inPlaceRunner(scanKernel, memories); // scans only: the device updates
  return {
    stateLives: "device",
    async assign(blocks, writes) {
      host.assign(blocks, writes);
      await shard.setSegments(memories, blocks, writes);
    },
    scan: (out, squares) => host.scan(out, squares),
    count() {
      // the optimizer refuses a cautious group on this backend before the step
      throw new RangeError("Cannot count for caution on the device: exp_avg is not on the host");
    },
    // no caution on the device: the optimizer refuses cautious groups on gpujs
    update: (groups, writes, partials) => shard.step(memories, groups, writes, partials),
    pull: () => shard.pull(memories),
    close: () => shard.close(),
  };
}
