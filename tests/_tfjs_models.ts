/**
 * Helpers of the tfjs-layers save/load round trips: an IO handler that
 * keeps a saved model in memory, and the check that two models' weights
 * agree bit for bit.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";

/** An IO handler keeping the artifacts in memory: `artifacts` is the last save's. */
export function memorySink(): {
  handler: tf.io.IOHandler;
  readonly artifacts: tf.io.ModelArtifacts;
} {
  let saved: tf.io.ModelArtifacts | undefined;
  return {
    handler: tf.io.withSaveHandler((artifacts) => {
      saved = artifacts;
      return Promise.resolve({
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
      });
    }),
    get artifacts() {
      return saved!;
    },
  };
}

/** Asserts that two models' trainable weights hold the same values, bit for bit, in order. */
export function assertSameWeights(actual: tfl.LayersModel, expected: tfl.LayersModel): void {
  expected.trainableWeights.forEach((w, i) => {
    assert.deepEqual(
      Float32Array.from(actual.trainableWeights[i]!.read().dataSync()),
      Float32Array.from(w.read().dataSync()),
      w.name,
    );
  });
}
