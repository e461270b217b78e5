/**
 * The inner optimizer of the adapter's device path: a `DecoupledLionW` that
 * never steps (the device does) but keeps the groups, the schedules' `lr`
 * and the host copy of the state, and hears of the two moments that copy
 * must meet the device's: {@linkcode MirroredLionW.pullState} (a checkpoint
 * being written, say) first brings the device's values into the store, and a
 * `loadStateDict` (a checkpoint being loaded) sends the store's to the device.
 *
 * @module
 */

import { DecoupledLionW } from "../src/optimizer/decoupled_lionw.ts";
import type { LionStateDict } from "../src/optimizer/state_dict.ts";

/** What keeps the device's copy: the device path. */
export interface DeviceMirror {
  /** Writes the device's parameters and state into the inner optimizer. */
  pull(inner: MirroredLionW): Promise<void>;
  /** The host copy was loaded: the device takes it before its next use. */
  loaded(): void;
}

/** A `DecoupledLionW` whose state lives on a tfjs device between the times it is pulled. */
export class MirroredLionW extends DecoupledLionW {
  #mirror: DeviceMirror | undefined;
  #pulling = false;

  /**
   * Connects the device path (once, right after construction).
   *
   * @param mirror The device path.
   */
  attach(mirror: DeviceMirror): void {
    this.#mirror = mirror;
  }

  /**
   * Brings the device's parameters and exp_avg into the store, then does
   * what `DecoupledLionW.pullState` does.
   */
  override async pullState(): Promise<void> {
    this.#pulling = true;
    try {
      await this.#mirror?.pull(this);
    } finally {
      this.#pulling = false;
    }
    await super.pullState();
  }

  /**
   * Loads `dict` as `DecoupledLionW.loadStateDict` does; outside a pull, the
   * device takes the loaded state before its next step.
   *
   * @param dict The state dict.
   */
  override loadStateDict(dict: LionStateDict): void {
    super.loadStateDict(dict);
    if (!this.#pulling) this.#mirror?.loaded();
  }
}
