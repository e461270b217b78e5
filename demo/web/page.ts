/// <reference lib="dom" />
/**
 * The demo page: starts the training worker, draws the loss and LionW's
 * metrics live with the same Vega-Lite specs as `deno task demo`, and keeps
 * what it saw in `globalThis.demoState` (the browser test reads it).
 *
 * @module
 */

import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { lossSpec, metricsSpec } from "../plots.ts";
import type { DemoHistory } from "../trainer.ts";
import type { StartMessage, TrainerMessage } from "./messages.ts";

/** What the page saw, for people and for the browser test. */
export interface DemoState {
  crossOriginIsolated: boolean;
  step: number;
  history: DemoHistory | null;
  lionwWorkers: number;
  sharedMemory: boolean;
  backend: string;
  /** The tfjs backend that trained (`?backend=`, cpu by default). */
  tfjsBackend: string;
  names: Record<string, string[]> | null;
  done: boolean;
  error: string | null;
}

const state: DemoState = {
  crossOriginIsolated: self.crossOriginIsolated === true,
  step: 0,
  history: null,
  lionwWorkers: 0,
  sharedMemory: false,
  backend: "",
  tfjsBackend: "",
  names: null,
  done: false,
  error: null,
};
(globalThis as unknown as { demoState: DemoState }).demoState = state;

const params = new URLSearchParams(location.search);
const start: StartMessage = {
  steps: Number(params.get("steps") ?? 1500),
  evalEvery: Number(params.get("eval") ?? 100),
  seed: Number(params.get("seed") ?? 42),
  workers: Number(params.get("workers") ?? 2),
  backend: params.get("backend") ?? "cpu",
};

const status = document.getElementById("status")!;

async function draw(id: string, spec: TopLevelSpec): Promise<void> {
  const container = document.getElementById(id)!;
  container.replaceChildren();
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "svg", container });
  await view.runAsync();
}

if (!state.crossOriginIsolated) {
  status.textContent =
    "This page is not cross-origin isolated (no COOP/COEP headers): no SharedArrayBuffer, so the optimizer runs inline. Serve it with `deno task serve`.";
}

const worker = new Worker("train_worker.js", { type: "module" });
worker.onmessage = async ({ data }: MessageEvent<TrainerMessage>) => {
  if (data.type === "error") {
    state.error = data.message;
    status.textContent = `Failed: ${data.message}`;
    return;
  }
  if (data.type === "done") {
    state.names = data.names;
    state.done = true;
    status.textContent += ` Done in ${data.seconds.toFixed(1)} s.`;
    document.getElementById("names")!.innerHTML = Object.entries(data.names)
      .map(([run, names]) => `<p><b>${run}</b>: ${names.join(", ")}</p>`)
      .join("");
    return;
  }
  Object.assign(state, {
    step: data.step,
    history: data.history,
    lionwWorkers: data.lionwWorkers,
    sharedMemory: data.sharedMemory,
    backend: data.backend,
    tfjsBackend: data.tfjsBackend,
  });
  const last = (xs: number[]) => xs.at(-1)?.toFixed(3) ?? "-";
  status.textContent = `Step ${data.step}/${start.steps}: validation loss LionW ${
    last(data.history.lionw.valLoss)
  }, Adam ${last(data.history.adam.valLoss)} (tfjs ${data.tfjsBackend}; ${
    data.tfjsBackend === "cpu"
      ? `LionW: ${data.backend} kernel on ${data.lionwWorkers} workers, shared memory: ${data.sharedMemory}`
      : "LionW steps on the device"
  }).`;
  await draw("loss", lossSpec(data.history));
  if (data.history.lionw.metricSteps.length > 0) await draw("metrics", metricsSpec(data.history));
};
worker.postMessage(start);
