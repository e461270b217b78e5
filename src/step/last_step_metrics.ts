/**
 * {@linkcode LastStepMetrics}: the metrics of an optimizer's last step, kept
 * as its packed partial sums (one Float64Array, as they cross workers and
 * ranks) and turned into a record only when asked for, once per step.
 * Building a record of six keys per parameter is the part of a step with
 * metrics that grows with the number of tensors, not of elements; a step
 * whose metrics nobody reads does not pay for it.
 *
 * @module
 */

import { finalizeMetrics, type MetricPartials, type MetricRecord } from "./metrics.ts";

const NO_PARTIALS: MetricPartials = Object.freeze({ names: [], sums: new Float64Array(0) });

/** The last step's metrics: partial sums now, the record when first asked for. */
export class LastStepMetrics {
  #partials: MetricPartials = NO_PARTIALS;
  #record: MetricRecord | undefined = {};

  /** A step without metrics: the record is empty. */
  clear(): void {
    this.#partials = NO_PARTIALS;
    this.#record = {};
  }

  /**
   * Keeps a step's summed partials (the caller gives up the array).
   *
   * @param partials The step's partial sums, by parameter.
   */
  set(partials: MetricPartials): void {
    this.#partials = partials;
    this.#record = undefined;
  }

  /**
   * The record, made at the first call after a step and kept for the next.
   *
   * @returns A fresh copy.
   */
  record(): MetricRecord {
    this.#record ??= finalizeMetrics(this.#partials);
    return { ...this.#record };
  }

  /**
   * The partial sums.
   *
   * @returns A copy.
   */
  partials(): MetricPartials {
    return { names: [...this.#partials.names], sums: this.#partials.sums.slice() };
  }
}
