/**
 * The demo's charts: Vega-Lite specs, compiled and rendered to SVG by Vega
 * (headless: Vega's SVG renderer needs no DOM). The page renders the same
 * specs live.
 *
 * @module
 */

import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { RUN_LABELS, RUNS } from "./runs.ts";
import type { DemoHistory } from "./trainer.ts";

/**
 * Training and validation loss of both optimizers against the step.
 *
 * @param history The run's history.
 * @returns The spec.
 */
export function lossSpec(history: DemoHistory): TopLevelSpec {
  const values = RUNS.flatMap((run) =>
    history.evalSteps.flatMap((step, i) => [
      { step, optimizer: RUN_LABELS[run], split: "train", loss: history[run].trainLoss[i] },
      {
        step,
        optimizer: RUN_LABELS[run],
        split: "validation",
        loss: history[run].valLoss[i],
      },
    ])
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Character-level name model: cross-entropy (nats per character)",
      subtitle: "solid: training (a fixed sample), dashed: validation (every held-out name)",
    },
    width: 560,
    height: 320,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step" },
      y: { field: "loss", type: "quantitative", title: "loss", scale: { zero: false } },
      color: { field: "optimizer", type: "nominal" },
      strokeDash: { field: "split", type: "nominal", legend: null },
    },
  };
}

/**
 * LionW's per-layer metrics against the step: the l2 norms (log scale) and
 * the cosines, a panel each.
 *
 * @param history The run's history.
 * @returns The spec.
 */
export function metricsSpec(history: DemoHistory): TopLevelSpec {
  const values: { step: number; metric: string; layer: string; value: number }[] = [];
  for (const [key, series] of Object.entries(history.lionw.metrics)) {
    const [kind, what, ...name] = key.split("/");
    const layer = name.filter((part) => part !== "lionw").join("/");
    const steps = history.lionw.metricSteps;
    series.forEach((value, i) =>
      values.push({ step: steps[i]!, metric: `${kind}/${what}`, layer, value })
    );
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: "DecoupledLionW metrics per layer (getMetrics())",
    data: { values },
    facet: { field: "metric", type: "nominal", title: null },
    columns: 3,
    spec: {
      width: 220,
      height: 140,
      // points too: at the first evaluation with metrics each series has one point, which a line alone does not draw
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "step", type: "quantitative" },
        y: { field: "value", type: "quantitative", scale: { zero: false } },
        color: { field: "layer", type: "nominal" },
      },
    },
    resolve: { scale: { y: "independent" } },
  };
}

/**
 * Renders a spec to SVG text.
 *
 * @param spec A Vega-Lite spec.
 * @returns The SVG.
 */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One exchange's validation curve in a sweep of `deno task demo:dist --sweep`. */
export interface SweepCurve {
  /** The ranks. */
  readonly ranks: number;
  /** What LionW's ranks exchanged. */
  readonly exchange: string;
  /** The evaluated steps. */
  readonly steps: readonly number[];
  /** LionW's validation loss at each. */
  readonly valLoss: readonly number[];
}

/**
 * LionW's validation loss against the step for each exchange, a panel per
 * rank count, side by side.
 *
 * @param curves The sweep's curves.
 * @returns The spec.
 */
export function sweepSpec(curves: readonly SweepCurve[]): TopLevelSpec {
  const values = curves.flatMap(({ ranks, exchange, steps, valLoss }) =>
    steps.map((step, i) => ({ step, ranks: `${ranks} ranks`, exchange, loss: valLoss[i] }))
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "DecoupledLionW data-parallel: validation loss (nats per character) by exchange",
      subtitle:
        "float32: the exact average; bfloat16: half the bytes; sign-vote: 1 bit a parameter",
    },
    data: { values },
    facet: { column: { field: "ranks", type: "nominal", title: null } },
    spec: {
      width: 320,
      height: 260,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "step", type: "quantitative", title: "step" },
        y: {
          field: "loss",
          type: "quantitative",
          title: "validation loss",
          scale: { zero: false },
        },
        color: { field: "exchange", type: "nominal", sort: ["float32", "bfloat16", "sign-vote"] },
      },
    },
  };
}
