import assert from "node:assert/strict";
import {
  type CheckpointKv,
  DecoupledLionW,
  KV_CHUNK_BYTES,
  type KvKey,
  loadCheckpointKv,
  type Parameter,
  ParameterStore,
  saveCheckpointKv,
} from "../mod.ts";
import { seededValues } from "./_util.ts";

const PREFIX = ["jobs", "lion"];

/** 40,000 parameters: 160 KB of data and as much of moments, several chunks. */
function model(seed = 1): { opt: DecoupledLionW; w: Parameter } {
  const w = new ParameterStore().add("w", [200, 200], seededValues(40_000, seed));
  return { opt: new DecoupledLionW([w], { backend: "js", workers: 0, logger: null }), w };
}

async function step(opt: DecoupledLionW, w: Parameter, seed: number): Promise<void> {
  w.grad = seededValues(w.size, seed);
  await opt.step();
}

async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const kv = await Deno.openKv(path);
  try {
    await fn(kv);
  } finally {
    kv.close();
    await Deno.remove(path);
  }
}

async function keysUnder(kv: Deno.Kv, prefix: KvKey): Promise<KvKey[]> {
  const keys: KvKey[] = [];
  for await (const entry of kv.list({ prefix: [...prefix] as Deno.KvKey })) {
    keys.push(entry.key as KvKey);
  }
  return keys;
}

/** `kv`, except that `set` fails after `sets` calls, and `delete` too when `crash` (a process that dies). */
function failingAfter(kv: Deno.Kv, sets: number, crash: boolean): CheckpointKv {
  let left = sets;
  return {
    get: (key) => kv.get(key as Deno.KvKey),
    set: (key, value) => {
      if (left-- <= 0) return Promise.reject(new Error("KV went away"));
      return kv.set(key as Deno.KvKey, value);
    },
    delete: (key) => crash ? Promise.reject(new Error("dead")) : kv.delete(key as Deno.KvKey),
    list: (selector) => kv.list({ prefix: selector.prefix as Deno.KvKey }),
    atomic: () => kv.atomic() as never,
  };
}

Deno.test("saveCheckpointKv() stores chunks of at most 60 KiB and a head; loadCheckpointKv() restores the run", async () => {
  await withKv(async (kv) => {
    const { opt, w } = model();
    await step(opt, w, 10);
    const head = await saveCheckpointKv(kv, PREFIX, opt, { metadata: { job: "cron" } });
    assert.equal(head.chunks, Math.ceil(head.bytes / KV_CHUNK_BYTES));
    assert.ok(head.chunks >= 6, `${head.chunks} chunks`);
    assert.match(head.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual((await kv.get([...PREFIX, "head"])).value, head);
    assert.equal((await keysUnder(kv, [...PREFIX, "chunks"])).length, head.chunks);
    const other = model(2);
    assert.equal(await loadCheckpointKv(kv, PREFIX, other.opt), true);
    assert.deepEqual(other.w.data, w.data);
    assert.deepEqual(other.opt.state(other.w)!.expAvg, opt.state(w)!.expAvg);
    assert.equal(await loadCheckpointKv(kv, ["nothing", "here"], other.opt), false);
    await Promise.all([opt.close(), other.opt.close()]);
  });
});

Deno.test("a second save replaces the first and deletes its chunks", async () => {
  await withKv(async (kv) => {
    const { opt, w } = model();
    await step(opt, w, 10);
    const first = await saveCheckpointKv(kv, PREFIX, opt);
    await step(opt, w, 11);
    const second = await saveCheckpointKv(kv, PREFIX, opt);
    assert.notEqual(second.generation, first.generation);
    const generations = new Set((await keysUnder(kv, [...PREFIX, "chunks"])).map((k) => k[3]));
    assert.deepEqual([...generations], [second.generation]);
    const other = model(2);
    await loadCheckpointKv(kv, PREFIX, other.opt);
    assert.equal(other.opt.iterations, 2);
    await Promise.all([opt.close(), other.opt.close()]);
  });
});

for (const crash of [false, true]) {
  Deno.test(`a save interrupted after some chunks leaves the previous checkpoint loadable (${crash ? "the process dies" : "an error"})`, async () => {
    await withKv(async (kv) => {
      const { opt, w } = model();
      await step(opt, w, 10);
      const first = await saveCheckpointKv(kv, PREFIX, opt);
      const saved = w.data.slice();
      await step(opt, w, 11);
      await assert.rejects(
        saveCheckpointKv(failingAfter(kv, 3, crash), PREFIX, opt),
        /KV went away/,
      );
      assert.deepEqual((await kv.get([...PREFIX, "head"])).value, first);
      const left = new Set((await keysUnder(kv, [...PREFIX, "chunks"])).map((k) => k[3]));
      // an error cleans up its own chunks; a dead process leaves them for the next save
      assert.equal(left.size, crash ? 2 : 1);
      const other = model(2);
      await loadCheckpointKv(kv, PREFIX, other.opt);
      assert.deepEqual(other.w.data, saved);
      assert.equal(other.opt.iterations, 1);
      await saveCheckpointKv(kv, PREFIX, opt);
      assert.equal(new Set((await keysUnder(kv, [...PREFIX, "chunks"])).map((k) => k[3])).size, 1);
      await Promise.all([opt.close(), other.opt.close()]);
    });
  });
}

Deno.test("of two saves racing, the one that flips the head second fails and removes its chunks", async () => {
  await withKv(async (kv) => {
    const { opt, w } = model();
    await step(opt, w, 10);
    await saveCheckpointKv(kv, PREFIX, opt);
    // the head changes between this save's read and its flip
    let raced = false;
    const racing: CheckpointKv = {
      ...failingAfter(kv, Infinity, false),
      async set(key, value) {
        if (!raced) {
          raced = true;
          await kv.set(
            [...PREFIX, "head"] as Deno.KvKey,
            (await kv.get([...PREFIX, "head"])).value,
          );
        }
        return await kv.set(key as Deno.KvKey, value);
      },
    };
    await assert.rejects(saveCheckpointKv(racing, PREFIX, opt), /another save changed/);
    const generations = new Set((await keysUnder(kv, [...PREFIX, "chunks"])).map((k) => k[3]));
    assert.equal(generations.size, 1);
    await opt.close();
  });
});

Deno.test("loadCheckpointKv() refuses chunks that do not match the head, changing nothing", async () => {
  await withKv(async (kv) => {
    const { opt, w } = model();
    await step(opt, w, 10);
    const head = await saveCheckpointKv(kv, PREFIX, opt);
    const key = [...PREFIX, "chunks", head.generation, 2];
    const chunk = (await kv.get<Uint8Array>(key)).value!;
    chunk[100]! ^= 1;
    await kv.set(key, chunk);
    const other = model(2);
    const before = other.w.data.slice();
    await assert.rejects(loadCheckpointKv(kv, PREFIX, other.opt), /do not match its head/);
    await kv.delete(key);
    await assert.rejects(
      loadCheckpointKv(kv, PREFIX, other.opt),
      /chunk 2 of generation .* is missing/,
    );
    assert.deepEqual(other.w.data, before);
    assert.equal(other.opt.iterations, 0);
    await Promise.all([opt.close(), other.opt.close()]);
  });
});
