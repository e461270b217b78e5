/**
 * Checkpoints in the safetensors format: the parameters under their own
 * names (a PyTorch user loads the model weights directly), each exp_avg
 * under `exp_avg/<name>` (F32, or BF16 for a `momentumDtype: "bfloat16"`
 * optimizer; for 8-bit moments, U8 codes with their F32 scales under
 * `exp_avg_absmax/<name>` and the codebook once, `exp_avg_qmap`, as
 * bitsandbytes' `state1`, `absmax1` and `qmap1`), and in `__metadata__` the format, its version and,
 * as JSON, the groups' hyperparameters, the iteration count, an
 * {@linkcode LrScheduler}'s step and each tensor's SHA-256 (checked on load).
 *
 * {@linkcode encodeCheckpoint} / {@linkcode decodeCheckpoint} work on bytes
 * (browsers, Deno Deploy); {@linkcode saveCheckpoint} /
 * {@linkcode loadCheckpoint} on files, with atomic writes.
 *
 * @module
 */

import {
  checkFiniteTensor,
  CHECKSUMS_KEY,
  encodeWithChecksums,
  verifyChecksums,
} from "./_verification.ts";
import type { CheckpointCodec, CodecLoadOptions, CodecSaveOptions } from "./checkpoint_codec.ts";
import { readWholeFile, writeAtomically } from "./files.ts";
import { formatValue } from "../_internal/format.ts";
import { parseUntrustedJson } from "../_internal/json_keys.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type TensorRead,
  type TensorToWrite,
} from "./safetensors.ts";
import { type MomentumDtype, roundToBfloat16, widenBfloat16 } from "../store/moment_dtype.ts";
import { DYNAMIC_MAP } from "../store/dynamic_map.ts";
import { dequantizeUint8 } from "../store/uint8_moments.ts";
import { sameShape } from "../_internal/shape.ts";
import type { DecoupledLionW } from "../optimizer/decoupled_lionw.ts";
import type { LrScheduler } from "../training/lr_scheduler.ts";
import type { Parameter } from "../store/parameter.ts";
import type { LionParameterState, LionStateDict } from "../optimizer/state_dict.ts";

/** The format name in `__metadata__.format`. */
export const CHECKPOINT_FORMAT = "lionw-checkpoint";
/** The version in `__metadata__.format_version`; a reader refuses others. */
export const CHECKPOINT_VERSION = "1";
/** The prefix of a moment's tensor name: `exp_avg/<parameter name>`. */
export const MOMENT_PREFIX = "exp_avg/";
/** The prefix of an 8-bit moment's scales: `exp_avg_absmax/<parameter name>`. */
export const ABSMAX_PREFIX = "exp_avg_absmax/";
/** The name of the 8-bit moments' codebook (256 F32 values), saved once. */
export const QMAP_NAME = "exp_avg_qmap";
/** Metadata keys the format uses; user metadata may not take them. */
const RESERVED_KEYS: readonly string[] = ["format", "format_version", "lionw_state", CHECKSUMS_KEY];

/** Options of {@linkcode encodeCheckpoint} and {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /**
   * The checkpoint format.
   *
   * @default {SAFETENSORS_CHECKPOINT}
   */
  codec?: CheckpointCodec;
  /** Strings to store in `__metadata__` beside the format's own keys. */
  metadata?: Readonly<Record<string, string>>;
  /** A scheduler whose step `t` is saved with the optimizer. */
  scheduler?: LrScheduler;
}

/** Options of {@linkcode decodeCheckpoint} and {@linkcode loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /**
   * The checkpoint format.
   *
   * @default {SAFETENSORS_CHECKPOINT}
   */
  codec?: CheckpointCodec;
  /** A scheduler to restore to the saved step (the checkpoint must hold one). */
  scheduler?: LrScheduler;
}

/** What the format keeps in `__metadata__.lionw_state`. */
interface SavedState {
  readonly paramGroups: LionStateDict["paramGroups"];
  readonly iterations: number;
  readonly scheduler?: { readonly t: number };
}

function optimizerParameters(opt: DecoupledLionW): Parameter[] {
  return opt.paramGroups.flatMap((group) => [...group.params]);
}

function checkUserMetadata(metadata: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(metadata)) {
    if (RESERVED_KEYS.includes(key)) {
      throw new RangeError(
        `Cannot save checkpoint as metadata key "${key}" is reserved by the format (${
          RESERVED_KEYS.join(", ")
        })`,
      );
    }
    if (typeof value !== "string") {
      throw new TypeError(
        `Cannot save checkpoint as metadata "${key}" must be a string: current value is ${
          formatValue(value)
        }`,
      );
    }
  }
}

/**
 * The checkpoint of `opt` as safetensors bytes, without I/O (for browsers
 * and Deno Deploy). State kept on a device (`gpujs`) is pulled first.
 *
 * @example Bytes out, bytes in
 * ```ts
 * import { DecoupledLionW, decodeCheckpoint, encodeCheckpoint, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2], [1, 2]);
 * await using opt = new DecoupledLionW([w], { lr: 0.1 });
 * w.grad = [1, -1];
 * await opt.step();
 * const bytes = await encodeCheckpoint(opt, { metadata: { run: "demo" } });
 *
 * const v = new ParameterStore().add("w", [2]);
 * await using resumed = new DecoupledLionW([v], { lr: 0.1 });
 * const metadata = await decodeCheckpoint(resumed, bytes);
 * assert.deepEqual([...v.data], [...w.data]);
 * assert.equal(resumed.iterations, 1);
 * assert.equal(metadata.run, "demo");
 * ```
 *
 * @param opt The optimizer.
 * @param options Metadata and a scheduler to save with it.
 * @returns The file's bytes.
 * @throws {RangeError} When a metadata key is one the format uses, or a
 * moment's name would be a parameter's.
 * @throws {Error} When a step is in flight or the optimizer is closed.
 */
export async function encodeCheckpoint(
  opt: DecoupledLionW,
  options: SaveCheckpointOptions = {},
): Promise<Uint8Array> {
  return await (options.codec ?? SAFETENSORS_CHECKPOINT).encode(opt, options);
}

async function encodeSafetensorsCheckpoint(
  opt: DecoupledLionW,
  options: CodecSaveOptions,
): Promise<Uint8Array> {
  const metadata = options.metadata ?? {};
  checkUserMetadata(metadata);
  await opt.pullState();
  const dict = opt.stateDict();
  const params = optimizerParameters(opt);
  const names = new Set(params.map((p) => p.name));
  const tensors: TensorToWrite[] = params.map((p) => ({
    name: p.name,
    shape: p.shape,
    data: p.data,
  }));
  for (const param of params) {
    const entry = dict.state[param.name];
    if (entry === undefined) continue;
    tensors.push(...momentTensors(param, entry, opt.momentumDtype));
  }
  if (tensors.some((t) => t.name.startsWith(ABSMAX_PREFIX))) {
    tensors.push({ name: QMAP_NAME, shape: [256], data: DYNAMIC_MAP });
  }
  for (const { name } of tensors.slice(params.length)) {
    if (names.has(name)) {
      throw new RangeError(
        `Cannot save checkpoint as a moment would be stored as '${name}', the name of a parameter`,
      );
    }
  }
  const saved: SavedState = {
    paramGroups: dict.paramGroups,
    iterations: dict.iterations,
    ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler.stateDict() }),
  };
  return await encodeWithChecksums(
    tensors.map((tensor) => tensor.name),
    (checksums) =>
      encodeSafetensors(tensors, {
        ...metadata,
        format: CHECKPOINT_FORMAT,
        format_version: CHECKPOINT_VERSION,
        lionw_state: JSON.stringify(saved),
        [CHECKSUMS_KEY]: checksums,
      }),
  );
}

/**
 * A parameter's moment as the file keeps it: BF16 for a bfloat16 optimizer
 * (exact: they are bfloat16 values), U8 codes and F32 scales for 8-bit
 * moments, F32 otherwise.
 */
function momentTensors(
  param: Parameter,
  entry: LionParameterState,
  momentumDtype: MomentumDtype,
): TensorToWrite[] {
  const name = `${MOMENT_PREFIX}${param.name}`;
  const { shape } = param;
  if (momentumDtype === "bfloat16") {
    return [{ name, shape, dtype: "BF16", data: roundToBfloat16(entry.expAvg) }];
  }
  if (entry.quantized === undefined) return [{ name, shape, data: entry.expAvg }];
  const { codes, absmax } = entry.quantized;
  return [
    { name, shape, dtype: "U8", data: codes },
    { name: `${ABSMAX_PREFIX}${param.name}`, shape: [absmax.length], data: absmax },
  ];
}

function invalid(message: string): Error {
  return new Error(`Cannot read checkpoint as ${message}`);
}

function savedStateOf(metadata: Readonly<Record<string, string>>): SavedState {
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw invalid(
      `its format is ${formatValue(metadata.format)}, not "${CHECKPOINT_FORMAT}"`,
    );
  }
  if (metadata.format_version !== CHECKPOINT_VERSION) {
    throw invalid(
      `its format version ${
        formatValue(metadata.format_version)
      } is not one this library reads ("${CHECKPOINT_VERSION}")`,
    );
  }
  const text = metadata.lionw_state;
  if (text === undefined) throw invalid("its metadata has no lionw_state");
  let saved: unknown;
  try {
    saved = parseUntrustedJson(text, "lionw_state");
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (saved === null || typeof saved !== "object" || Array.isArray(saved)) {
    throw invalid("its lionw_state is not a JSON object");
  }
  const { paramGroups, iterations, scheduler, ...rest } = saved as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw invalid(`its lionw_state has unknown fields ${unknown.join(", ")}`);
  if (!Array.isArray(paramGroups)) throw invalid("its lionw_state has no list of paramGroups");
  if (typeof iterations !== "number" || !Number.isSafeInteger(iterations) || iterations < 0) {
    throw invalid(`its iterations ${formatValue(iterations)} is not an integer >= 0`);
  }
  if (scheduler !== undefined) {
    const t = (scheduler as { t?: unknown } | null)?.t;
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
      throw invalid(`its scheduler step ${formatValue(t)} is not an integer >= 0`);
    }
  }
  return saved as SavedState;
}

/** A float32 copy of a tensor's little-endian bytes (the file's bytes may be unaligned); BF16 widened, exactly. */
function float32Copy({ dtype, bytes }: TensorRead): Float32Array {
  if (dtype === "BF16") {
    const words = new Uint16Array(bytes.length / 2);
    new Uint8Array(words.buffer).set(bytes);
    return widenBfloat16(words);
  }
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/**
 * The codebook a file's 8-bit moments were saved with, and whether it is
 * this library's (then their codes load as they are).
 */
function savedCodebook(tensors: ReadonlyMap<string, TensorRead>): Float32Array | undefined {
  const qmap = tensors.get(QMAP_NAME);
  if (qmap === undefined) return undefined;
  if (qmap.dtype !== "F32" || !sameShape(qmap.shape, [256])) {
    throw invalid(`tensor "${QMAP_NAME}" must be F32 of shape [256]`);
  }
  const values = float32Copy(qmap);
  checkFiniteTensor(QMAP_NAME, values);
  return values;
}

/** An 8-bit moment read: its codes, its scales (checked), its values by the file's codebook. */
function quantizedMoment(
  param: Parameter,
  codes: TensorRead,
  tensors: ReadonlyMap<string, TensorRead>,
  codebook: Float32Array | undefined,
): LionParameterState {
  const name = `${ABSMAX_PREFIX}${param.name}`;
  const scales = tensors.get(name);
  const blocks = Math.ceil(param.size / 256);
  if (scales === undefined || codebook === undefined) {
    throw invalid(
      `the U8 moment of '${param.name}' comes without ${
        scales === undefined ? `its scales ("${name}")` : `the codebook ("${QMAP_NAME}")`
      }`,
    );
  }
  if (scales.dtype !== "F32" || !sameShape(scales.shape, [blocks])) {
    throw invalid(`tensor "${name}" must be F32 of shape [${blocks}]`);
  }
  const absmax = float32Copy(scales);
  checkFiniteTensor(name, absmax);
  const quantized = { codes: codes.bytes.slice(), absmax };
  const expAvg = dequantizeUint8(quantized, codebook);
  // codes of another codebook are loaded by their values
  const ours = codebook.every((value, q) => Object.is(value, DYNAMIC_MAP[q]));
  return ours ? { expAvg, quantized } : { expAvg };
}

/** Matches the file's tensors to the optimizer's parameters: every one present, nothing else. */
function matchTensors(
  params: readonly Parameter[],
  tensors: ReadonlyMap<string, TensorRead>,
): { data: Map<Parameter, Float32Array>; state: Record<string, LionParameterState> } {
  const data = new Map<Parameter, Float32Array>();
  const state: Record<string, LionParameterState> = {};
  const known = new Set<string>([QMAP_NAME]);
  const codebook = savedCodebook(tensors);
  for (const param of params) {
    known.add(`${ABSMAX_PREFIX}${param.name}`);
    for (
      const [name, isMoment] of [[param.name, false], [
        `${MOMENT_PREFIX}${param.name}`,
        true,
      ]] as const
    ) {
      known.add(name);
      const tensor = tensors.get(name);
      if (tensor === undefined) {
        if (isMoment) continue; // a parameter never stepped has no moment
        throw invalid(`parameter '${param.name}' is missing from it`);
      }
      if (!sameShape(tensor.shape, param.shape)) {
        throw invalid(
          `tensor "${name}" has shape ${
            formatValue([...tensor.shape])
          } where parameter '${param.name}' has ${formatValue([...param.shape])}`,
        );
      }
      if (!isMoment && tensor.dtype !== "F32") {
        throw invalid(`parameter tensor "${name}" has dtype ${tensor.dtype}: parameters are F32`);
      }
      if (tensor.dtype === "U8") {
        state[param.name] = quantizedMoment(param, tensor, tensors, codebook);
        continue;
      }
      const values = float32Copy(tensor);
      checkFiniteTensor(name, values);
      if (isMoment) state[param.name] = { expAvg: values };
      else data.set(param, values);
    }
  }
  for (const name of tensors.keys()) {
    if (!known.has(name)) {
      throw invalid(
        `it holds tensor "${name}", which is no parameter of the optimizer nor its moment`,
      );
    }
  }
  return { data, state };
}

/**
 * Loads a checkpoint from bytes into `opt`: parameters, moments, groups'
 * hyperparameters, iterations, and the scheduler's step when one is given.
 * The bytes are untrusted: their structure, each tensor's SHA-256 (where the
 * file has them) and the finiteness of every value are checked before
 * anything changes, and any defect is an `Error` that names it, leaving
 * parameters, state, iterations and the scheduler as they were.
 *
 * @example Restore a run
 * ```ts
 * import { DecoupledLionW, decodeCheckpoint, encodeCheckpoint, ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const w = new ParameterStore().add("w", [2]);
 * await using opt = new DecoupledLionW([w]);
 * const bytes = await encodeCheckpoint(opt);
 * bytes[20] = 0x7b; // a damaged header
 * await assert.rejects(decodeCheckpoint(opt, bytes), /Cannot read checkpoint as/);
 * ```
 *
 * @param opt The optimizer to load into: same groups and parameter names and shapes.
 * @param bytes A checkpoint's bytes.
 * @param options A scheduler to restore.
 * @returns The checkpoint's `__metadata__` (its own keys included).
 * @throws {Error} Naming the defect, when the bytes are not a checkpoint
 * this optimizer can load; also when a step is in flight.
 * @throws {RangeError} When its groups, names or hyperparameters do not fit `opt`,
 * or a parameter or moment holds a value that is not finite (naming the tensor and element).
 */
export async function decodeCheckpoint(
  opt: DecoupledLionW,
  bytes: Uint8Array,
  options: LoadCheckpointOptions = {},
): Promise<Record<string, string>> {
  return await (options.codec ?? SAFETENSORS_CHECKPOINT).decode(opt, bytes, options);
}

async function decodeSafetensorsCheckpoint(
  opt: DecoupledLionW,
  bytes: Uint8Array,
  options: CodecLoadOptions,
): Promise<Record<string, string>> {
  const { tensors, metadata } = decodeSafetensors(bytes);
  const saved = savedStateOf(metadata);
  await verifyChecksums(tensors, metadata);
  const { scheduler } = options;
  if (scheduler !== undefined && saved.scheduler === undefined) {
    throw invalid("it holds no scheduler step to restore the given scheduler to");
  }
  const { data, state } = matchTensors(optimizerParameters(opt), tensors);
  await opt.pullState();
  const previous = opt.stateDict();
  // checks the groups and hyperparameters; changes nothing when they do not fit
  opt.loadStateDict({ state, paramGroups: saved.paramGroups, iterations: saved.iterations });
  if (scheduler !== undefined) {
    try {
      scheduler.loadStateDict(saved.scheduler!);
    } catch (error) {
      opt.loadStateDict(previous);
      throw error;
    }
  }
  for (const [param, values] of data) {
    param.data.set(values);
    param.markWritten();
  }
  return { ...metadata };
}

/**
 * Saves a checkpoint of `opt` to a safetensors file (Deno or Node),
 * atomically: a crash or an error mid-write leaves the previous file, and no
 * temporary file.
 *
 * @example Save, then resume elsewhere
 * ```ts
 * import { DecoupledLionW, loadCheckpoint, ParameterStore, saveCheckpoint } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * const w = new ParameterStore().add("fc.weight", [2, 2], [1, 2, 3, 4]);
 * await using opt = new DecoupledLionW([w], { lr: 0.1 });
 * w.grad = [1, -1, 1, -1];
 * await opt.step();
 * await saveCheckpoint(opt, path, { metadata: { epoch: "3" } });
 *
 * const v = new ParameterStore().add("fc.weight", [2, 2]);
 * await using resumed = new DecoupledLionW([v], { lr: 0.1 });
 * await loadCheckpoint(resumed, path);
 * assert.deepEqual(resumed.state(v)!.expAvg, opt.state(w)!.expAvg);
 * await Deno.remove(path);
 * ```
 *
 * @param opt The optimizer.
 * @param path The file to write (replaced if it exists).
 * @param options Metadata and a scheduler to save with it.
 * @throws {RangeError} When a metadata key is one the format uses.
 * @throws {Error} When the folder does not exist, and other I/O errors
 * (`Deno.errors.NotFound` in Deno, `ENOENT` in Node).
 */
export async function saveCheckpoint(
  opt: DecoupledLionW,
  path: string,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  await writeAtomically(path, await encodeCheckpoint(opt, options));
}

/**
 * Loads a checkpoint file into `opt` (Deno or Node), checking it first as
 * {@linkcode decodeCheckpoint} does.
 *
 * @param opt The optimizer to load into.
 * @param path The file.
 * @param options A scheduler to restore.
 * @returns The checkpoint's `__metadata__`.
 * @throws {Error} Naming the defect, when the file is not a checkpoint this optimizer can load.
 */
export async function loadCheckpoint(
  opt: DecoupledLionW,
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<Record<string, string>> {
  return await decodeCheckpoint(opt, await readWholeFile(path), options);
}

/**
 * This library's checkpoint format: a safetensors file (the parameters
 * under their names, `exp_avg/<name>`, the groups and iterations in its
 * metadata, each tensor's SHA-256), the default `codec` of every save and
 * load.
 *
 * @example The default, named
 * ```ts
 * import { DecoupledLionW, encodeCheckpoint, ParameterStore, SAFETENSORS_CHECKPOINT } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * await using opt = new DecoupledLionW([new ParameterStore().add("w", [2])]);
 * const named = await encodeCheckpoint(opt, { codec: SAFETENSORS_CHECKPOINT });
 * assert.deepEqual(named, await encodeCheckpoint(opt));
 * ```
 */
export const SAFETENSORS_CHECKPOINT: CheckpointCodec = Object.freeze({
  encode: encodeSafetensorsCheckpoint,
  decode: decodeSafetensorsCheckpoint,
});
