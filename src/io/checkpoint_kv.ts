/**
 * Checkpoints in Deno KV, for Deno Deploy jobs (cron or queue runs that
 * resume from saved state): the checkpoint's bytes as chunks under a new
 * generation, then a head key flipped atomically, then the old generations
 * deleted. A save that dies midway leaves the previous checkpoint loadable.
 *
 * Layout under `prefix`: `[...prefix, "head"]` → {@linkcode KvCheckpointHead},
 * `[...prefix, "chunks", generation, index]` → up to 60 KiB of bytes.
 *
 * @module
 */

import { sha256Hex } from "./_verification.ts";
import { formatValue } from "../_internal/format.ts";
import {
  decodeCheckpoint,
  encodeCheckpoint,
  type LoadCheckpointOptions,
  type SaveCheckpointOptions,
} from "./checkpoint.ts";
import type { DecoupledLionW } from "../optimizer/decoupled_lionw.ts";

/** Bytes per chunk: under Deno KV's 64 KiB limit on a value. */
export const KV_CHUNK_BYTES = 60 * 1024;

/** A Deno KV key. */
export type KvKey = readonly (string | number | bigint | boolean | Uint8Array)[];

/** The part of an atomic operation the checkpoint uses (`Deno.AtomicOperation`). */
export interface KvAtomic {
  /** Fails the commit unless `key`'s versionstamp is this one (`null`: absent). */
  check(...checks: { key: KvKey; versionstamp: string | null }[]): KvAtomic;
  /** Sets `key` in the commit. */
  set(key: KvKey, value: unknown): KvAtomic;
  /** Commits; `ok` is false when a check failed. */
  commit(): Promise<{ ok: boolean }>;
}

/** The part of `Deno.Kv` the checkpoint uses, so a `Deno.Kv` (or a test's wrapper) fits. */
export interface CheckpointKv {
  /** Reads a key. */
  get<T = unknown>(key: KvKey): Promise<{ value: T | null; versionstamp: string | null }>;
  /** Writes a key. */
  set(key: KvKey, value: unknown): Promise<unknown>;
  /** Deletes a key. */
  delete(key: KvKey): Promise<void>;
  /** Lists the entries under a prefix. */
  list<T = unknown>(
    selector: { prefix: KvKey },
  ): AsyncIterable<{ key: readonly unknown[]; value: T }>;
  /** Starts an atomic operation. */
  atomic(): KvAtomic;
}

/** The head record: which generation holds the current checkpoint. */
export interface KvCheckpointHead {
  /** The generation's id. */
  readonly generation: string;
  /** Its number of chunks. */
  readonly chunks: number;
  /** The checkpoint's length in bytes. */
  readonly bytes: number;
  /** SHA-256 of the bytes, hex: checked on load. */
  readonly sha256: string;
}

/** Deletes every generation under `prefix` but `keep`: the previous one, and any a crash abandoned. */
async function deleteOtherGenerations(
  kv: CheckpointKv,
  prefix: KvKey,
  keep: string,
): Promise<void> {
  for await (const entry of kv.list({ prefix: [...prefix, "chunks"] })) {
    if (entry.key[prefix.length + 1] !== keep) await kv.delete(entry.key as KvKey);
  }
}

/** Deletes one generation's chunks (a save that lost, or failed). */
async function deleteGeneration(
  kv: CheckpointKv,
  prefix: KvKey,
  generation: string,
): Promise<void> {
  for await (const entry of kv.list({ prefix: [...prefix, "chunks", generation] })) {
    await kv.delete(entry.key as KvKey);
  }
}

/**
 * Saves a checkpoint of `opt` in Deno KV under `prefix`: the same bytes as
 * {@linkcode encodeCheckpoint}, in chunks of a new generation, then the head
 * flipped atomically (checked against the head read before, so two
 * concurrent saves cannot both win), then every other generation deleted.
 * A crash before the flip leaves the previous checkpoint as the head.
 *
 * @example Save and resume in a Deno Deploy job
 * ```ts
 * import { DecoupledLionW, loadCheckpointKv, ParameterStore, saveCheckpointKv } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * using kv = await Deno.openKv(":memory:");
 * const w = new ParameterStore().add("w", [2]);
 * await using opt = new DecoupledLionW([w]);
 * w.grad = [1, -1];
 * await opt.step();
 * await saveCheckpointKv(kv, ["runs", "demo"], opt);
 *
 * const v = new ParameterStore().add("w", [2]);
 * await using resumed = new DecoupledLionW([v]);
 * assert.equal(await loadCheckpointKv(kv, ["runs", "demo"], resumed), true);
 * assert.equal(resumed.iterations, 1);
 * ```
 *
 * @param kv A `Deno.Kv`.
 * @param prefix The key prefix of this checkpoint.
 * @param opt The optimizer.
 * @param options Metadata and a scheduler to save with it.
 * @returns The head written.
 * @throws {Error} When another save flipped the head meanwhile (this one's
 * chunks are deleted), and on KV errors (the previous checkpoint stays).
 */
export async function saveCheckpointKv(
  kv: CheckpointKv,
  prefix: KvKey,
  opt: DecoupledLionW,
  options: SaveCheckpointOptions = {},
): Promise<KvCheckpointHead> {
  checkKv("save checkpoint", kv);
  const bytes = await encodeCheckpoint(opt, options);
  const headKey = [...prefix, "head"];
  const before = await kv.get<KvCheckpointHead>(headKey);
  const generation = crypto.randomUUID();
  const chunks = Math.ceil(bytes.length / KV_CHUNK_BYTES);
  const head: KvCheckpointHead = {
    generation,
    chunks,
    bytes: bytes.length,
    sha256: await sha256Hex(bytes),
  };
  let ok = false;
  try {
    for (let i = 0; i < chunks; i++) {
      const chunk = bytes.slice(i * KV_CHUNK_BYTES, (i + 1) * KV_CHUNK_BYTES);
      await kv.set([...prefix, "chunks", generation, i], chunk);
    }
    ({ ok } = await kv.atomic()
      .check({ key: headKey, versionstamp: before.versionstamp })
      .set(headKey, head)
      .commit());
  } finally {
    // the head still names the previous generation: this one's chunks go
    if (!ok) await deleteGeneration(kv, prefix, generation).catch(() => {});
  }
  if (!ok) {
    throw new Error(
      `Cannot save checkpoint as another save changed ${JSON.stringify(headKey)} meanwhile`,
    );
  }
  await deleteOtherGenerations(kv, prefix, generation);
  return head;
}

function isHead(value: unknown): value is KvCheckpointHead {
  const head = value as KvCheckpointHead | null;
  return head !== null && typeof head === "object" && typeof head.generation === "string" &&
    Number.isSafeInteger(head.chunks) && head.chunks >= 0 && Number.isSafeInteger(head.bytes) &&
    head.bytes >= 0 && typeof head.sha256 === "string";
}

/**
 * Loads the checkpoint the head under `prefix` points to, checking its
 * chunks, length and SHA-256 first, then the bytes as
 * {@linkcode decodeCheckpoint} does.
 *
 * @param kv A `Deno.Kv`.
 * @param prefix The key prefix of the checkpoint.
 * @param opt The optimizer to load into.
 * @param options A scheduler to restore.
 * @returns `false` when there is no checkpoint under `prefix` (nothing
 * changes), `true` once loaded.
 * @throws {Error} When the chunks are missing or do not match the head, or
 * the checkpoint does not fit `opt`; nothing changes then.
 */
export async function loadCheckpointKv(
  kv: CheckpointKv,
  prefix: KvKey,
  opt: DecoupledLionW,
  options: LoadCheckpointOptions = {},
): Promise<boolean> {
  checkKv("load checkpoint", kv);
  const headKey = [...prefix, "head"];
  const { value: head } = await kv.get(headKey);
  if (head === null) return false;
  if (!isHead(head)) {
    throw new Error(
      `Cannot load checkpoint as ${JSON.stringify(headKey)} is not a checkpoint head`,
    );
  }
  const bytes = new Uint8Array(head.bytes);
  let at = 0;
  for (let i = 0; i < head.chunks; i++) {
    const { value } = await kv.get([...prefix, "chunks", head.generation, i]);
    if (!(value instanceof Uint8Array) || at + value.length > bytes.length) {
      throw new Error(
        `Cannot load checkpoint as chunk ${i} of generation ${head.generation} is missing or too long`,
      );
    }
    bytes.set(value, at);
    at += value.length;
  }
  if (at !== head.bytes || await sha256Hex(bytes) !== head.sha256) {
    throw new Error(
      `Cannot load checkpoint as the chunks of generation ${head.generation} do not match its head (length or SHA-256)`,
    );
  }
  await decodeCheckpoint(opt, bytes, options);
  return true;
}

/**
 * A Deno KV store, or a clear error: Deno KV is Deno's (`Deno.openKv()`);
 * Node has none, and a checkpoint file serves there.
 */
function checkKv(action: string, kv: unknown): void {
  const store = kv as Partial<CheckpointKv> | null;
  if (typeof store?.get === "function" && typeof store.atomic === "function") return;
  const where = "Deno" in globalThis
    ? "open one with Deno.openKv()"
    : "Deno KV is Deno's: in Node, use saveCheckpoint() and loadCheckpoint() with a file";
  throw new TypeError(
    `Cannot ${action} as 'kv' must be a Deno KV store (${where}): current value is ${
      formatValue(kv)
    }`,
  );
}
