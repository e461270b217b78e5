/**
 * The safetensors format (huggingface/safetensors), F32 and BF16: an 8-byte
 * little-endian header length, a JSON header (tensor name → dtype, shape,
 * data offsets; `__metadata__` → strings), padded with spaces to 8 bytes,
 * then the tensors' bytes, contiguous from offset 0.
 *
 * Reading treats the bytes as untrusted: every field is checked before a
 * tensor is handed out.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { parseUntrustedJson } from "../_internal/json_keys.ts";

/** The largest header read (the reference implementation's bound). */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";

/**
 * The dtypes read and written: float32, bfloat16 (the moments of a bfloat16
 * optimizer) and uint8 (the codes of an 8-bit optimizer's moments).
 */
export type TensorDtype = "F32" | "BF16" | "U8";

const DTYPE_BYTES: Record<TensorDtype, number> = { F32: 4, BF16: 2, U8: 1 };

/** A tensor to write: float32 values, bfloat16 bits, or bytes. */
export type TensorToWrite =
  | { readonly name: string; readonly shape: readonly number[]; readonly data: Float32Array }
  | {
    readonly name: string;
    readonly shape: readonly number[];
    readonly dtype: "BF16";
    readonly data: Uint16Array;
  }
  | {
    readonly name: string;
    readonly shape: readonly number[];
    readonly dtype: "U8";
    readonly data: Uint8Array;
  };

/** A tensor read: its dtype, shape and bytes (a view into the file's bytes). */
export interface TensorRead {
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
}

/** What a safetensors file holds. */
export interface SafetensorsContent {
  readonly tensors: ReadonlyMap<string, TensorRead>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The tensors' bytes as a little-endian float32 copy (every platform JavaScript runs on is little-endian). */
function bytesOf(data: Float32Array | Uint16Array | Uint8Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Writes tensors and string metadata in the safetensors format.
 *
 * @param tensors The tensors, in the order their bytes are laid out.
 * @param metadata Strings for `__metadata__`.
 * @returns The file's bytes.
 */
export function encodeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata: Readonly<Record<string, string>>,
): Uint8Array {
  const header: Record<string, unknown> = { [METADATA_KEY]: metadata };
  let offset = 0;
  for (const tensor of tensors) {
    const end = offset + tensor.data.byteLength;
    const dtype = "dtype" in tensor ? tensor.dtype : "F32";
    header[tensor.name] = { dtype, shape: tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  let at = 8 + padded;
  for (const tensor of tensors) {
    out.set(bytesOf(tensor.data), at);
    at += tensor.data.byteLength;
  }
  return out;
}

/** A defect of the file: an Error whose message says what is wrong. */
function defect(message: string): Error {
  return new Error(`Cannot read checkpoint as ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function checkShape(name: string, shape: unknown): number[] {
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw defect(
      `tensor "${name}" has a shape that is not a list of integers >= 0: ${formatValue(shape)}`,
    );
  }
  return shape;
}

function checkOffsets(name: string, offsets: unknown, dataLength: number): [number, number] {
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1] || offsets[1] > dataLength
  ) {
    throw defect(
      `tensor "${name}" has data offsets outside the data (${dataLength} bytes): ${
        formatValue(offsets)
      }`,
    );
  }
  return offsets as [number, number];
}

/** Reads the header length and JSON, checking both fit in the bytes. */
function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8) throw defect(`it has ${bytes.length} bytes, fewer than a header length`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw defect(`its header length ${length} is over the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const headerLength = Number(length);
  if (8 + headerLength > bytes.length) {
    throw defect(
      `its header length ${headerLength} runs past the end of the ${bytes.length} bytes`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    throw defect("its header is not UTF-8");
  }
  let header: unknown;
  try {
    header = parseUntrustedJson(text, "the header");
  } catch (error) {
    throw defect((error as Error).message);
  }
  if (!isPlainObject(header)) throw defect("its header is not a JSON object");
  return { header, dataStart: 8 + headerLength };
}

function checkMetadata(metadata: unknown): Record<string, string> {
  if (metadata === undefined) return {};
  if (!isPlainObject(metadata)) throw defect(`its ${METADATA_KEY} is not an object`);
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") {
      throw defect(`its ${METADATA_KEY} value "${key}" is not a string: ${formatValue(value)}`);
    }
  }
  return metadata as Record<string, string>;
}

/**
 * Reads and checks a safetensors file of float32 tensors: header length
 * bounded and inside the bytes, JSON without repeated or forbidden keys,
 * dtype F32, BF16 or U8, shapes of integers >= 0, offsets inside the data,
 * contiguous from 0, not overlapping, covering the data, each of shape × 4
 * bytes, metadata strings only.
 *
 * @param bytes The file's bytes (untrusted).
 * @returns The tensors (views into `bytes`) and metadata.
 * @throws {Error} Naming the first defect found.
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContent {
  const { header, dataStart } = readHeader(bytes);
  const dataLength = bytes.length - dataStart;
  const metadata = checkMetadata(header[METADATA_KEY]);
  const entries: {
    name: string;
    dtype: TensorDtype;
    shape: number[];
    begin: number;
    end: number;
  }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    if (!isPlainObject(entry)) throw defect(`tensor "${name}" is not described by an object`);
    const keys = Object.keys(entry).sort().join(", ");
    if (keys !== "data_offsets, dtype, shape") {
      throw defect(`tensor "${name}" has the fields ${keys}, not data_offsets, dtype, shape`);
    }
    if (entry.dtype !== "F32" && entry.dtype !== "BF16" && entry.dtype !== "U8") {
      throw defect(
        `tensor "${name}" has dtype ${
          formatValue(entry.dtype)
        }: only "F32", "BF16" and "U8" are read`,
      );
    }
    const dtype: TensorDtype = entry.dtype;
    const shape = checkShape(name, entry.shape);
    const [begin, end] = checkOffsets(name, entry.data_offsets, dataLength);
    const elements = shape.reduce((a, b) => a * b, 1);
    if (end - begin !== elements * DTYPE_BYTES[dtype]) {
      throw defect(
        `tensor "${name}" of shape ${formatValue(shape)} needs ${
          elements * DTYPE_BYTES[dtype]
        } bytes but its offsets hold ${end - begin}`,
      );
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const { name, begin, end } of entries) {
    if (begin !== expected) {
      throw defect(
        begin < expected
          ? `tensor "${name}" overlaps the one before it (it starts at ${begin}, before ${expected})`
          : `the data has a gap before tensor "${name}" (bytes ${expected} to ${begin})`,
      );
    }
    expected = end;
  }
  if (expected !== dataLength) {
    throw defect(`the data has ${dataLength - expected} bytes after the last tensor`);
  }
  const tensors = new Map<string, TensorRead>();
  for (const { name, dtype, shape, begin, end } of entries) {
    tensors.set(name, { dtype, shape, bytes: bytes.subarray(dataStart + begin, dataStart + end) });
  }
  return { tensors, metadata };
}
