/**
 * {@linkcode StateCopies}: which copy of exp_avg is the newest, the store's
 * or the one an engine keeps on a device. An engine that updates the store
 * in place has one copy, always the newest; one that keeps state on a
 * device (gpujs, the tfjs device path) has two, and the optimizer asks
 * this record before it reads the store's or lets a step run on the
 * device's.
 *
 * @module
 */

import type { StateResidence } from "./backends.ts";

/** The store's exp_avg against an engine's copy of it. */
export class StateCopies {
  /** Who keeps the other copy, for messages: `the gpujs backend`. */
  readonly keeper: string;
  readonly #lives: StateResidence;
  readonly #onHostWritten: (() => void) | undefined;
  #hostWritten = false;
  #deviceNewer = false;

  /**
   * @param keeper Who keeps the other copy, for messages: `the gpujs backend`.
   * @param lives Where the engine keeps exp_avg between steps.
   * @param onHostWritten Called when the store's copy is written, for an
   * engine that takes it at once rather than at its next step.
   */
  constructor(keeper: string, lives: StateResidence, onHostWritten?: () => void) {
    this.keeper = keeper;
    this.#lives = lives;
    this.#onHostWritten = onHostWritten;
  }

  /** The store's exp_avg was written since the last step (a loaded state dict): the engine must take it. */
  get hostWritten(): boolean {
    return this.#hostWritten;
  }

  /** The engine's copy is newer than the store's: pull it before reading the store. */
  get deviceNewer(): boolean {
    return this.#deviceNewer;
  }

  /** The store's copy was written: the engine's is stale. */
  wroteHost(): void {
    this.#hostWritten = true;
    this.#deviceNewer = false;
    this.#onHostWritten?.();
  }

  /** A step ran on the engine: it took the store's writes, and where it keeps state, its copy is the newest. */
  stepped(): void {
    this.#hostWritten = false;
    this.#deviceNewer = this.#lives === "device";
  }

  /** The engine's copy was brought into the store, or took the store's: they agree. */
  synced(): void {
    this.#hostWritten = false;
    this.#deviceNewer = false;
  }
}
