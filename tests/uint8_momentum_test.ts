/**
 * `momentumDtype: "uint8"`: every CPU engine steps bitsandbytes' 8-bit rule
 * (with this library's decay) bit for bit, against the fixtures from its
 * pure-PyTorch path and against a scalar reference written here, on any
 * worker count; small tensors keep float32; state dicts cross types; the
 * store holds about 9 bytes a parameter; what cannot hold 8-bit moments refuses.
 */

import assert from "node:assert/strict";
import {
  type Collective,
  decodeCheckpoint,
  DecoupledLionW,
  type DecoupledLionWOptions,
  encodeCheckpoint,
  LocalCollective,
  ParameterStore,
  type ParameterStoreOptions,
} from "../mod.ts";
import { DYNAMIC_MAP_MIDPOINTS } from "../src/store/dynamic_map.ts";
import { decodeSafetensors, encodeSafetensors, type TensorToWrite } from "../src/io/safetensors.ts";
import { bfloat16Bits, fmaF32, fromBfloat16, signF32 } from "../src/_internal/float32.ts";
import { parameterSlots } from "../src/store/slots.ts";
import type { Parameter } from "../src/store/parameter.ts";
import { assertBitsEqual, decodeBytes, decodeF32, uint8Fixtures } from "./_fixtures.ts";
import { ENGINES } from "./_reference_case.ts";
import { constants, ReferenceTensor } from "./_uint8_reference.ts";
import { inProcessRanks } from "./_in_process_ranks.ts";
import { seededValues } from "./_util.ts";

const UINT8 = { momentumDtype: "uint8", logger: null } as const;

const FIXTURES = uint8Fixtures;

/**
 * A tensor's codes and scales as its slot lays them out, read here on their
 * own: block `b` is 256 code bytes from word `65·b`, then its absmax.
 */
function rawMoments(param: Parameter): { codes: Uint8Array; absmax: Float32Array } {
  const slot = parameterSlots(param).expAvgView;
  const blocks = Math.ceil(param.size / 256);
  const bytes = new Uint8Array(slot.buffer, slot.byteOffset, blocks * 260);
  const words = new Float32Array(slot.buffer, slot.byteOffset, blocks * 65);
  const codes = new Uint8Array(param.size);
  for (let i = 0; i < param.size; i++) codes[i] = bytes[260 * Math.floor(i / 256) + (i % 256)]!;
  return { codes, absmax: Float32Array.from({ length: blocks }, (_, b) => words[65 * b + 64]!) };
}

const STORES = [
  { name: "float32 store", options: {} },
  { name: "uint8 store", options: { momentumDtype: "uint8" } as const },
];

for (const engine of ENGINES) {
  Deno.test(`8-bit moments equal bitsandbytes' rule in torch ops, bit for bit (${engine.name})`, async (t) => {
    for (const store of STORES) {
      for (const c of FIXTURES.cases) {
        await t.step(`${store.name}: ${c.name}`, async () => {
          const w = new ParameterStore(store.options).add("w", [c.n], decodeF32(c.p0));
          // a scale of -0.5: maximize, and gradients halved (exact in float32)
          const maximize = c.gradScale < 0;
          const opt = new DecoupledLionW([w], {
            ...engine.options,
            ...UINT8,
            lr: c.lr,
            betas: [c.beta1, c.beta2],
            weightDecay: c.weightDecay,
            maximize,
          });
          try {
            for (const [t, grad] of c.grads.entries()) {
              w.grad = decodeF32(grad).map((g) => g * Math.abs(c.gradScale));
              await opt.step({ metrics: t % 2 === 1 }); // metrics must not change the update
              assertBitsEqual(w.data, decodeF32(c.params[t]!), `step ${t}: parameters`);
              const raw = rawMoments(w);
              assert.deepEqual(raw.codes, decodeBytes(c.codes[t]!), `step ${t}: codes`);
              assertBitsEqual(raw.absmax, decodeF32(c.absmax[t]!), `step ${t}: absmax`);
            }
          } finally {
            await opt.close();
          }
        });
      }
    }
  });
}

// a tensor of three step blocks (the last with an 8-bit tail), one of exactly 4,096,
// and two float32 ones (4,095 and 100 elements) in a second group
const SIZES = [40_000, 4096, 4095, 100];
const GROUPS = [
  { lr: 1e-3, betas: [0.9, 0.99] as [number, number], weightDecay: 0.1, sizes: [0, 1] },
  { lr: 3e-3, betas: [0.95, 0.98] as [number, number], weightDecay: 0, sizes: [2, 3] },
];

async function trainAgainstReference(
  options: DecoupledLionWOptions,
  cautious: boolean,
  storeOptions: ParameterStoreOptions = { momentumDtype: "uint8" },
) {
  const store = new ParameterStore(storeOptions);
  const params = SIZES.map((n, i) => store.add(`t${i}`, [n], seededValues(n, 10 + i, 0.5)));
  const reference = params.map((p) => new ReferenceTensor(p.data));
  const opt = new DecoupledLionW(
    GROUPS.map(({ sizes, ...g }) => ({ params: sizes.map((i) => params[i]!), ...g, cautious })),
    { ...options, ...UINT8 },
  );
  try {
    for (let step = 0; step < 4; step++) {
      for (const [i, param] of params.entries()) {
        // a gradient that grows: blocks' scales change from step to step
        const g = seededValues(param.size, 100 * step + i, 0.01 * (step + 1));
        param.grad = g;
        const group = GROUPS.find((x) => x.sizes.includes(i))!;
        reference[i]!.step(g, constants(group.lr, group.betas, group.weightDecay), cautious);
      }
      await opt.step({ metrics: step === 3 });
      for (const [i, param] of params.entries()) {
        assertBitsEqual(param.data, reference[i]!.p, `step ${step} ${param.name}: parameters`);
        assertBitsEqual(
          opt.state(param)!.expAvg,
          reference[i]!.moments(),
          `step ${step} ${param.name}: exp_avg`,
        );
      }
    }
    return opt.getMetrics();
  } finally {
    await opt.close();
  }
}

Deno.test("8-bit moments on tensors cut across workers, with float32 ones for small tensors, equal the scalar reference", async (t) => {
  const metrics: { backend: string; metrics: Record<string, number> }[] = [];
  for (const engine of ENGINES) {
    await t.step(engine.name, async () => {
      const got = await trainAgainstReference(engine.options, false);
      metrics.push({ backend: engine.options.backend!, metrics: got });
    });
  }
  await t.step("in a float32 store (js inline, wasm 3 workers)", async () => {
    for (const engine of [ENGINES[0]!, ENGINES[5]!]) {
      const got = await trainAgainstReference(engine.options, false, {});
      metrics.push({ backend: engine.options.backend!, metrics: got });
    }
  });
  await t.step(
    "metrics: the 8-bit tensors' the same on every js engine, all within 1e-5 on wasm",
    () => {
      const want = metrics[0]!.metrics;
      const keys = Object.keys(want);
      // six a tensor, and the step's own
      assert.equal(keys.filter((key) => /\/t\d$/.test(key)).length, 6 * SIZES.length);
      for (const { backend, metrics: got } of metrics.slice(1)) {
        assert.deepEqual(Object.keys(got), keys);
        for (const key of keys) {
          // t0, t1: 8-bit, summed in element order by the js kernel on any worker count; the
          // wasm kernel's float32 runs (either moment type) against the js kernel's float64 sums
          if (/\/t[01]$/.test(key) && backend === "js") assert.equal(got[key], want[key], key);
          else assert.ok(Math.abs(got[key]! - want[key]!) <= 1e-5 * Math.abs(want[key]!), key);
        }
      }
    },
  );
});

Deno.test("8-bit moments with cautious groups equal the scalar reference", async (t) => {
  for (const engine of ENGINES.filter((e) => ["js inline", "wasm 3 workers"].includes(e.name))) {
    await t.step(engine.name, () => trainAgainstReference(engine.options, true).then(() => {}));
  }
});

Deno.test("8-bit metrics read the stored (dequantized) moments and bitsandbytes' direction", async () => {
  const store = new ParameterStore();
  const w = store.add("w", [5000], seededValues(5000, 3, 0.5));
  const opt = new DecoupledLionW([w], {
    ...UINT8,
    lr: 1e-2,
    weightDecay: 0.1,
    backend: "js",
    workers: 0,
  });
  const g = seededValues(5000, 4, 0.1);
  for (let step = 0; step < 2; step++) {
    w.grad = g;
    await opt.step({ metrics: true });
  }
  const m = opt.state(w)!.expAvg;
  const k = constants(1e-2, [0.9, 0.99], 0.1);
  let [mm, mg, uu, ug, gg] = [0, 0, 0, 0, 0];
  for (let i = 0; i < w.size; i++) {
    const direction = Math.fround(
      Math.fround(m[i]! * k.beta1) + Math.fround(g[i]! * k.directionWeight),
    );
    const u = Math.fround(k.lr * signF32(direction) + Math.fround(-0.1) * w.data[i]!);
    [mm, mg, uu, ug, gg] = [
      mm + m[i]! ** 2,
      mg + m[i]! * g[i]!,
      uu + u * u,
      ug + u * g[i]!,
      gg + g[i]! ** 2,
    ];
  }
  const metrics = opt.getMetrics();
  const close = (actual: number | undefined, expected: number, what: string) =>
    assert.ok(
      Math.abs(actual! - expected) <= 1e-12 * Math.abs(expected),
      `${what}: ${actual} vs ${expected}`,
    );
  close(metrics["l2_norm/moment/w"], Math.sqrt(mm), "moment norm");
  close(metrics["l2_norm/update/w"], Math.sqrt(uu), "update norm");
  close(metrics["cosine/moment_grad/w"], mg / Math.sqrt(mm) / Math.sqrt(gg), "moment·grad");
  close(metrics["cosine/update_grad/w"], ug / Math.sqrt(uu) / Math.sqrt(gg), "update·grad");
  await opt.close();
});

Deno.test("8-bit state reads dequantized, and state dicts load across moment types", async (t) => {
  const store = new ParameterStore();
  const w = store.add("w", [4396], seededValues(4396, 5, 0.5));
  const small = store.add("b", [10], seededValues(10, 6, 0.5));
  const uint8 = new DecoupledLionW([w, small], { ...UINT8, backend: "js", workers: 0 });
  w.grad = seededValues(4396, 7, 0.1);
  small.grad = seededValues(10, 8, 0.1);
  await uint8.step();
  const dict = uint8.stateDict();
  await t.step(
    "an 8-bit dict loads into a float32 optimizer as its dequantized values",
    async () => {
      const other = new ParameterStore();
      const [w2, b2] = [other.add("w", [4396]), other.add("b", [10])];
      const float32 = new DecoupledLionW([w2, b2], { logger: null, backend: "js", workers: 0 });
      float32.loadStateDict(dict);
      assertBitsEqual(float32.state(w2)!.expAvg, dict.state.w!.expAvg, "w");
      assertBitsEqual(float32.state(b2)!.expAvg, dict.state.b!.expAvg, "b");
      await float32.close();
    },
  );
  await t.step("a float32 dict loads into an 8-bit optimizer quantized, block by block", () => {
    const values = seededValues(4396, 9, 0.02);
    uint8.loadStateDict({ ...dict, state: { ...dict.state, w: { expAvg: values } } });
    const expected = new ReferenceTensor(new Float32Array(4396));
    expected.quantize(values);
    assertBitsEqual(uint8.state(w)!.expAvg, expected.moments(), "w");
    assert.deepEqual(rawMoments(w).codes, expected.codes);
  });
  await uint8.close();
});

Deno.test("a non-finite gradient never reaches the quantizer: 'skip' leaves state and parameters", async () => {
  const w = new ParameterStore().add("w", [4096], seededValues(4096, 1, 0.5));
  const opt = new DecoupledLionW([w], { ...UINT8, nonFinite: "skip", backend: "wasm", workers: 2 });
  w.grad = seededValues(4096, 2, 0.1);
  await opt.step();
  const [data, state] = [w.data.slice(), opt.state(w)!.expAvg.slice()];
  const g = seededValues(4096, 3, 0.1);
  g[4000] = NaN;
  w.grad = g;
  await opt.step();
  assertBitsEqual(w.data, data, "parameters");
  assertBitsEqual(opt.state(w)!.expAvg, state, "exp_avg");
  await opt.close();
});

Deno.test("8-bit moments are refused where they cannot be kept, naming the option", async (t) => {
  const w = new ParameterStore().add("w", [4096]);
  const refused: [string, DecoupledLionWOptions, RegExp][] = [
    [
      "the gpujs backend",
      { backend: "gpujs" },
      /'momentumDtype' "uint8" runs on the CPU kernels \("wasm" or "js"\)/,
    ],
    [
      "sharded state",
      { collective: new LocalCollective(), shardState: true },
      /'shardState' is true/,
    ],
    [
      "the sign vote",
      { collective: new LocalCollective(), exchange: "sign-vote" },
      /"sign-vote" training/,
    ],
    ["nonFinite 'ignore'", { nonFinite: "ignore" }, /'nonFinite' must be "error" or "skip"/],
  ];
  for (const [name, options, message] of refused) {
    await t.step(name, () => {
      assert.throws(() => new DecoupledLionW([w], { ...UINT8, ...options }), message);
    });
  }
  await t.step("stores whose slots do not fit", () => {
    const bf16 = new ParameterStore({ momentumDtype: "bfloat16" }).add("w", [4096]);
    assert.throws(
      () => new DecoupledLionW([bf16], UINT8),
      /bfloat16-sized.*must be "bfloat16", current value is "uint8"/,
    );
    const u8 = new ParameterStore({ momentumDtype: "uint8" }).add("w", [4096]);
    assert.throws(
      () => new DecoupledLionW([u8], { logger: null, momentumDtype: "float32" }),
      /uint8-sized/,
    );
    const opt = new DecoupledLionW([u8], { logger: null });
    assert.equal(opt.momentumDtype, "uint8"); // the store's type is the default
    return opt.close();
  });
});

Deno.test("a uint8 store holds 1.016 bytes of exp_avg a parameter (9.02 in all); small tensors keep float32's", () => {
  const n = 1 << 20;
  const [uint8, float32] = [
    new ParameterStore({ momentumDtype: "uint8", shared: false }),
    new ParameterStore({ shared: false }),
  ];
  uint8.add("big", [n]);
  float32.add("big", [n]);
  // the stores differ in exp_avg alone: 4 bytes and the regions' skew (66,880 bytes)
  // against 260 a 256 and a kilobyte of slack
  const saved = (float32.byteLength - uint8.byteLength) / n;
  assert.equal(saved, 4 - 260 / 256 + (66_880 - 1024) / n);
  // tensors under 4,096 elements take what they take in a float32 store
  const small = [
    new ParameterStore({ momentumDtype: "uint8", shared: false }),
    new ParameterStore({ shared: false }),
  ];
  for (const store of small) for (let i = 0; i < 64; i++) store.add(`b${i}`, [1024 + i]);
  assert.equal(small[0]!.byteLength, small[1]!.byteLength);
});

Deno.test("an 8-bit checkpoint holds U8 codes, F32 scales and the codebook, and loads into any moment type", async (t) => {
  const store = new ParameterStore();
  const [w, b] = [store.add("w", [4396], seededValues(4396, 1)), store.add("b", [10])];
  const opt = new DecoupledLionW([w, b], { ...UINT8, backend: "js", workers: 0 });
  w.grad = seededValues(4396, 2, 0.1);
  b.grad = seededValues(10, 3, 0.1);
  await opt.step();
  const bytes = await encodeCheckpoint(opt);
  const { tensors } = decodeSafetensors(bytes);
  await t.step("the tensors", () => {
    const describe = (name: string) => {
      const tensor = tensors.get(name)!;
      return [tensor.dtype, [...tensor.shape]];
    };
    assert.deepEqual(describe("exp_avg/w"), ["U8", [4396]]);
    assert.deepEqual(describe("exp_avg_absmax/w"), ["F32", [18]]);
    assert.deepEqual(describe("exp_avg_qmap"), ["F32", [256]]);
    assert.deepEqual(describe("exp_avg/b"), ["F32", [10]]); // under 4,096 elements: float32
    assert.deepEqual(tensors.get("exp_avg/w")!.bytes, rawMoments(w).codes);
  });
  const fresh = (options: DecoupledLionWOptions) => {
    const other = new ParameterStore();
    const params = [other.add("w", [4396]), other.add("b", [10])];
    return {
      params,
      opt: new DecoupledLionW(params, { logger: null, backend: "js", workers: 0, ...options }),
    };
  };
  await t.step("into an 8-bit optimizer: the codes as they were", async () => {
    const { params, opt: resumed } = fresh(UINT8);
    await decodeCheckpoint(resumed, bytes);
    assert.deepEqual(rawMoments(params[0]!), rawMoments(w));
    assert.deepEqual(resumed.stateDict().state, opt.stateDict().state);
    await resumed.close();
  });
  await t.step("into a float32 optimizer: dequantized", async () => {
    const { params, opt: float32 } = fresh({});
    await decodeCheckpoint(float32, bytes);
    assertBitsEqual(float32.state(params[0]!)!.expAvg, opt.state(w)!.expAvg, "w");
    // and a float32 checkpoint into an 8-bit optimizer: quantized, block by block
    float32.loadStateDict({
      ...float32.stateDict(),
      state: { w: { expAvg: seededValues(4396, 4, 0.02) } },
    });
    const { params: again, opt: uint8 } = fresh(UINT8);
    await decodeCheckpoint(uint8, await encodeCheckpoint(float32));
    const expected = new ReferenceTensor(new Float32Array(4396));
    const values = seededValues(4396, 4, 0.02);
    expected.quantize(values);
    assert.deepEqual(rawMoments(again[0]!), { codes: expected.codes, absmax: expected.absmax });
    await Promise.all([float32.close(), uint8.close()]);
  });
  await t.step(
    "codes without their scales, or with a negative scale, are refused and change nothing",
    async () => {
      const { params, opt: target } = fresh(UINT8);
      const { lionw_sha256: _, ...metadata } = decodeSafetensors(bytes).metadata;
      const rewritten = (edit: (name: string, data: Float32Array) => boolean) =>
        encodeSafetensors(
          [...tensors].flatMap(([name, tensor]): TensorToWrite[] => {
            if (tensor.dtype === "U8") {
              return [{
                name,
                shape: tensor.shape,
                dtype: "U8" as const,
                data: tensor.bytes.slice(),
              }];
            }
            const data = new Float32Array(tensor.bytes.slice().buffer);
            return edit(name, data) ? [{ name, shape: tensor.shape, data }] : [];
          }),
          metadata,
        );
      const without = rewritten((name) => name !== "exp_avg_absmax/w");
      await assert.rejects(
        decodeCheckpoint(target, without),
        /comes without its scales \("exp_avg_absmax\/w"\)/,
      );
      const negative = rewritten((
        name,
        data,
      ) => (name === "exp_avg_absmax/w" && (data[3] = -1), true));
      await assert.rejects(
        decodeCheckpoint(target, negative),
        /'state\.w\.quantized\.absmax\[3\]' must be finite and >= 0/,
      );
      assert.equal(target.state(params[0]!), undefined);
      await target.close();
    },
  );
  await opt.close();
});

Deno.test("8-bit moments across ranks (data parallel, 2 in-process ranks): every rank steps the averaged gradient as one process does", async (t) => {
  const sizes = [40_000, 5000, 100];
  const build = (collective?: Collective, exchange: "float32" | "bfloat16" = "float32") => {
    const store = new ParameterStore({ momentumDtype: "uint8" });
    const params = sizes.map((n, i) => store.add(`p${i}`, [n], seededValues(n, i + 1)));
    const opt = new DecoupledLionW(params, {
      ...UINT8,
      weightDecay: 0.1,
      workers: 0,
      ...(collective ? { collective, exchange } : {}),
    });
    return { params, opt };
  };
  // what each exchange averages: float32 gradients, or bfloat16-rounded ones, summed in rank order
  const sent = {
    float32: (g: number) => g,
    bfloat16: (g: number) => fromBfloat16(bfloat16Bits(g)),
  };
  for (const exchange of ["float32", "bfloat16"] as const) {
    await t.step(`exchange "${exchange}"`, async () => {
      const ranks = inProcessRanks(2).map((c) => build(c, exchange));
      const single = build();
      for (let s = 0; s < 3; s++) {
        const grads = [0, 1].map((r) =>
          sizes.map((n, i) => seededValues(n, 100 * s + 10 * i + r, 0.1))
        );
        await Promise.all(ranks.map(({ params, opt }, r) => {
          params.forEach((p, i) => (p.grad = grads[r]![i]!));
          return opt.step({ metrics: true });
        }));
        // the sum in rank order, times 1/2
        const of = sent[exchange];
        single.params.forEach((p, i) => {
          p.grad = grads[0]![i]!.map((g, k) =>
            Math.fround(Math.fround(of(g) + of(grads[1]![i]![k]!)) * 0.5)
          );
        });
        await single.opt.step({ metrics: true });
        for (const [r, { params, opt }] of ranks.entries()) {
          params.forEach((p, i) => {
            assertBitsEqual(p.data, single.params[i]!.data, `rank ${r}, step ${s}, p${i}`);
            assert.deepEqual(opt.stateDict().state[p.name], single.opt.stateDict().state[p.name]);
          });
          assert.deepEqual(opt.getMetrics(), single.opt.getMetrics());
        }
      }
      for (const { opt } of [...ranks, single]) await opt.close();
    });
  }
});

/**
 * A moment that float64 rounds twice: `mw·g = 2^-24·(1 + s·2^-47)`, `0 < s < 2^18` (a factor
 * search), so beside a moment of 1 the float64 sum rounds onto 1 + 2^-24, the midpoint, whose
 * float32 rounding (to even: 1) is not the fma's (1 + 2^-23). Every moment of code 255 (the map's
 * 1) times `absmax` decays to exactly 1 with `beta2`.
 */
function twiceRoundedMoment(): { mw: number; g: number; beta2: number; absmax: number } {
  let a = 2 ** 23 + 1;
  let b = Math.ceil(2 ** 47 / a);
  while (a * b - 2 ** 47 >= 2 ** 18 || a * b === 2 ** 47) {
    a += 2;
    b = Math.ceil(2 ** 47 / a);
  }
  const mw = a * 2 ** -31;
  const beta2 = 1 - mw;
  const near = new Float32Array([1 / beta2]);
  const nearBits = new Int32Array(near.buffer);
  while (Math.fround(near[0]! * Math.fround(beta2)) !== 1) {
    nearBits[0]! += Math.fround(near[0]! * Math.fround(beta2)) < 1 ? 1 : -1;
  }
  return { mw, g: b * 2 ** -40, beta2, absmax: near[0]! };
}

Deno.test("a moment whose float64 sum lies exactly on a float32 midpoint is rounded once, on every engine", async () => {
  const { mw, g, beta2, absmax } = twiceRoundedMoment();
  assert.equal(Math.fround(absmax * Math.fround(beta2)), 1, "s·β2 is 1");
  assert.equal(fmaF32(Math.fround(mw), Math.fround(g), 1), 1 + 2 ** -23);
  assert.equal(
    Math.fround(Math.fround(mw) * Math.fround(g) + 1),
    1,
    "float64 then float32 rounds twice",
  );
  const results = [];
  for (const engine of ENGINES.slice(0, 3)) {
    const w = new ParameterStore().add("w", [4196]); // 16 blocks and a tail of 100
    const opt = new DecoupledLionW([w], { ...UINT8, ...engine.options, betas: [0.9, beta2] });
    const codes = new Uint8Array(4196).fill(255);
    const scales = new Float32Array(17).fill(absmax);
    opt.loadStateDict({
      ...opt.stateDict(),
      state: { w: { expAvg: new Float32Array(4196), quantized: { codes, absmax: scales } } },
    });
    const grad = new Float32Array(4196);
    grad[5] = g; // in a full block
    grad[4100] = g; // in the tail
    w.grad = grad;
    await opt.step();
    results.push(opt.stateDict().state["w"]!.quantized!);
    await opt.close();
  }
  // the block's largest moment is the rounded-once 1 + 2^-23: its absmax
  assert.equal(results[0]!.absmax[0], 1 + 2 ** -23);
  assert.equal(results[0]!.absmax[16], 1 + 2 ** -23);
  for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
});

Deno.test("a zero update direction leaves a −0 parameter −0 on every engine (torch's sign of ±0 is +0)", async () => {
  for (const engine of ENGINES.slice(0, 3)) {
    const w = new ParameterStore().add("w", [4096], new Float32Array(4096).fill(-0));
    const opt = new DecoupledLionW([w], { ...UINT8, ...engine.options, weightDecay: 0.1 });
    w.grad = new Float32Array(4096).fill(-0); // fresh state: the direction is −0·β1 + −0·(1 − β1) = −0
    await opt.step();
    assert.ok(w.data.every((x) => Object.is(x, -0)), engine.name);
    await opt.close();
  }
});

Deno.test("a moment rounded once lands on its own side of a midpoint when the block is quantized, on every engine", async () => {
  // as above, element 5's moment is 1 + 2^-23 rounded once, 1 rounded twice; element 9's is the
  // block's absmax A, with f32(1 / A) a midpoint M of the map: 1·(1/A) is M (the lower code),
  // (1 + 2^-23)·(1/A) lies above it (the upper one)
  const { mw, g: g5, beta2, absmax } = twiceRoundedMoment();
  // a midpoint M and a gradient g9 whose moment A = fma(mw, g9, 1) has f32(1 / A) = M
  let found: { g9: number; midpoint: number } | undefined;
  for (const midpoint of DYNAMIC_MAP_MIDPOINTS.filter((m) => m > 0.3 && m < 0.9)) {
    const start = Math.fround((1 / midpoint - 1) / mw);
    const probe = new Float32Array([start]);
    const probeBits = new Int32Array(probe.buffer);
    for (let step = 0; step < 4096 && found === undefined; step++) {
      probeBits[0] = new Int32Array(new Float32Array([start]).buffer)[0]! +
        (step >> 1) * (step % 2 ? 1 : -1);
      const moment = fmaF32(mw, probe[0]!, 1);
      if (Math.fround(1 / moment) === midpoint) found = { g9: probe[0]!, midpoint };
    }
    if (found !== undefined) break;
  }
  assert.ok(found, "a gradient that puts the scale's reciprocal on a midpoint");
  const codes = [];
  for (const engine of ENGINES.slice(0, 3)) {
    const w = new ParameterStore().add("w", [4096]);
    const opt = new DecoupledLionW([w], { ...UINT8, ...engine.options, betas: [0.9, beta2] });
    opt.loadStateDict({
      ...opt.stateDict(),
      state: {
        w: {
          expAvg: new Float32Array(4096),
          quantized: {
            codes: new Uint8Array(4096).fill(255),
            absmax: new Float32Array(16).fill(absmax),
          },
        },
      },
    });
    const grad = new Float32Array(4096);
    grad[5] = g5;
    grad[9] = found!.g9;
    w.grad = grad;
    await opt.step();
    const q = opt.stateDict().state["w"]!.quantized!;
    codes.push([q.codes[5], q.codes[9], q.codes[6]]);
    await opt.close();
  }
  const midpointIndex = DYNAMIC_MAP_MIDPOINTS.indexOf(found!.midpoint);
  // element 5 above the midpoint: the upper code; element 6 (moment 1) on it: the lower one
  assert.deepEqual(codes[0], [midpointIndex + 1, 255, midpointIndex]);
  for (const c of codes.slice(1)) assert.deepEqual(c, codes[0]);
});
