import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-webgpu";
import * as tf from "@tensorflow/tfjs-core";
import { DEVICE_CHECKS } from "./_device_checks.ts";

tf.env().set("PROD", true); // no "use tfjs-node" advice in the test log

// tfjs-backend-webgpu asks navigator.gpu for an adapter: where there is none, say so and skip
const adapter = await navigator.gpu?.requestAdapter();
if (adapter === null || adapter === undefined) {
  console.log(
    "tfjs webgpu checks skipped: no WebGPU adapter here (navigator.gpu.requestAdapter())",
  );
}

Deno.test({
  name:
    "the tfjs adapter on tfjs-backend-webgpu (Deno's WebGPU) steps on the device, as on the cpu backend",
  ignore: adapter === null || adapter === undefined,
  // reads from the device resolve between steps, as in training
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    for (const check of DEVICE_CHECKS) await t.step(check.name, () => check.run("webgpu"));
  },
});
