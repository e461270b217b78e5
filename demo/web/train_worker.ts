/**
 * The demo page's training worker: runs the demo's trainer (the same code
 * as `deno task demo`) and posts its history after each evaluation. It runs
 * in a worker because tfjs steps synchronously and LionW's workers need a
 * thread that may block in `Atomics.wait`, which a page's main thread may not.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgl";
import "@tensorflow/tfjs-backend-webgpu";
import { demoConfig, DemoTrainer } from "../trainer.ts";
import type { StartMessage, TrainerMessage } from "./messages.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<StartMessage>) => void) | null;
  postMessage(message: TrainerMessage): void;
};

async function train(start: StartMessage): Promise<void> {
  tf.env().set("PROD", true);
  if (!(await tf.setBackend(start.backend).catch(() => false))) {
    throw new Error(`tfjs could not start its ${start.backend} backend in this browser`);
  }
  const names: string[] = await (await fetch("names.json")).json();
  const config = demoConfig({
    steps: start.steps,
    evalEvery: start.evalEvery,
    seed: start.seed,
    workers: start.workers,
  });
  // the bundled shard worker: the library's own module is not in the bundle
  const trainer = await DemoTrainer.create(names, config, {
    workerUrl: new URL("shard_worker.js", location.href),
  });
  const post = () =>
    scope.postMessage({
      type: "progress",
      step: trainer.step,
      history: trainer.history,
      lionwWorkers: trainer.lionw.optimizer.workers,
      sharedMemory: trainer.lionw.store?.shared ?? false,
      backend: trainer.lionw.optimizer.backend,
      tfjsBackend: tf.getBackend(),
    });
  const t0 = performance.now();
  try {
    await trainer.evaluate();
    post();
    while (trainer.step < config.steps) {
      if ((await trainer.advance(config.steps)).evaluated) {
        post();
        await new Promise((resolve) => setTimeout(resolve, 0)); // let the page's messages in
      }
    }
    scope.postMessage({
      type: "done",
      names: trainer.sampleNames(10),
      seconds: (performance.now() - t0) / 1000,
    });
  } finally {
    await trainer.close();
  }
}

scope.onmessage = (event) => {
  scope.onmessage = null;
  train(event.data).catch((error) =>
    scope.postMessage({ type: "error", message: `${error?.stack ?? error}` })
  );
};
