import assert from "node:assert/strict";
import { metricsSpec, toSvg } from "../demo/plots.ts";
import type { DemoHistory } from "../demo/trainer.ts";

/** A history at the first evaluation with metrics: one value per series. */
function firstEvaluation(): DemoHistory {
  const run = {
    trainLoss: [2.5, 2.3],
    valLoss: [2.6, 2.4],
    lr: [0, 1e-3],
    optimizerStepMs: [0, 1],
  };
  return {
    evalSteps: [0, 30],
    lionw: {
      ...run,
      metricSteps: [30],
      metrics: {
        "l2_norm/grad/lionw/dense/kernel": [0.5],
        "cosine/update_grad/lionw/dense/kernel": [0.2],
      },
      gradNorm: [1.5],
    },
    adam: run,
  };
}

/** The symbols Vega drew in the chart's panels (legends draw theirs elsewhere). */
function panelPoints(svg: string): number {
  return (svg.match(/class="mark-symbol role-mark [^"]*marks"[^>]*>(<path[^>]*>)+/g) ?? [])
    .reduce((n, group) => n + (group.match(/<path/g)?.length ?? 0), 0);
}

Deno.test("the metric panels show a point where a series has one value (the page's first evaluation)", async () => {
  const spec = metricsSpec(firstEvaluation());
  assert.equal(panelPoints(await toSvg(spec)), 2, "one point per series");
  // a line alone draws nothing for one point: what the panels showed before
  const lineOnly = { ...spec, spec: { ...(spec as { spec: object }).spec, mark: "line" } };
  assert.equal(panelPoints(await toSvg(lineOnly as typeof spec)), 0);
});
