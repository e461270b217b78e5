/**
 * The checkpoint codec seam: how an optimizer's checkpoint becomes bytes
 * and back. Files (`saveCheckpoint`), Deno KV (`saveCheckpointKv`) and the
 * byte functions (`encodeCheckpoint`) all go through one codec, given as
 * the `codec` option (the safetensors format by default), so a new format
 * is a codec, and no storage changes for it.
 *
 * @module
 */

import type { DecoupledLionW } from "../optimizer/decoupled_lionw.ts";
import type { LrScheduler } from "../training/lr_scheduler.ts";

/** What a codec's `encode` takes beside the optimizer. */
export interface CodecSaveOptions {
  /** Strings to store beside the format's own metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** A scheduler whose step is saved with the optimizer. */
  readonly scheduler?: LrScheduler;
}

/** What a codec's `decode` takes beside the optimizer and the bytes. */
export interface CodecLoadOptions {
  /** A scheduler to restore to the saved step. */
  readonly scheduler?: LrScheduler;
}

/**
 * A checkpoint format: the bytes of an optimizer's checkpoint, and the
 * optimizer restored from them (checked before anything changes).
 *
 * @example A codec that wraps the default one (here, to count its calls)
 * ```ts
 * import {
 *   type CheckpointCodec,
 *   DecoupledLionW,
 *   decodeCheckpoint,
 *   encodeCheckpoint,
 *   ParameterStore,
 *   SAFETENSORS_CHECKPOINT,
 * } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const counting: CheckpointCodec = {
 *   encode: (opt, options) => (calls++, SAFETENSORS_CHECKPOINT.encode(opt, options)),
 *   decode: (opt, bytes, options) => (calls++, SAFETENSORS_CHECKPOINT.decode(opt, bytes, options)),
 * };
 * const w = new ParameterStore().add("w", [2], [1, 2]);
 * await using opt = new DecoupledLionW([w]);
 * const bytes = await encodeCheckpoint(opt, { codec: counting });
 * await decodeCheckpoint(opt, bytes, { codec: counting });
 * assert.equal(calls, 2);
 * ```
 */
export interface CheckpointCodec {
  /**
   * The checkpoint of `opt` as bytes.
   *
   * @param opt The optimizer.
   * @param options Metadata and a scheduler to save with it.
   * @returns The bytes.
   */
  encode(opt: DecoupledLionW, options: CodecSaveOptions): Promise<Uint8Array>;
  /**
   * Loads `bytes` into `opt`, checking everything first.
   *
   * @param opt The optimizer.
   * @param bytes A checkpoint's bytes.
   * @param options A scheduler to restore.
   * @returns The checkpoint's metadata.
   */
  decode(
    opt: DecoupledLionW,
    bytes: Uint8Array,
    options: CodecLoadOptions,
  ): Promise<Record<string, string>>;
}
