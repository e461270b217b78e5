/**
 * The engine of the adapter's device path, as the inner `DecoupledLionW`
 * sees it: nothing starts (no worker, no kernel), its steps are refused
 * (they run on tfjs's tensors, through `applyGradients`), and it keeps
 * exp_avg on the device, so the inner optimizer pulls before it reads the
 * store and the device takes a loaded state dict at once.
 *
 * @module
 */

import type { GradientWriter, StartedEngine } from "../src/engine/engine_factory.ts";
import type { StepEngine, StepResult } from "../src/engine/engine.ts";
import type { LionKernel } from "../src/kernels/kernel.ts";
import type { StateCopies } from "../src/engine/state_copies.ts";

/** What the engine asks of the device path. */
export interface DeviceKeeper {
  /** Writes the device's parameters and exp_avg into the store. */
  pull(): Promise<void>;
}

/**
 * The started engine of a device path.
 *
 * @param keeper The device path.
 * @param copies Its record of which copy of exp_avg is newest.
 * @param backend The tfjs backend's name, for messages.
 * @returns The engine.
 */
export function deviceEngine(
  keeper: DeviceKeeper,
  copies: StateCopies,
  backend: string,
): StartedEngine {
  const refusal = () =>
    new RangeError(
      `Cannot step the inner optimizer as its steps run on the tfjs ${backend} backend's tensors: call the tfjs optimizer's applyGradients() or minimize()`,
    );
  const ready = Promise.reject(refusal());
  ready.catch(() => {}); // step() reports it
  const engine: StepEngine = {
    backend: "js",
    workers: 0,
    stateLives: "device",
    run: (): Promise<StepResult> => Promise.reject(refusal()),
    runSync: (): StepResult => {
      throw refusal();
    },
    started: () => Promise.resolve(),
    pullState: () => keeper.pull(),
    reset: () => {},
    close: () => Promise.resolve(),
  };
  return {
    engine,
    ready,
    choice: () => ({
      backend: "js",
      reason:
        `steps run on the tfjs ${backend} backend's tensors; this optimizer keeps the groups and the host copy of the state`,
    }),
    get hostKernel(): LionKernel {
      throw refusal();
    },
    copies,
    gradientWriter: (): GradientWriter | undefined => undefined,
  };
}
