/**
 * {@linkcode Parameter}: one named tensor of a {@linkcode ParameterStore},
 * with its data, gradient and optimizer state in the store's shared memory.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { checkNumbers } from "../_internal/validate.ts";
import { assertNoStepInFlight, attachSlots, type ParameterSlots, parameterSlots } from "./slots.ts";

/**
 * One named tensor: a float32 view of its data in shared memory, an optional
 * gradient (torch's `grad`, `null` when absent) and whether it is trained.
 *
 * Parameters are made by {@linkcode ParameterStore.add}, never constructed
 * directly.
 *
 * @example Gradients follow torch's `None` semantics
 * ```ts
 * import { ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("fc.weight", [2, 3], [1, 2, 3, 4, 5, 6]);
 * assert.deepEqual(w.shape, [2, 3]);
 * assert.equal(w.grad, null); // no gradient yet
 *
 * w.grad = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]; // copied into shared memory
 * assert.equal(w.grad!.length, 6);
 *
 * w.grad = null; // no gradient this step: the optimizer skips `w`
 * w.ensureGrad().fill(1); // a zeroed gradient slot to write into
 * assert.deepEqual([...w.grad!], [1, 1, 1, 1, 1, 1]);
 * ```
 */
export class Parameter {
  /** The name, unique in its store; metrics and state dicts are keyed by it. */
  readonly name: string;
  /** The shape; `[]` is a scalar. */
  readonly shape: readonly number[];
  /** The number of elements, the product of `shape`. */
  readonly size: number;

  /**
   * Internal: use {@linkcode ParameterStore.add}.
   *
   * @param name The name.
   * @param shape The shape, already validated.
   * @param slots The store's bookkeeping.
   */
  constructor(name: string, shape: readonly number[], slots: ParameterSlots) {
    this.name = name;
    this.shape = Object.freeze([...shape]);
    this.size = slots.dataView.length;
    attachSlots(this, slots);
  }

  /**
   * The values: a float32 view into the store's shared memory. Write into it
   * freely between steps, never while a step's promise is pending (workers
   * are updating it in place); under the `gpujs` backend, which keeps
   * parameters on the device between steps, call
   * {@linkcode Parameter.markWritten} after writing.
   */
  get data(): Float32Array {
    return parameterSlots(this).dataView;
  }

  /**
   * Tells the optimizer that `data` was written on the host since its last
   * step, so a backend that keeps parameters on a device (`gpujs`) uploads
   * them again before the next step. A no-op for the CPU backends, which
   * update `data` in place; cheap, so call it whenever you write.
   *
   * @throws {Error} When a step of the optimizer is in flight (outside its closure).
   *
   * @example Load new values between steps
   * ```ts
   * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
   * import assert from "node:assert/strict";
   *
   * const w = new ParameterStore().add("w", [2], [1, 1]);
   * await using opt = new DecoupledLionW([w], { lr: 0.5, weightDecay: 0 });
   * w.grad = [1, -1];
   * await opt.step();
   * w.data.set([10, 10]); // e.g. weights restored from a checkpoint
   * w.markWritten();
   * await opt.step();
   * assert.deepEqual([...w.data], [9.5, 10.5]);
   * ```
   */
  markWritten(): void {
    const slots = parameterSlots(this);
    assertNoStepInFlight(slots.owner, `mark parameter '${this.name}' written`);
    slots.written = true;
  }

  /**
   * The gradient: a float32 view into shared memory, or `null` when there is
   * none this step (torch's `grad is None`).
   *
   * Assigning an array copies it into the shared gradient slot and marks the
   * gradient present; assigning `null` marks it absent.
   *
   * @throws {RangeError} When the assigned array's length is not `size`.
   * @throws {TypeError} When the assigned value is not array-like or `null`,
   * or holds an element that is not a number.
   * @throws {Error} When a step of the optimizer is in flight (outside its
   * closure): the step reads the gradient, so await it first.
   */
  get grad(): Float32Array | null {
    const slots = parameterSlots(this);
    if (!slots.hasGrad) return null;
    slots.gradViewShared = true; // the view may be written: the step scans this gradient
    return slots.gradView;
  }

  set grad(values: ArrayLike<number> | null) {
    const slots = parameterSlots(this);
    assertNoStepInFlight(slots.owner, `set the gradient of parameter '${this.name}'`);
    if (values === null) {
      slots.hasGrad = false;
      slots.gradScan = null;
      return;
    }
    if (typeof values !== "object" || typeof values.length !== "number") {
      throw new TypeError(
        `Cannot set the gradient of parameter '${this.name}' as it must be an array of numbers or null: current value is ${
          formatValue(values)
        }`,
      );
    }
    if (values.length !== this.size) {
      throw new RangeError(
        `Cannot set the gradient of parameter '${this.name}' as its length must be ${this.size}: current length is ${values.length}`,
      );
    }
    checkNumbers(`Cannot set the gradient of parameter '${this.name}'`, "grad", values);
    const write = slots.gradViewShared ? undefined : slots.owner?.writeGradient;
    if (write === undefined) {
      slots.gradView.set(values);
      slots.gradScan = null;
    } else {
      write(slots, values); // copied and scanned block by block, while each block is in cache
    }
    slots.hasGrad = true;
  }

  /**
   * The shared gradient slot, zeroed first if no gradient was present, for
   * producers that write gradients in place (no copy).
   *
   * @returns The gradient view, now marked present.
   * @throws {Error} When a step of the optimizer is in flight (outside its closure).
   */
  ensureGrad(): Float32Array {
    const slots = parameterSlots(this);
    assertNoStepInFlight(slots.owner, `get the gradient slot of parameter '${this.name}'`);
    if (!slots.hasGrad) {
      slots.gradView.fill(0);
      slots.hasGrad = true;
    }
    slots.gradViewShared = true; // written in place: the step scans this gradient
    return slots.gradView;
  }

  /**
   * Whether the optimizer trains this parameter (torch's `requires_grad`).
   * When `false`, steps leave its data and state alone even if it has a
   * gradient.
   *
   * @default {true}
   * @throws {TypeError} When the assigned value is not a boolean.
   */
  get requiresGrad(): boolean {
    return parameterSlots(this).requiresGrad;
  }

  set requiresGrad(value: boolean) {
    if (typeof value !== "boolean") {
      throw new TypeError(
        `Cannot set 'requiresGrad' of parameter '${this.name}' as it must be a boolean: current value is ${
          formatValue(value)
        }`,
      );
    }
    parameterSlots(this).requiresGrad = value;
  }
}
