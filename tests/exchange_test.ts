// The exchanges of data-parallel training (`exchange`): the bfloat16 and
// sign-vote kernels against scalar references written here element by
// element, then whole optimizers on in-process ranks (no MPI) against one
// process stepping what the exchange defines, and the option rules.
import assert from "node:assert/strict";
import {
  type Collective,
  DecoupledLionW,
  type DecoupledLionWOptions,
  LocalCollective,
  type Parameter,
  ParameterStore,
} from "../mod.ts";
import { bfloat16Bits, fromBfloat16, lerpF32 } from "../src/_internal/float32.ts";
import { packBfloat16, sumBfloat16 } from "../src/distributed/bfloat16_exchange.ts";
import { applyVote, packUpdateSigns, voteWords } from "../src/distributed/sign_vote.ts";
import { BLOCKING_RUN_ELEMENTS } from "../src/distributed/sign_vote_step.ts";
import { BallotBox } from "../src/distributed/ballot_box.ts";
import {
  groupConstants,
  type KernelSegment,
  PARTIAL_COUNT,
  TALLY_SCRATCH_BYTES,
} from "../src/kernels/kernel.ts";
import { jsKernel } from "../src/kernels/js_kernel.ts";
import * as wasmModule from "../src/kernels/wasm_kernel.ts";
import { assertBitsEqual } from "./_fixtures.ts";
import { inProcessRanks } from "./_in_process_ranks.ts";
import { seededValues } from "./_util.ts";

/** One block over a whole arena laid out [data | grad | expAvg], `length` elements each. */
function arenaBlock(length: number): KernelSegment {
  return { data: 0, grad: length, expAvg: 2 * length, length, group: 0, block: 0 };
}

/** Values with exact zeros and a few repeats, so that signs tie and abstain. */
function coarse(count: number, seed: number): Float32Array {
  return seededValues(count, seed).map((x) => Math.round(x * 2) / 4);
}

/** The vote, element by element: each rank's sign of lerp(m, g, 1 − β1), summed; 0 where they tie. */
function scalarVote(ranks: { m: Float32Array; g: Float32Array }[], i: number, w: number): number {
  let tally = 0;
  for (const { m, g } of ranks) {
    const c = lerpF32(m[i]!, g[i]!, w);
    tally += c > 0 ? 1 : c < 0 ? -1 : 0; // NaN abstains
  }
  return Math.sign(tally);
}

Deno.test("sign-vote kernels: pack, exchange and vote equal the scalar vote bit for bit, ties and abstentions included", () => {
  for (const worldSize of [1, 2, 3, 4]) {
    const length = 1000; // not a multiple of 32: the last word is partial
    const k = groupConstants(0.01, 0.02, 0.9, 0.99, 0.1);
    const ranks = Array.from({ length: worldSize }, (_, r) => ({
      m: coarse(length, 10 + r),
      g: coarse(length, 20 + r),
    }));
    ranks[0]!.g[7] = NaN; // abstains
    const p0 = seededValues(length, 3);
    // one arena per rank: [data | grad | expAvg]
    const block = arenaBlock(length);
    const box = new BallotBox(voteWords(length), worldSize);
    const arenas = ranks.map(({ m, g }, r) => {
      const f32 = new Float32Array(3 * length);
      f32.set(p0, 0);
      f32.set(g, length);
      f32.set(m, 2 * length);
      const abstaining = packUpdateSigns(f32, block, k, box.signs, box.voting, r * box.stride);
      const expected = [...m.keys()].filter((i) =>
        !(lerpF32(m[i]!, g[i]!, k.directionWeight) !== 0 &&
          !Number.isNaN(lerpF32(m[i]!, g[i]!, k.directionWeight)))
      ).length;
      assert.equal(abstaining, expected, `rank ${r}: abstentions`);
      return f32;
    });
    box.tally(jsKernel, true);
    for (const [r, f32] of arenas.entries()) {
      const partials = new Float64Array(PARTIAL_COUNT);
      applyVote(f32, block, k, box.masks, 0, partials);
      const { m, g } = ranks[r]!;
      const sums = new Float64Array(PARTIAL_COUNT);
      for (let i = 0; i < length; i++) {
        const vote = scalarVote(ranks, i, k.directionWeight);
        const p = Math.fround(Math.fround(p0[i]! * k.decayMultiplier) - k.lr * vote);
        const mNew = lerpF32(m[i]!, g[i]!, k.momentWeight);
        assert.equal(
          Object.is(f32[i], p),
          true,
          `${worldSize} ranks, rank ${r}, p[${i}]: ${f32[i]} vs ${p}`,
        );
        assert.equal(Object.is(f32[2 * length + i], mNew), true, `rank ${r}, m[${i}]`);
        const u = Math.fround(k.lr * vote + k.stepDecay * p);
        const terms = [mNew * mNew, p * p, u * u, g[i]! * g[i]!, u * g[i]!, mNew * g[i]!];
        terms.forEach((term, t) => (sums[t]! += term));
      }
      assert.deepEqual([...partials], [...sums], "the metric partials");
    }
    // every rank applied the same vote to the same parameters
    for (const f32 of arenas) {
      assertBitsEqual(f32.subarray(0, length), arenas[0]!.subarray(0, length), "p");
    }
  }
});

Deno.test("sign-vote kernels: with no abstentions the voting bits need not travel", () => {
  const length = 64;
  const k = groupConstants(0.5, 0.5, 0.9, 0.99, 0);
  const g = seededValues(length, 5).map((x) => x + (x >= 0 ? 1 : -1)); // no zeros
  const f32 = new Float32Array(3 * length);
  f32.set(g, length);
  const block = arenaBlock(length);
  const box = new BallotBox(voteWords(length), 1);
  box.voting.fill(0xdead); // stale: never read where every element votes
  assert.equal(packUpdateSigns(f32, block, k, box.signs, box.voting, 0), 0);
  box.voting.fill(0xdead);
  box.tally(jsKernel, false);
  applyVote(f32, block, k, box.masks, 0, null);
  for (let i = 0; i < length; i++) assert.equal(f32[i], -0.5 * Math.sign(g[i]!));
});

Deno.test("bfloat16 exchange kernels: rounding as bfloat16Bits, sums in rank order in float32", () => {
  const values = Float32Array.from([
    1,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
    -2.5e-40,
    3.4e38,
    NaN,
    -Infinity,
    0.1,
  ]);
  const words = new Uint16Array(values.length);
  packBfloat16(new Uint32Array(values.buffer), 0, values.length, words, 0);
  assert.deepEqual([...words], [...values].map(bfloat16Bits));
  const worldSize = 3;
  const stride = 10;
  const all = new Uint16Array(stride * worldSize);
  const parts = [0, 1, 2].map((r) => seededValues(stride, 40 + r, 100));
  parts.forEach((part, r) =>
    packBfloat16(new Uint32Array(part.buffer), 0, stride, all, r * stride)
  );
  const out = new Float32Array(stride);
  sumBfloat16(all, stride, worldSize, 2, 6, out, 2);
  for (let i = 2; i < 8; i++) {
    let sum = 0;
    for (let r = 0; r < worldSize; r++) {
      sum = Math.fround(sum + fromBfloat16(bfloat16Bits(parts[r]![i]!)));
    }
    assert.equal(out[i], sum, `element ${i}`);
  }
  assert.equal(out[0], 0); // outside the range: untouched
});

/** A model of two groups on in-process ranks (or one process), every rank from the same values. */
const SHAPES = [[40_000], [1_000], [70_000], [3, 5]];
const INITIAL = SHAPES.map((shape, i) => seededValues(shape.reduce((a, b) => a * b, 1), i + 1));

function build(collective: Collective | undefined, options: DecoupledLionWOptions = {}) {
  const store = new ParameterStore();
  const params = SHAPES.map((shape, i) => store.add(`p${i}`, shape, INITIAL[i]!));
  const opt = new DecoupledLionW(
    [{ params: params.slice(0, 2), weightDecay: 0.1 }, { params: params.slice(2), lr: 3e-3 }],
    { lr: 1e-2, workers: 0, logger: null, ...(collective ? { collective } : {}), ...options },
  );
  return { params, opt };
}

/** Rank r's gradient of parameter i at step s (coarse: signs tie); rank 1 has none for p1 at step 1. */
function gradOf(r: number, i: number, s: number, size: number): Float32Array | null {
  return r === 1 && i === 1 && s === 1 ? null : coarse(size, 1000 * s + 10 * i + r);
}

async function stepRanks(
  ranks: { params: Parameter[]; opt: DecoupledLionW }[],
  s: number,
  grads: (r: number, i: number, s: number, size: number) => Float32Array | null = gradOf,
  metrics = true,
): Promise<void> {
  await Promise.all(ranks.map(({ params, opt }, r) => {
    params.forEach((p, i) => (p.grad = grads(r, i, s, p.size)));
    return opt.step({ metrics });
  }));
}

Deno.test("bfloat16 exchange, in-process ranks: every rank steps the rank-order float32 sum of the bfloat16 gradients, averaged; sharded state the same", async () => {
  for (const worldSize of [2, 3]) {
    for (const shardState of [false, true]) {
      const ranks = inProcessRanks(worldSize).map((c) =>
        build(c, { exchange: "bfloat16", shardState })
      );
      const single = build(undefined);
      for (let s = 0; s < 3; s++) {
        await stepRanks(ranks, s);
        single.params.forEach((p, i) => {
          const sum = new Float32Array(p.size);
          for (let r = 0; r < worldSize; r++) {
            const g = gradOf(r, i, s, p.size);
            if (g !== null) {
              sum.forEach((x, k) => (sum[k] = Math.fround(x + fromBfloat16(bfloat16Bits(g[k]!)))));
            }
          }
          p.grad = sum.map((x) => Math.fround(x / worldSize));
        });
        await single.opt.step({ metrics: true });
        await Promise.all(ranks.map(({ opt }) => opt.pullState())); // a collective: every rank
        for (const [r, { params, opt }] of ranks.entries()) {
          params.forEach((p, i) => {
            assertBitsEqual(
              p.data,
              single.params[i]!.data,
              `${worldSize} ranks${shardState ? ", sharded" : ""}, rank ${r}, step ${s}, p${i}`,
            );
            assertBitsEqual(
              opt.state(p)!.expAvg!,
              single.opt.state(single.params[i]!)!.expAvg!,
              `exp_avg of p${i}`,
            );
          });
        }
      }
      for (const { opt } of [...ranks, single]) await opt.close();
    }
  }
});

Deno.test("sign-vote, in-process ranks, js and wasm kernels, with metrics (the scalar way) and without (on the kernel): parameters bit-identical across ranks and equal to the scalar vote; each rank's momentum its own", async () => {
  for (
    const [worldSize, backend] of [[1, "wasm"], [2, "js"], [2, "wasm"], [3, "wasm"], [
      4,
      "js",
    ]] as const
  ) {
    const ranks = (worldSize === 1 ? [new LocalCollective()] : inProcessRanks(worldSize))
      .map((c) => build(c, { exchange: "sign-vote", backend }));
    // the reference: each rank's own momentum, the vote applied to one copy of the parameters
    const p = INITIAL.map((x) => x.slice());
    const m = Array.from(
      { length: worldSize },
      () => INITIAL.map((x) => new Float32Array(x.length)),
    );
    const groupOf = (
      i: number,
    ) => (i < 2
      ? groupConstants(1e-2, 1e-2, 0.9, 0.99, 0.1)
      : groupConstants(3e-3, 3e-3, 0.9, 0.99, 0));
    for (let s = 0; s < 4; s++) {
      const metrics = s % 2 === 1;
      await stepRanks(ranks, s, gradOf, metrics);
      const votes = INITIAL.map((x) => new Int8Array(x.length));
      INITIAL.forEach((_, i) => {
        const k = groupOf(i);
        const grads = m.map((_, r) =>
          gradOf(r, i, s, p[i]!.length) ?? new Float32Array(p[i]!.length)
        );
        for (let e = 0; e < p[i]!.length; e++) {
          const ballots = m.map((mr, r) => ({ m: mr[i]!, g: grads[r]! }));
          const vote = scalarVote(ballots, e, k.directionWeight);
          votes[i]![e] = vote;
          p[i]![e] = Math.fround(Math.fround(p[i]![e]! * k.decayMultiplier) - k.lr * vote);
        }
        m.forEach((mr, r) =>
          mr[i]!.forEach((x, e) => (mr[i]![e] = lerpF32(x, grads[r]![e]!, k.momentWeight)))
        );
      });
      for (const [r, { params, opt }] of ranks.entries()) {
        const at = `${worldSize} ranks (${backend}), rank ${r}, step ${s}`;
        params.forEach((param, i) => {
          assertBitsEqual(param.data, p[i]!, `${at}, p${i}`);
          assertBitsEqual(opt.state(param)!.expAvg!, m[r]![i]!, `${at}: own momentum of p${i}`);
          assert.equal(param.grad, null, `${at}: the step consumed the gradient of p${i}`);
        });
        if (!metrics) continue;
        // the update is the applied step u = lr·v − wd·decay·p (post-step p); g and m the rank's own
        const k = groupOf(0);
        const g = gradOf(r, 0, s, p[0]!.length)!;
        let [uu, gg, mm] = [0, 0, 0];
        for (let e = 0; e < g.length; e++) {
          const u = Math.fround(k.lr * votes[0]![e]! + k.stepDecay * p[0]![e]!);
          uu += u * u;
          gg += g[e]! * g[e]!;
          mm += m[r]![0]![e]! * m[r]![0]![e]!;
        }
        const got = opt.getMetrics();
        for (const [key, want] of [["update", uu], ["grad", gg], ["moment", mm]] as const) {
          const value = got[`l2_norm/${key}/p0`]!;
          const norm = Math.sqrt(want);
          assert.ok(
            Math.abs(value - norm) <= 1e-12 * norm,
            `${at}: ${key} norm ${value} vs ${norm}`,
          );
        }
      }
    }
    for (const { opt } of ranks) await opt.close();
  }
});

Deno.test("sign-vote on one rank is Lion on one process: the same parameters and state", async () => {
  const voted = build(new LocalCollective(), { exchange: "sign-vote" });
  const plain = build(undefined);
  for (let s = 0; s < 3; s++) {
    for (const { params, opt } of [voted, plain]) {
      params.forEach((p, i) => (p.grad = gradOf(0, i, s, p.size)));
      await opt.step();
    }
    voted.params.forEach((p, i) => {
      assertBitsEqual(p.data, plain.params[i]!.data, `step ${s}, p${i}`);
      assertBitsEqual(
        voted.opt.state(p)!.expAvg!,
        plain.opt.state(plain.params[i]!)!.expAvg!,
        `exp_avg`,
      );
    });
  }
  await voted.opt.close();
  await plain.opt.close();
});

Deno.test("sign-vote: a non-finite gradient on one rank is the verdict of every rank, state untouched", async (t) => {
  const withNaN = (r: number, i: number, s: number, size: number) => {
    const g = gradOf(r, i, s, size);
    if (r === 1 && i === 2 && g !== null) g[5] = NaN;
    return g;
  };
  await t.step("skip: every rank skips, nothing changes", async () => {
    const ranks = inProcessRanks(2).map((c) =>
      build(c, { exchange: "sign-vote", nonFinite: "skip" })
    );
    await stepRanks(ranks, 0);
    const before = ranks.map(({ params, opt }) =>
      params.map((p) => [p.data.slice(), opt.state(p)!.expAvg!.slice()])
    );
    await stepRanks(ranks, 1, withNaN);
    for (const [r, { params, opt }] of ranks.entries()) {
      assert.equal(opt.lastStep.applied, false);
      assert.deepEqual(opt.lastStep.nonFinite, ["p2"]);
      assert.equal(opt.iterations, 1);
      params.forEach((p, i) => {
        assertBitsEqual(p.data, before[r]![i]![0]!, `rank ${r} p${i}`);
        assertBitsEqual(opt.state(p)!.expAvg!, before[r]![i]![1]!, `rank ${r} exp_avg`);
      });
    }
  });
  await t.step(
    "a NaN written through the gradient's view after its write: still every rank's verdict",
    async () => {
      const ranks = inProcessRanks(2).map((c) =>
        build(c, { exchange: "sign-vote", nonFinite: "skip" })
      );
      // the setter's scan saw finite values; the view handed out afterwards makes the step scan again
      await Promise.all(ranks.map(({ params, opt }, r) => {
        params.forEach((p, i) => (p.grad = gradOf(r, i, 0, p.size)));
        if (r === 1) params[2]!.grad![5] = NaN;
        return opt.step();
      }));
      for (const { opt } of ranks) {
        assert.equal(opt.lastStep.applied, false);
        assert.deepEqual(opt.lastStep.nonFinite, ["p2"]);
      }
    },
  );
  await t.step("error: every rank throws, naming the parameter", async () => {
    const ranks = inProcessRanks(2).map((c) => build(c, { exchange: "sign-vote" }));
    const results = await Promise.allSettled(ranks.map(({ params, opt }, r) => {
      params.forEach((p, i) => (p.grad = withNaN(r, i, 0, p.size)));
      return opt.step();
    }));
    for (const result of results) {
      assert.equal(result.status, "rejected");
      assert.match(String((result as PromiseRejectedResult).reason), /p2/);
    }
  });
});

Deno.test("sign-vote: each rank's own momentum saved and resumed exactly", async () => {
  const ranks = inProcessRanks(2).map((c) => build(c, { exchange: "sign-vote" }));
  await stepRanks(ranks, 0);
  const saved = ranks.map(({ opt }) => opt.stateDict());
  const resumedRanks = inProcessRanks(2).map((c, r) => {
    const b = build(c, { exchange: "sign-vote" });
    b.params.forEach((p, i) => p.data.set(ranks[r]!.params[i]!.data));
    b.opt.loadStateDict(saved[r]!);
    return b;
  });
  for (let s = 1; s < 3; s++) {
    await stepRanks(ranks, s);
    await stepRanks(resumedRanks, s);
  }
  for (const [r, { params, opt }] of resumedRanks.entries()) {
    params.forEach((p, i) => {
      assertBitsEqual(p.data, ranks[r]!.params[i]!.data, `rank ${r} p${i}`);
      assertBitsEqual(
        opt.state(p)!.expAvg!,
        ranks[r]!.opt.state(ranks[r]!.params[i]!)!.expAvg!,
        `rank ${r} exp_avg`,
      );
    });
  }
});

Deno.test("exchange: what it cannot combine with is refused at construction, naming the value; a cautious group at the step", async () => {
  const comm = new LocalCollective();
  const w = () => new ParameterStore().add("w", [4]);
  const refused = (options: DecoupledLionWOptions, message: RegExp) =>
    assert.throws(() => new DecoupledLionW([w()], options), { name: /Error/, message });
  refused(
    { exchange: "int8" as never, collective: comm },
    /'exchange' must be "float32", "bfloat16" or "sign-vote": current value is "int8"/,
  );
  refused(
    { exchange: "sign-vote" },
    /'exchange' "sign-vote" is what the ranks of a 'collective' exchange, and none was given/,
  );
  refused(
    { exchange: "sign-vote", collective: comm, maxGradNorm: 1 },
    /'maxGradNorm' clips the gradients, which "sign-vote" training does not support.*current value is 1/,
  );
  refused(
    { exchange: "sign-vote", collective: comm, shardState: true },
    /'shardState' shards the state .*"sign-vote" training/,
  );
  refused(
    { exchange: "sign-vote", collective: comm, backend: "gpujs" },
    /"sign-vote" training reads and writes exp_avg on the host, which the gpujs backend keeps on a device/,
  );
  refused(
    { exchange: "sign-vote", collective: comm, momentumDtype: "bfloat16" },
    /'momentumDtype' "bfloat16" is not supported by "sign-vote" training/,
  );
  const v = w();
  await using opt = new DecoupledLionW([{ params: [v], cautious: true }], {
    exchange: "sign-vote",
    collective: comm,
    workers: 0,
  });
  v.grad = new Float32Array([1, 2, 3, 4]);
  await assert.rejects(
    opt.step(),
    /paramGroups\[0\] is cautious, which the "sign-vote" exchange does not support/,
  );
  await assert.rejects(
    opt.step({ maxGradNorm: 1 }),
    /Cannot step with maxGradNorm 1 as the "sign-vote" exchange/,
  );
  assert.deepEqual([...v.data], [0, 0, 0, 0]);
});

Deno.test("sign-vote kernels: signVotes moves the momentum and packs the signs as the scalar rule does, on js and both wasm fma paths", async (t) => {
  const { createWasmKernel } = wasmModule;
  const kernels = [jsKernel, createWasmKernel("exact"), createWasmKernel()];
  const pick = [0.5, -0.25, 0, -0, NaN, Infinity, 0.75, -1];
  // 1000 elements: 63 lines (odd: the last pair's high halves) and a partial last word; 40: 3 lines
  for (const length of [1000, 40]) {
    // betas above and below 0.5 take each lerp base; a gradient scale of −2 (maximize, clipped)
    for (const [beta1, beta2, gradScale] of [[0.9, 0.99, 1], [0.3, 0.2, -2]] as const) {
      const k = { ...groupConstants(0.01, 0.01, beta1, beta2, 0.1), gradScale };
      const m0 = coarse(length, 31);
      const g0 = new Float32Array(length).map((_, i) => pick[Math.floor(i * 7.3) % pick.length]!);
      const seg: KernelSegment = { data: 0, grad: 1024, expAvg: 2048, length, group: 0, block: 0 };
      // the rule, element by element
      const moved = m0.map((m, i) => lerpF32(m, Math.fround(g0[i]! * gradScale), k.momentWeight));
      const signs = new Int32Array(Math.ceil(length / 32));
      const votes = new Int32Array(signs.length);
      let abstaining = 0;
      for (let i = 0; i < length; i++) {
        const c = lerpF32(m0[i]!, Math.fround(g0[i]! * gradScale), k.directionWeight);
        if (c > 0) signs[i >> 5]! |= 1 << (i & 31);
        if (c !== 0 && !Number.isNaN(c)) votes[i >> 5]! |= 1 << (i & 31);
        else abstaining++;
      }
      for (const kernel of kernels) {
        const fma = "fma" in kernel ? `/${kernel.fma}` : "";
        await t.step(`${kernel.name}${fma}, ${length} elements, betas ${beta1}/${beta2}`, () => {
          const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
          const f32 = new Float32Array(memory.buffer);
          f32.set(g0, 1024);
          f32.set(m0, 2048);
          assert.equal(kernel.signVotes(memory, seg, k), abstaining, "abstentions");
          assertBitsEqual(f32.subarray(2048, 2048 + length), moved, "the moments");
          const pairs = new Int32Array(memory.buffer, 1024 * 4, 2 * signs.length);
          assert.deepEqual([...pairs.filter((_, j) => j % 2 === 0)], [...signs], "sign bits");
          assert.deepEqual([...pairs.filter((_, j) => j % 2 === 1)], [...votes], "voting bits");
          // the padding of the moment's slot stays 0
          for (let i = length; i < Math.ceil(length / 16) * 16; i++) assert.equal(f32[2048 + i], 0);
        });
      }
    }
  }
});

Deno.test("sign-vote kernels: tallyVotes counts every rank's bits as the scalar vote does, ties and abstentions included", async (t) => {
  const { createWasmKernel } = wasmModule;
  const words = 12;
  for (const worldSize of [1, 2, 3, 4, 5, 8]) {
    for (const abstaining of [false, true]) {
      const stride = 16; // words a rank: 4 past the ones counted, which must not be read
      const bits = (seed: number) =>
        Int32Array.from(seededValues(stride * worldSize, seed), (x) => Math.floor(x * 2 ** 31));
      const signs = bits(40 + worldSize);
      const voting = bits(50 + worldSize);
      // the scalar vote, bit by bit
      const expected = new Int32Array(2 * words);
      for (let w = 0; w < words; w++) {
        for (let bit = 0; bit < 32; bit++) {
          let tally = 0;
          for (let r = 0; r < worldSize; r++) {
            const votes = abstaining ? voting[r * stride + w]! : -1;
            if ((votes >>> bit) & 1) tally += (signs[r * stride + w]! >>> bit) & 1 ? 1 : -1;
          }
          if (tally > 0) expected[2 * w]! |= 1 << bit;
          if (tally < 0) expected[2 * w + 1]! |= 1 << bit;
        }
      }
      for (const kernel of [jsKernel, createWasmKernel()]) {
        await t.step(
          `${kernel.name}, ${worldSize} ranks, ${abstaining ? "some" : "none"} abstaining`,
          () => {
            const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
            const i32 = new Int32Array(memory.buffer);
            const part = stride * worldSize;
            i32.set(signs, 0);
            i32.set(voting, part);
            i32.fill(-1, 2 * part, 2 * part + 2 * words + TALLY_SCRATCH_BYTES / 4); // stale masks and scratch
            kernel.tallyVotes(memory, {
              signs: 0,
              voting: abstaining ? 4 * part : null,
              stride: 4 * stride,
              worldSize,
              words,
              out: 8 * part,
              scratch: 8 * part + 8 * words,
            });
            assert.deepEqual([...i32.subarray(2 * part, 2 * part + 2 * words)], [...expected]);
          },
        );
      }
    }
  }
  assert.throws(
    () =>
      createWasmKernel().tallyVotes(new WebAssembly.Memory({ initial: 1, maximum: 1 }), {
        signs: 0,
        voting: null,
        stride: 16,
        worldSize: 2,
        words: 6,
        out: 128,
        scratch: 256,
      }),
    /Cannot tally 6 words 16 bytes apart/,
  );
});

Deno.test("sign-vote: a ballot box lays each rank's part out in whole vectors, and refuses ballots past a WebAssembly.Memory", () => {
  const box = new BallotBox(5, 3); // 5 words a rank: a stride of 8
  assert.equal(box.stride, 8);
  assert.equal(box.signs.length, 24);
  assert.equal(box.voting.byteOffset, box.signs.byteLength);
  assert.equal(box.masks.length, 16);
  // every element votes: rank 0 and 1 up, rank 2 down on bit 0; all down elsewhere
  box.signs.set([1], 0);
  box.signs.set([1], 8);
  box.tally(jsKernel, false);
  assert.deepEqual([box.masks[0], box.masks[1]], [1, ~1]);
  // rank 1 abstains on bit 0: a tie
  box.voting.fill(-1);
  box.voting[8] = ~1;
  box.tally(wasmModule.createWasmKernel(), true);
  assert.deepEqual([box.masks[0], box.masks[1]], [0, ~1]);
  assert.throws(
    () => new BallotBox(2 ** 26, 16),
    /Cannot hold the sign-vote ballots of 2147483648 elements from 16 ranks \(9126806496 bytes\): a WebAssembly.Memory holds 4294967296/,
  );
});

Deno.test("sign-vote kernels: the wasm kernel applies votes as the js kernel does, bit for bit (a partial last word)", () => {
  const { createWasmKernel } = wasmModule;
  const wasm = createWasmKernel();
  const length = 1000;
  const make = () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
    const f32 = new Float32Array(memory.buffer);
    f32.set(seededValues(length, 9), 0);
    return { memory, f32 };
  };
  const [a, b] = [make(), make()];
  const segment: KernelSegment = { data: 0, grad: 1024, expAvg: 2048, length, group: 0, block: 0 };
  // votes: up where the first word says, down where the second does (lr as the kernels get it: float32)
  const lr = Math.fround(0.01);
  a.f32.set(seededValues(64, 3), 1024);
  const pairs = new Int32Array(a.memory.buffer, 1024 * 4, 64);
  pairs.forEach((_, j) => j % 2 === 1 && (pairs[j] = pairs[j]! & ~pairs[j - 1]!)); // never both
  pairs[63] = pairs[63]! & 0xff; // no bit past the end (1000 = 31·32 + 8)
  pairs[62] = pairs[62]! & 0xff;
  b.f32.set(a.f32.subarray(1024, 1024 + 64), 1024);
  wasm.applyVotes(a.memory, segment, lr, Math.fround(1 - 1e-3));
  jsKernel.applyVotes(b.memory, segment, lr, Math.fround(1 - 1e-3));
  assertBitsEqual(a.f32.subarray(0, 1024), b.f32.subarray(0, 1024), "the parameters");
});

Deno.test("sign-vote on the kernel: the slots' padding past a parameter's end stays 0 (the kernels' sums count it)", async () => {
  const { parameterSlots } = await import("../src/store/slots.ts");
  const ranks = inProcessRanks(2).map((c) => build(c, { exchange: "sign-vote", backend: "wasm" }));
  // dense gradients: no element abstains, so the voting bits stay home and every bit counts
  const dense = (r: number, i: number, s: number, size: number) =>
    seededValues(size, 7000 * s + 10 * i + r).map((x) => x + (x < 0 ? -0.5 : 0.5));
  for (let s = 0; s < 3; s++) await stepRanks(ranks, s, dense, false);
  for (const { params } of ranks) {
    for (const p of params) {
      const slots = parameterSlots(p);
      const f32 = new Float32Array(slots.memory.arenas[slots.arena]!.memory.buffer);
      const lineEnd = Math.ceil(p.size / 16) * 16;
      for (const start of [slots.data, slots.expAvg]) {
        for (let i = p.size; i < lineEnd; i++) assert.equal(f32[start + i], 0, `${p.name}[${i}]`);
      }
    }
  }
});

Deno.test("sign-vote: a model of more than one run of bits (4.3M elements on 2 ranks) equals the scalar vote", async () => {
  // the first run is q0, the second q1 and q2 (a partial last word)
  const sizes = [2_500_000, 1_800_000, 37];
  assert.ok(sizes[0]! + sizes[1]! > BLOCKING_RUN_ELEMENTS, "two runs");
  const k = groupConstants(1e-2, 1e-2, 0.9, 0.99, 0.1);
  const ranks = inProcessRanks(2).map((collective) => {
    const store = new ParameterStore();
    const params = sizes.map((size, i) => store.add(`q${i}`, [size], seededValues(size, 50 + i)));
    const opt = new DecoupledLionW(params, {
      lr: 1e-2,
      weightDecay: 0.1,
      workers: 0,
      logger: null,
      collective,
      exchange: "sign-vote",
    });
    return { params, opt };
  });
  const p = sizes.map((size, i) => seededValues(size, 50 + i));
  const m = [0, 1].map(() => sizes.map((size) => new Float32Array(size)));
  const grad = (r: number, i: number, s: number) => coarse(sizes[i]!, 900 * s + 10 * i + r);
  for (let s = 0; s < 2; s++) {
    await Promise.all(ranks.map(({ params, opt }, r) => {
      params.forEach((param, i) => (param.grad = grad(r, i, s)));
      return opt.step();
    }));
    sizes.forEach((size, i) => {
      const grads = [0, 1].map((r) => grad(r, i, s));
      for (let e = 0; e < size; e++) {
        const vote = scalarVote(
          [0, 1].map((r) => ({ m: m[r]![i]!, g: grads[r]! })),
          e,
          k.directionWeight,
        );
        p[i]![e] = Math.fround(Math.fround(p[i]![e]! * k.decayMultiplier) - k.lr * vote);
      }
      m.forEach((mr, r) =>
        mr[i]!.forEach((x, e) => (mr[i]![e] = lerpF32(x, grads[r]![e]!, k.momentWeight)))
      );
    });
    for (const [r, { params, opt }] of ranks.entries()) {
      params.forEach((param, i) => {
        assertBitsEqual(param.data, p[i]!, `step ${s}, rank ${r}, q${i}`);
        assertBitsEqual(
          opt.state(param)!.expAvg!,
          m[r]![i]!,
          `step ${s}, rank ${r}, q${i}'s momentum`,
        );
      });
    }
  }
  for (const { opt } of ranks) await opt.close();
});
