import assert from "node:assert/strict";
import {
  type CheckpointCodec,
  DecoupledLionW,
  loadCheckpoint,
  loadCheckpointKv,
  ParameterStore,
  SAFETENSORS_CHECKPOINT,
  saveCheckpoint,
  saveCheckpointKv,
} from "../mod.ts";

/** Another format: the safetensors bytes behind a magic word, which decode checks. */
const MAGIC = new TextEncoder().encode("LNW1");
const framed: CheckpointCodec = {
  async encode(opt, options) {
    const inner = await SAFETENSORS_CHECKPOINT.encode(opt, options);
    const out = new Uint8Array(MAGIC.length + inner.length);
    out.set(MAGIC);
    out.set(inner, MAGIC.length);
    return out;
  },
  decode(opt, bytes, options) {
    if (!MAGIC.every((b, i) => bytes[i] === b)) {
      return Promise.reject(new Error("Cannot read checkpoint as it is not framed"));
    }
    return SAFETENSORS_CHECKPOINT.decode(opt, bytes.subarray(MAGIC.length), options);
  },
};

async function trained(): Promise<{ opt: DecoupledLionW; data: number[] }> {
  const w = new ParameterStore().add("w", [3], [1, 2, 3]);
  const opt = new DecoupledLionW([w], { lr: 0.1, workers: 0 });
  w.grad = [1, -1, 1];
  await opt.step();
  return { opt, data: [...w.data] };
}

Deno.test("files and Deno KV both save and load through the codec given: a new format is a codec", async () => {
  const { opt, data } = await trained();
  const folder = await Deno.makeTempDir();
  using kv = await Deno.openKv(":memory:");
  try {
    await saveCheckpoint(opt, `${folder}/c.lnw`, { codec: framed });
    await saveCheckpointKv(kv, ["run"], opt, { codec: framed });
    const file = await Deno.readFile(`${folder}/c.lnw`);
    assert.deepEqual(file.subarray(0, 4), MAGIC, "the file holds the codec's bytes");
    for (
      const load of [
        (into: DecoupledLionW) => loadCheckpoint(into, `${folder}/c.lnw`, { codec: framed }),
        (into: DecoupledLionW) => loadCheckpointKv(kv, ["run"], into, { codec: framed }),
      ]
    ) {
      const v = new ParameterStore().add("w", [3]);
      await using fresh = new DecoupledLionW([v], { lr: 0.1, workers: 0 });
      await load(fresh);
      assert.deepEqual([...v.data], data);
      assert.equal(fresh.iterations, 1);
    }
    // the default codec does not read the other format, and changes nothing
    const v = new ParameterStore().add("w", [3]);
    await using plain = new DecoupledLionW([v], { workers: 0 });
    await assert.rejects(loadCheckpoint(plain, `${folder}/c.lnw`), /Cannot read checkpoint/);
    assert.deepEqual([...v.data], [0, 0, 0]);
  } finally {
    await opt.close();
    await Deno.remove(folder, { recursive: true });
  }
});
