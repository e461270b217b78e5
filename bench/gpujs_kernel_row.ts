/**
 * A bench row for the gpujs update kernels alone, in webgpu mode: buffers
 * already on the device, no uploads or readbacks, timed until the queue has
 * finished. It tells the kernels' share of the GPU's memory bandwidth apart
 * from the bus, which the full step also pays.
 *
 * @module
 */

import { compileLionKernels, DEVICE_TILE, type DeviceArray } from "../gpu/gpujs_kernels.ts";
import { closeGpuJs, loadGpuJs, openGpuJs } from "../gpu/gpujs_runtime.ts";
import { timeSteps, warmUp } from "./_timing.ts";

/** Bytes a step moves per element: the params kernel reads p, g, m and writes p; the moment kernel reads g, m and writes m. */
export const KERNEL_BYTES_PER_ELEMENT = 28;

/** The bench's view of a size and a row (bench.ts has the same shapes). */
interface Size {
  readonly count: number;
  readonly size: number;
}
interface Session {
  run(steps: number): Promise<number[]>;
  close(): Promise<void>;
}

function free(values: DeviceArray): void {
  if (!(values instanceof Float32Array)) values.delete();
}

/**
 * The row.
 *
 * @param budgetMs Milliseconds after which a round stops timing, once it has 3 steps.
 * @returns A row with id `gpujs-webgpu-kernels`.
 */
export function gpujsKernelRow(budgetMs: number): {
  id: string;
  label: string;
  open(size: Size): Promise<Session>;
} {
  return {
    id: "gpujs-webgpu-kernels",
    label: "gpujs webgpu kernels only (on device, no transfers)",
    async open(size) {
      const elements = Math.ceil((size.count * size.size) / DEVICE_TILE) * DEVICE_TILE;
      const gpu = await openGpuJs("webgpu");
      const kernels = compileLionKernels(gpu, elements);
      const { WebGPUContext } = await loadGpuJs();
      const { device } = await WebGPUContext.acquire();
      const host = new Float32Array(elements).map((_, i) => Math.sin(i));
      let params = await kernels.copy(host);
      let moment = await kernels.copy(host.map((x) => x / 10));
      const grads = await kernels.copy(host.map((x) => -x));
      const tileGroup = new Float32Array(elements / DEVICE_TILE);
      const constants = Float32Array.of(1e-4, 0.1, 0.01, 1 - 1e-8, -1e-4);
      const step = async () => {
        const nextParams = await kernels.params(params, grads, moment, tileGroup, constants);
        const nextMoment = await kernels.moment(grads, moment, tileGroup, constants);
        await device.queue.onSubmittedWorkDone();
        free(params);
        free(moment);
        params = nextParams;
        moment = nextMoment;
      };
      return {
        async run(steps) {
          await warmUp(step, 3, 0); // the first call compiles
          return await timeSteps(steps, step, budgetMs);
        },
        async close() {
          free(params);
          free(moment);
          free(grads);
          kernels.destroy();
          await closeGpuJs(gpu, "webgpu");
        },
      };
    },
  };
}
