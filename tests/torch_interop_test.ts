/**
 * Checkpoints across the language boundary, with PyTorch itself: torch
 * continues a run from our file, and we continue a run from a file torch
 * wrote (tests/interop/torch_checkpoint.py: the standard library, torch 1.13
 * and the project's own PyTorch Lion, bench/torch_lion.py, which CI holds
 * to the torch fixtures bit for bit). Both must equal an uninterrupted run
 * bit for bit.
 *
 * Needs Debian's python3-torch at /usr/bin/python3 (CI installs it); where
 * it is missing the tests are reported as ignored, and say why.
 */

import assert from "node:assert/strict";
import {
  decodeCheckpoint,
  DecoupledLionW,
  encodeCheckpoint,
  type Parameter,
  ParameterStore,
} from "../mod.ts";
import { encodeSafetensors } from "../src/io/safetensors.ts";
import { seededValues } from "./_util.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./interop/torch_checkpoint.py", import.meta.url).pathname;

function torchAvailable(): boolean {
  try {
    return new Deno.Command(PYTHON, { args: ["-c", "import torch"], stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}
const ignore = !torchAvailable();
if (ignore) {
  console.log(
    `torch_interop_test.ts: ignored, as ${PYTHON} cannot import torch (apt-get install -y python3-torch)`,
  );
}

/** A model: its tensors' shapes and the moment type. */
interface ModelKind {
  readonly shapes: Record<string, number[]>;
  readonly momentumDtype: "float32" | "uint8";
}

const FLOAT32: ModelKind = {
  shapes: { "fc.weight": [4, 6], "fc.bias": [6], "head.weight": [6, 3] },
  momentumDtype: "float32",
};
/** 8-bit moments: two tensors over 4,096 elements (one with a partial block), a float32 bias. */
const UINT8: ModelKind = {
  shapes: { "fc.weight": [70, 61], "fc.bias": [61], "head.weight": [61, 80] },
  momentumDtype: "uint8",
};

let SHAPES: Record<string, number[]> = FLOAT32.shapes;

/** Two groups, one maximizing, with weight decay; all on the wasm kernel. */
function model(kind: ModelKind = FLOAT32): { opt: DecoupledLionW; params: Parameter[] } {
  SHAPES = kind.shapes;
  const store = new ParameterStore();
  const params = Object.entries(SHAPES).map(([name, shape], i) =>
    store.add(name, shape, seededValues(shape.reduce((a, b) => a * b, 1), i + 1))
  );
  const opt = new DecoupledLionW(
    [
      { params: [params[0]!, params[1]!], weightDecay: 0.01 },
      { params: [params[2]!], lr: 3e-3, betas: [0.8, 0.95], maximize: true },
    ],
    { lr: 1e-2, backend: "wasm", workers: 0, logger: null, momentumDtype: kind.momentumDtype },
  );
  return { opt, params };
}

/** The gradients of step `step`; "fc.bias" has none at step 3. */
function gradsOf(step: number): Map<string, Float32Array | null> {
  return new Map(
    Object.entries(SHAPES).map(([name, shape], i) => [
      name,
      name === "fc.bias" && step === 3
        ? null
        : seededValues(shape.reduce((a, b) => a * b, 1), 100 * step + i, 0.3),
    ]),
  );
}

async function train(opt: DecoupledLionW, params: Parameter[], steps: number[]): Promise<void> {
  for (const step of steps) {
    const grads = gradsOf(step);
    for (const param of params) param.grad = grads.get(param.name)!;
    await opt.step();
  }
}

/** The steps' gradients in a safetensors file, as "<step>/<name>". */
function gradsFile(steps: number[]): Uint8Array {
  const tensors = steps.flatMap((step) =>
    [...gradsOf(step)].filter(([, grad]) => grad !== null).map(([name, grad]) => ({
      name: `${step}/${name}`,
      shape: SHAPES[name]!,
      data: grad!,
    }))
  );
  return encodeSafetensors(tensors, {});
}

/** Runs the torch script on a checkpoint and the gradients of `steps`; returns its checkpoint. */
async function continueInTorch(checkpoint: Uint8Array, steps: number[]): Promise<Uint8Array> {
  const folder = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${folder}/in.safetensors`, checkpoint);
    await Deno.writeFile(`${folder}/grads.safetensors`, gradsFile(steps));
    const result = await new Deno.Command(PYTHON, {
      args: [
        SCRIPT,
        `${folder}/in.safetensors`,
        `${folder}/grads.safetensors`,
        `${folder}/out.safetensors`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(result.success, new TextDecoder().decode(result.stderr));
    return await Deno.readFile(`${folder}/out.safetensors`);
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
}

function assertSameRun(a: DecoupledLionW, b: DecoupledLionW, what: string): void {
  const [x, y] = [a.stateDict(), b.stateDict()];
  assert.deepEqual(y.paramGroups, x.paramGroups, `${what}: groups`);
  assert.equal(y.iterations, x.iterations, `${what}: iterations`);
  assert.deepEqual(y.state, x.state, `${what}: moments`);
  const params = (opt: DecoupledLionW) =>
    opt.paramGroups.flatMap((g) => g.params.map((p) => p.data));
  assert.deepEqual(params(b), params(a), `${what}: parameters`);
}

Deno.test({
  name: "PyTorch continues a run from our checkpoint, bit for bit",
  ignore,
  fn: async () => {
    const whole = model();
    await train(whole.opt, whole.params, [0, 1, 2, 3, 4]);
    const ours = model();
    await train(ours.opt, ours.params, [0, 1]);
    const fromTorch = await continueInTorch(await encodeCheckpoint(ours.opt), [2, 3, 4]);
    const check = model();
    const metadata = await decodeCheckpoint(check.opt, fromTorch);
    assert.match(metadata.written_by!, /^torch 1\.13/);
    assertSameRun(whole.opt, check.opt, "torch's continuation");
    await Promise.all([whole.opt.close(), ours.opt.close(), check.opt.close()]);
  },
});

Deno.test({
  name: "we continue a run from a checkpoint PyTorch wrote, bit for bit",
  ignore,
  fn: async () => {
    const whole = model();
    await train(whole.opt, whole.params, [0, 1, 2, 3, 4]);
    const start = model(); // untrained: the checkpoint holds no moments yet
    const written = await continueInTorch(await encodeCheckpoint(start.opt), [0, 1, 2]);
    const resumed = model();
    await decodeCheckpoint(resumed.opt, written);
    await train(resumed.opt, resumed.params, [3, 4]);
    assertSameRun(whole.opt, resumed.opt, "our continuation");
    await Promise.all([whole.opt.close(), start.opt.close(), resumed.opt.close()]);
  },
});

Deno.test({
  name:
    "8-bit moments: PyTorch continues our run (U8 codes, scales, codebook), and we continue its, bit for bit",
  ignore,
  fn: async () => {
    const whole = model(UINT8);
    await train(whole.opt, whole.params, [0, 1, 2, 3, 4]);
    const ours = model(UINT8);
    await train(ours.opt, ours.params, [0, 1]);
    const fromTorch = await continueInTorch(await encodeCheckpoint(ours.opt), [2, 3]);
    const resumed = model(UINT8);
    await decodeCheckpoint(resumed.opt, fromTorch);
    assert.ok(resumed.opt.stateDict().state["fc.weight"]!.quantized, "loaded as codes");
    await train(resumed.opt, resumed.params, [4]);
    assertSameRun(whole.opt, resumed.opt, "torch's 8-bit continuation");
    await Promise.all([whole.opt.close(), ours.opt.close(), resumed.opt.close()]);
  },
});
