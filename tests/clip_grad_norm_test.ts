import assert from "node:assert/strict";
import { clipGradNorm, DecoupledLionW, type Parameter, ParameterStore } from "../mod.ts";

/** a, b with gradients and c without, as in the torch run quoted below. */
function params(): Parameter[] {
  const store = new ParameterStore();
  const [a, b, c] = [store.add("a", [3]), store.add("b", [2, 2]), store.add("c", [2])];
  a!.grad = [0.5, -1.5, 2];
  b!.grad = [0.1, 0.2, 0.3, -0.4];
  return [a!, b!, c!];
}

// torch 1.13: clip_grad_norm_([a, b, c], max_norm, norm_type) with the same gradients
const TORCH = {
  l2: {
    norm: 2.6076810359954834,
    a: [0.19174116849899292, -0.5752235054969788, 0.7669646739959717],
    b: [0.0383482351899147, 0.0766964703798294, 0.11504470556974411, -0.1533929407596588],
  },
  inf: {
    norm: 2,
    a: [0.12499994039535522, -0.3749998211860657, 0.4999997615814209],
    b: [0.024999989196658134, 0.04999997839331627, 0.07499996572732925, -0.09999995678663254],
  },
};

Deno.test("clipGradNorm() matches torch's clip_grad_norm_ bit for bit (L2 and infinity norms)", () => {
  const [a, b, c] = params();
  assert.equal(clipGradNorm([a!, b!, c!], 1), TORCH.l2.norm);
  assert.deepEqual([...a!.grad!], TORCH.l2.a);
  assert.deepEqual([...b!.grad!], TORCH.l2.b);
  assert.equal(c!.grad, null); // no gradient: left out, not created
  const [d, e] = params();
  assert.equal(clipGradNorm([d!, e!], 0.5, { normType: Infinity }), TORCH.inf.norm);
  assert.deepEqual([...d!.grad!], TORCH.inf.a);
  assert.deepEqual([...e!.grad!], TORCH.inf.b);
});

Deno.test("clipGradNorm() leaves gradients under the threshold and measures without any", () => {
  const [a, b] = params();
  assert.equal(clipGradNorm([a!, b!], 10), TORCH.l2.norm);
  assert.deepEqual([...a!.grad!], [0.5, -1.5, 2]);
  assert.equal(clipGradNorm([params()[2]!], 1), 0);
});

Deno.test("clipGradNorm() refuses bad arguments, and a non-finite norm when asked, changing nothing", () => {
  const [a] = params();
  for (const maxNorm of [0, -1, NaN]) {
    assert.throws(() => clipGradNorm([a!], maxNorm), {
      name: "RangeError",
      message:
        `Cannot clip gradients as 'maxNorm' must be a number > 0 (Infinity: no clipping): current value is ${maxNorm}`,
    });
  }
  assert.throws(() => clipGradNorm([a!], 1, { normType: 1 as 2 }), {
    name: "RangeError",
    message: "Cannot clip gradients as 'normType' must be 2 or Infinity: current value is 1",
  });
  a!.grad = [1, NaN, 1];
  assert.throws(() => clipGradNorm([a!], 1, { errorIfNonfinite: true }), {
    name: "RangeError",
    message:
      "Cannot clip gradients as the total norm of order 2 is NaN: the gradients are unchanged",
  });
  assert.deepEqual([...a!.grad!], [1, NaN, 1]);
  // torch's default: the NaN coefficient reaches every gradient
  assert.ok(Number.isNaN(clipGradNorm([a!], 1)));
  assert.ok(a!.grad!.every(Number.isNaN));
});

Deno.test("clipGradNorm() then a plain step equals the optimizer's fused maxGradNorm, gradients aside", async () => {
  const [a, b] = params();
  const [c, d] = params();
  await using plain = new DecoupledLionW([a!, b!], { lr: 0.1, backend: "js", workers: 0 });
  await using fused = new DecoupledLionW([c!, d!], {
    lr: 0.1,
    backend: "js",
    workers: 0,
    maxGradNorm: 1,
  });
  for (let step = 0; step < 3; step++) {
    for (const p of [a, b, c, d]) {
      p!.grad = p!.name === "a" ? [0.5, -1.5, 2 - step] : [0.1, 0.2, 0.3, -0.4 * step];
    }
    const norm = clipGradNorm([a!, b!], 1);
    await plain.step({ metrics: true });
    await fused.step({ metrics: true });
    assert.equal(fused.lastStep.gradNorm, norm);
    assert.deepEqual([...c!.data, ...d!.data], [...a!.data, ...b!.data]);
    assert.deepEqual(fused.state(c!)!.expAvg, plain.state(a!)!.expAvg);
    assert.deepEqual(fused.getMetrics(), plain.getMetrics()); // metrics see the clipped gradient
    assert.deepEqual([...c!.grad!], [0.5, -1.5, 2 - step]); // fused: not rewritten
  }
});

Deno.test("maxGradNorm is checked at construction and per step; Infinity turns it off for one step", async () => {
  const [a] = params();
  for (const maxGradNorm of [0, -2, NaN]) {
    assert.throws(() => new DecoupledLionW([a!], { maxGradNorm }), {
      name: "RangeError",
      message:
        `Cannot create optimizer as 'maxGradNorm' must be a number > 0 (Infinity: no clipping): current value is ${maxGradNorm}`,
    });
  }
  await using opt = new DecoupledLionW([a!], { maxGradNorm: 1, backend: "js", workers: 0 });
  await assert.rejects(opt.step({ maxGradNorm: -1 }), {
    name: "RangeError",
    message:
      "Cannot step as 'maxGradNorm' must be a number > 0 (Infinity: no clipping): current value is -1",
  });
  assert.equal(opt.iterations, 0);
  await opt.step({ maxGradNorm: Infinity });
  assert.equal(opt.lastStep.gradScale, 1);
  assert.equal(opt.lastStep.gradNorm, null); // no clipping this step: no squares summed
  await opt.step();
  assert.ok(opt.lastStep.gradScale < 0.4);
  assert.equal(opt.lastStep.gradNorm, Math.fround(Math.sqrt(0.25 + 2.25 + 4)));
  await opt.step({ maxGradNorm: 10 });
  assert.equal(opt.lastStep.gradScale, 1);
});

Deno.test("clipGradNorm() refuses unknown keys and wrong types, changing nothing", () => {
  const ps = params();
  const before = ps.map((p) => p.grad?.slice());
  assert.throws(() => clipGradNorm(ps, 1, { norm_type: Infinity } as never), {
    name: "TypeError",
    message:
      `Cannot clip gradients as 'options' has an unknown key "norm_type": did you mean "normType"? (known: normType, errorIfNonfinite)`,
  });
  assert.throws(() => clipGradNorm(ps, 1, { errorIfNonfinite: "yes" } as never), {
    name: "TypeError",
    message:
      `Cannot clip gradients as 'errorIfNonfinite' must be a boolean: current value is "yes"`,
  });
  assert.deepEqual(ps.map((p) => p.grad?.slice()), before);
});
