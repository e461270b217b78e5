/**
 * The store's bookkeeping behind each {@linkcode Parameter}: where its three
 * slots (data, gradient, exp_avg) lie, and the flags the optimizer reads.
 * Private to this package; the store writes it, parameters and the
 * optimizer read it. Neither `Parameter` nor `ParameterStore` is imported
 * here, so the two modules do not depend on each other through it.
 *
 * @module
 */

import type { MomentumDtype } from "./moment_dtype.ts";
import { formatValue } from "../_internal/format.ts";
import type { Arena } from "./arena.ts";

/** The memory of one store: its arenas, and how many optimizers use it. */
export interface StoreMemory {
  /** The arenas, in order. */
  readonly arenas: Arena[];
  /** Whether the arenas are shared memories (workers can use them). */
  readonly shared: boolean;
  /** The exp_avg slots' type: float32-sized, or bfloat16-sized (half). */
  readonly momentumDtype: MomentumDtype;
  /** Optimizers using the store (no `add` while > 0). */
  users: number;
}

/** A gradient's scan, taken as it was written: what a step's scan of it would give. */
export interface WrittenScan {
  /** Per step block: `Σg²`, or (without `squares`) the verdict alone, NaN or 0. */
  readonly sums: Float64Array;
  /** Whether `sums` are `Σg²` (clipping needs them) rather than the verdict alone. */
  readonly squares: boolean;
}

/** What a parameter sees of the optimizer that owns its slots. */
export interface SlotOwner {
  /**
   * A step is under way (outside its closure): host writes to the gradient
   * or the write flags would tear it, so they throw.
   */
  stepInFlight: boolean;
  /**
   * Copies a gradient into the slot and scans it on the way (per block,
   * the verdict or `Σg²`, into `gradScan`), so the step need not scan it
   * again. The `grad` setter uses it where the owning optimizer provides one.
   */
  writeGradient?: (slots: ParameterSlots, values: ArrayLike<number>) => void;
}

/** Where a parameter's three slots are, and its flags. */
export interface ParameterSlots {
  /** The memory of the store that made the parameter. */
  readonly memory: StoreMemory;
  /** Position in the store, in order of `add`. */
  readonly index: number;
  /** Index of the arena that holds all three slots. */
  readonly arena: number;
  /** Element offset of the data slot in the arena's float32 view. */
  readonly data: number;
  /** Element offset of the gradient slot. */
  readonly grad: number;
  /** Element offset of the exp_avg slot. */
  readonly expAvg: number;
  /** The data slot. */
  readonly dataView: Float32Array;
  /** The gradient slot, meaningful only while `hasGrad`. */
  readonly gradView: Float32Array;
  /**
   * The exp_avg slot, meaningful only while an optimizer holds state: `size`
   * float32 values, or in a bfloat16 store the float32 words that hold its
   * `size` bfloat16 values (read them with `readMoments`).
   */
  readonly expAvgView: Float32Array;
  /** Whether the gradient slot holds this step's gradient (torch: `grad is not None`). */
  hasGrad: boolean;
  /**
   * The scan of the gradient as the library wrote it (the owner's
   * `writeGradient`), or `null`: not known, the step scans it.
   */
  gradScan: WrittenScan | null;
  /**
   * A view of the gradient slot was handed out (`grad`, `ensureGrad()`):
   * it may be written behind the library's back, so a scan taken at a write
   * is never trusted for this parameter again.
   */
  gradViewShared: boolean;
  /** Whether the values were written on the host since an optimizer last read them (`markWritten`). */
  written: boolean;
  /** Whether the parameter is trained at all. */
  requiresGrad: boolean;
  /** The optimizer that owns the exp_avg slot, if any. */
  owner: SlotOwner | undefined;
}

const slotsOf = new WeakMap<object, ParameterSlots>();

/**
 * Records `param`'s slots (the store does, when it makes the parameter).
 *
 * @param param The new parameter.
 * @param slots Its slots.
 */
export function attachSlots(param: object, slots: ParameterSlots): void {
  slotsOf.set(param, slots);
}

/**
 * The slots of `param`.
 *
 * @param param A parameter made by a store.
 * @returns Its slots.
 * @throws {TypeError} When `param` was not made by a store.
 */
export function parameterSlots(param: object): ParameterSlots {
  const slots = slotsOf.get(param);
  if (slots === undefined) {
    throw new TypeError(
      `Cannot use ${
        formatValue(param)
      } as a parameter: parameters are made by ParameterStore.add()`,
    );
  }
  return slots;
}

/**
 * Throws when a step of the owning optimizer is in flight.
 *
 * @param owner The optimizer's side of the slots, if an optimizer owns them.
 * @param action What was asked, for the message, e.g. "set the gradient of parameter 'w'".
 */
export function assertNoStepInFlight(owner: SlotOwner | undefined, action: string): void {
  if (owner?.stepInFlight) {
    throw new Error(`Cannot ${action} as a step() is in flight: await it first`);
  }
}

/**
 * Marks the gradient absent (torch's `set_to_none`) or fills a present one
 * with zeros; a scan taken when it was written no longer holds either way.
 *
 * @param slots The parameter's slots.
 * @param setToNone Whether to mark it absent rather than zero it.
 */
export function zeroGradient(slots: ParameterSlots, setToNone: boolean): void {
  if (setToNone) slots.hasGrad = false;
  else if (slots.hasGrad) slots.gradView.fill(0);
  slots.gradScan = null;
}
