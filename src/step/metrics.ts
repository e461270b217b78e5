/**
 * Per-parameter metrics with Composer's names, and the pre-reduce scheme that
 * makes them exact across shards and machines: shards produce sums
 * (`Σx²`, `Σa·b`), sums are added, and only then are norms and cosines taken.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { Partial, PARTIAL_COUNT } from "../kernels/kernel.ts";

/**
 * The metric kinds, in Composer's naming: `${kind}/${parameterName}`.
 *
 * @example Every kind for one parameter
 * ```ts
 * import { METRIC_KINDS } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * assert.equal(METRIC_KINDS.length, 6);
 * assert.deepEqual(METRIC_KINDS.map((kind) => `${kind}/fc.bias`)[4], "cosine/update_grad/fc.bias");
 * ```
 */
export const METRIC_KINDS: readonly string[] = Object.freeze([
  "l2_norm/moment",
  "l2_norm/param",
  "l2_norm/update",
  "l2_norm/grad",
  "cosine/update_grad",
  "cosine/moment_grad",
]);

/** The layer name of Composer's global norms: `l2_norm/grad/global`, … */
const GLOBAL = "global";
/** The vectors whose norms have a global key too. */
const NORM_KINDS = ["moment", "param", "update", "grad"] as const;

/**
 * The pre-reduced metrics of a step: for each parameter, six float64 sums
 * `[Σm², Σp², Σu², Σg², Σu·g, Σm·g]` (post-step exp_avg `m` and parameter
 * `p`, the step's gradient `g`, the reference's step tensor `u`).
 *
 * Across ranks, all-reduce `sums` element-wise (the names must agree), then
 * call {@linkcode finalizeMetrics}.
 *
 * @example All-reduce the partials of a step across ranks
 * ```ts
 * import { DecoupledLionW, finalizeMetrics, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("w", [2], [1, 1]);
 * await using opt = new DecoupledLionW([w]);
 * w.grad = [3, 4];
 * await opt.step({ metrics: true });
 * const partials = opt.getMetricPartials();
 * assert.equal(partials.sums[3], 25); // Σg²
 * // here a collective would add `partials.sums` over every rank
 * assert.equal(finalizeMetrics(partials)["l2_norm/grad/w"], 5);
 * ```
 */
export interface MetricPartials {
  /** Parameter names, one per record of six sums. */
  readonly names: readonly string[];
  /** `6 * names.length` sums, parameter by parameter. */
  readonly sums: Float64Array;
}

/**
 * A Composer-style metrics record: `"l2_norm/param/fc.weight"` → value.
 *
 * @example A record as getMetrics() returns it
 * ```ts
 * import type { MetricRecord } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const record: MetricRecord = { "l2_norm/grad/w": 5, "cosine/moment_grad/w": 1 };
 * assert.equal(record["l2_norm/grad/w"], 5);
 * ```
 */
export type MetricRecord = Record<string, number>;

/**
 * `dot / (‖a‖‖b‖)`, or 0 when either norm is 0 (Composer divides by zero
 * here and reports NaN; torch's cosine_similarity reports 0).
 */
function cosine(dot: number, squaredA: number, squaredB: number): number {
  const norms = Math.sqrt(squaredA) * Math.sqrt(squaredB);
  return norms === 0 ? 0 : dot / norms;
}

/**
 * Turns summed partials into norms and cosines.
 *
 * @param partials The (all-reduced) partial sums.
 * @returns `l2_norm/{moment,param,update,grad}/name` and
 * `cosine/{update_grad,moment_grad}/name` for every name, and Composer's
 * global norms `l2_norm/{moment,param,update,grad}/global`: the L2 norm of
 * every parameter's vectors together, √(Σ over parameters of Σx²).
 * @throws {RangeError} When `sums` does not hold six values per name, or a
 * parameter is named `global`.
 *
 * @example Norms and cosines from sums
 * ```ts
 * import { finalizeMetrics } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * // one parameter: Σm² = 4, Σp² = 9, Σu² = 1, Σg² = 16, Σu·g = 2, Σm·g = 0
 * const metrics = finalizeMetrics({ names: ["w"], sums: new Float64Array([4, 9, 1, 16, 2, 0]) });
 * assert.equal(metrics["l2_norm/param/w"], 3);
 * assert.equal(metrics["cosine/update_grad/w"], 2 / (1 * 4));
 * assert.equal(metrics["cosine/moment_grad/w"], 0);
 * assert.equal(metrics["l2_norm/grad/global"], 4); // one parameter: its own norm
 * ```
 */
export function finalizeMetrics(partials: MetricPartials): MetricRecord {
  checkPartials(partials, "finalize metrics");
  const keys = keysOf(partials.names);
  const out: MetricRecord = {};
  const sums = partials.sums;
  for (let i = 0, k = 0; i < sums.length; i += PARTIAL_COUNT) {
    // the order of METRIC_KINDS
    out[keys[k++]!] = Math.sqrt(sums[i + Partial.moment]!);
    out[keys[k++]!] = Math.sqrt(sums[i + Partial.param]!);
    out[keys[k++]!] = Math.sqrt(sums[i + Partial.update]!);
    out[keys[k++]!] = Math.sqrt(sums[i + Partial.grad]!);
    out[keys[k++]!] = cosine(
      sums[i + Partial.updateGrad]!,
      sums[i + Partial.update]!,
      sums[i + Partial.grad]!,
    );
    out[keys[k++]!] = cosine(
      sums[i + Partial.momentGrad]!,
      sums[i + Partial.moment]!,
      sums[i + Partial.grad]!,
    );
  }
  const totals = new Float64Array(PARTIAL_COUNT);
  for (let i = 0; i < partials.sums.length; i++) totals[i % PARTIAL_COUNT]! += partials.sums[i]!;
  for (const kind of NORM_KINDS) {
    out[`l2_norm/${kind}/${GLOBAL}`] = Math.sqrt(totals[Partial[kind]]!);
  }
  return out;
}

/**
 * The record's keys for `names`, six per name in {@linkcode METRIC_KINDS}
 * order, kept per list: a step plan keeps its list of names from step to
 * step, so a run builds its thousands of keys once, not at every step.
 */
const KEYS = new WeakMap<readonly string[], readonly string[]>();

function keysOf(names: readonly string[]): readonly string[] {
  let keys = KEYS.get(names);
  if (keys === undefined) {
    if (names.includes(GLOBAL)) {
      throw new RangeError(
        `Cannot finalize metrics as a parameter is named '${GLOBAL}', the name of the global norms`,
      );
    }
    keys = names.flatMap((name) => METRIC_KINDS.map((kind) => `${kind}/${name}`));
    KEYS.set(names, keys);
  }
  return keys;
}

/**
 * Adds partials from several shards or ranks, element-wise in the order
 * given (so the result is the same wherever it is computed).
 *
 * @param parts Partials with the same names in the same order.
 * @returns Their sum.
 * @throws {RangeError} When the list is empty or the names differ.
 *
 * @example Two ranks that each hold half of a tensor
 * ```ts
 * import { finalizeMetrics, sumMetricPartials } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const rank0 = { names: ["w"], sums: new Float64Array([1, 4, 0, 1, 0, 1]) };
 * const rank1 = { names: ["w"], sums: new Float64Array([3, 5, 0, 3, 0, 3]) };
 * const metrics = finalizeMetrics(sumMetricPartials([rank0, rank1]));
 * assert.equal(metrics["l2_norm/param/w"], 3); // √(4 + 5)
 * assert.equal(metrics["cosine/moment_grad/w"], 1);
 * ```
 */
export function sumMetricPartials(parts: readonly MetricPartials[]): MetricPartials {
  const first = parts[0];
  if (first === undefined) {
    throw new RangeError("Cannot sum metric partials as the list is empty");
  }
  checkPartials(first, "sum metric partials");
  const sums = new Float64Array(first.sums);
  for (const [index, part] of parts.entries()) {
    if (index === 0) continue;
    checkPartials(part, "sum metric partials");
    if (
      part.names.length !== first.names.length ||
      part.names.some((name, i) => name !== first.names[i])
    ) {
      throw new RangeError(
        `Cannot sum metric partials as part ${index} has other parameter names than part 0: ${
          formatValue([...part.names])
        } versus ${formatValue([...first.names])}`,
      );
    }
    for (let i = 0; i < sums.length; i++) sums[i]! += part.sums[i]!;
  }
  return { names: [...first.names], sums };
}

function checkPartials(partials: MetricPartials, action: string): void {
  if (partials.sums.length !== partials.names.length * PARTIAL_COUNT) {
    throw new RangeError(
      `Cannot ${action} as 'sums' must hold ${PARTIAL_COUNT} values per name (${
        partials.names.length * PARTIAL_COUNT
      }): current length is ${partials.sums.length}`,
    );
  }
}

/** Splits `cosine/a_b/layer` into its vectors; layer names may hold `/`. */
function splitMetric(metric: string): { vectors: string; layer: string } {
  const first = metric.indexOf("/");
  const second = metric.indexOf("/", first + 1);
  if (first < 0 || second < 0) {
    throw new RangeError(
      `Cannot convert metric ${formatValue(metric)} as it is not named 'kind/vectors/layer'`,
    );
  }
  return {
    vectors: metric.slice(first + 1, second),
    layer: metric.slice(second + 1),
  };
}

function cosineInputs(metric: string): [string, string] {
  const { vectors, layer } = splitMetric(metric);
  const [a, b, ...rest] = vectors.split("_");
  if (a === undefined || b === undefined || rest.length > 0) {
    throw new RangeError(
      `Cannot convert metric ${formatValue(metric)} as its vectors are not named 'a_b'`,
    );
  }
  return [`l2_norm/${a}/${layer}`, `l2_norm/${b}/${layer}`];
}

function lookUp(record: Readonly<MetricRecord>, name: string, metric: string): number {
  const value = record[name];
  if (value === undefined) {
    throw new RangeError(`Cannot convert metric '${metric}' as '${name}' is missing`);
  }
  return value;
}

/**
 * Composer's pre-reduce (the reference's `pre_reduce_metrics`): norms become
 * squared norms and cosines become dot products `cos·‖a‖·‖b‖`, values that
 * can be summed across ranks. Unlike the reference, the input is not changed.
 *
 * @param metrics Finalized metrics of one rank.
 * @returns The summable record.
 * @throws {RangeError} When a cosine's norms are missing from `metrics`.
 *
 * @example Pre-reduce, sum, post-reduce
 * ```ts
 * import { postReduceMetrics, preReduceMetrics } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const reduced = preReduceMetrics({ "l2_norm/grad/w": 2, "l2_norm/update/w": 3, "cosine/update_grad/w": 0.5 });
 * assert.deepEqual(reduced, { "l2_norm/grad/w": 4, "l2_norm/update/w": 9, "cosine/update_grad/w": 3 });
 * assert.deepEqual(postReduceMetrics(reduced)["cosine/update_grad/w"], 0.5);
 * ```
 */
export function preReduceMetrics(metrics: Readonly<MetricRecord>): MetricRecord {
  const out: MetricRecord = {};
  for (const [metric, value] of Object.entries(metrics)) {
    if (metric.startsWith("cosine")) {
      const [a, b] = cosineInputs(metric);
      out[metric] = value * lookUp(metrics, a, metric) * lookUp(metrics, b, metric);
    } else if (metric.startsWith("l2_norm")) {
      out[metric] = value ** 2;
    } else {
      out[metric] = value;
    }
  }
  return out;
}

/**
 * The inverse of {@linkcode preReduceMetrics}, applied after summing: square
 * roots of summed squares, and dot products divided by the norms. A cosine
 * with a zero norm is 0 (Composer's gives NaN).
 *
 * @param reduced A summed pre-reduced record.
 * @returns Norms and cosines.
 * @throws {RangeError} When a cosine's squared norms are missing.
 *
 * @example A zero gradient gives cosine 0, not NaN
 * ```ts
 * import { postReduceMetrics } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const out = postReduceMetrics({ "l2_norm/moment/b": 4, "l2_norm/grad/b": 0, "cosine/moment_grad/b": 0 });
 * assert.deepEqual(out, { "l2_norm/moment/b": 2, "l2_norm/grad/b": 0, "cosine/moment_grad/b": 0 });
 * ```
 */
export function postReduceMetrics(reduced: Readonly<MetricRecord>): MetricRecord {
  const out: MetricRecord = {};
  for (const [metric, value] of Object.entries(reduced)) {
    if (metric.startsWith("cosine")) {
      const [a, b] = cosineInputs(metric);
      out[metric] = cosine(value, lookUp(reduced, a, metric), lookUp(reduced, b, metric));
    } else if (metric.startsWith("l2_norm")) {
      out[metric] = Math.sqrt(value);
    } else {
      out[metric] = value;
    }
  }
  return out;
}
