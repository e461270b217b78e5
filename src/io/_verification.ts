/**
 * What loading a checkpoint verifies beyond its format: per-tensor SHA-256
 * checksums, kept in `__metadata__` as JSON (`{ "<tensor name>": "<hex>" }`)
 * under {@linkcode CHECKSUMS_KEY}, and the finiteness of every loaded value.
 * A checkpoint that flipped a bit on disk or in transit is refused, naming
 * the tensor; one without the key (a file another program wrote) is read
 * with the other checks alone.
 *
 * @module
 */

import { formatValue } from "../_internal/format.ts";
import { parseUntrustedJson } from "../_internal/json_keys.ts";
import { decodeSafetensors, type TensorRead } from "./safetensors.ts";

/** The metadata key of the checksums. */
export const CHECKSUMS_KEY = "lionw_sha256";

const HEX_DIGEST = /^[0-9a-f]{64}$/;
const PLACEHOLDER = "0".repeat(64);

/**
 * SHA-256 of `bytes`, as lowercase hex. Web Crypto refuses views of shared
 * memory, so those are copied first.
 *
 * @param bytes The bytes.
 * @returns The digest.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const plain = bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", plain as Uint8Array<ArrayBuffer>),
  );
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Encodes a file with each tensor's checksum in its metadata, hashing the
 * tensors where the file holds them (a plain buffer, no extra copy): `encode`
 * runs once with a placeholder of the digests' length, which is then
 * overwritten in the header with the digests of the encoded tensors.
 *
 * @param names The names of the tensors `encode` writes.
 * @param encode Encodes the file with the given value for {@linkcode CHECKSUMS_KEY}.
 * @returns The file's bytes.
 */
export async function encodeWithChecksums(
  names: readonly string[],
  encode: (checksums: string) => Uint8Array,
): Promise<Uint8Array> {
  const placeholder = JSON.stringify(Object.fromEntries(names.map((n) => [n, PLACEHOLDER])));
  const bytes = encode(placeholder);
  const { tensors } = decodeSafetensors(bytes);
  const digests: Record<string, string> = {};
  for (const name of names) digests[name] = await sha256Hex(tensors.get(name)!.bytes);
  // the header holds the placeholder as a JSON string; the digests' text has the same length
  const [from, to] = [placeholder, JSON.stringify(digests)].map((text) =>
    new TextEncoder().encode(JSON.stringify(text))
  ) as [Uint8Array, Uint8Array];
  const at = indexOf(bytes.subarray(0, headerEnd(bytes)), from);
  bytes.set(to, at);
  return bytes;
}

function headerEnd(bytes: Uint8Array): number {
  return 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error("The checksums' placeholder is not in the header"); // unreachable
}

/**
 * Checks each tensor against its checksum, where the metadata has them:
 * every tensor of the file must have one, and no other name.
 *
 * @param tensors The file's tensors.
 * @param metadata Its metadata.
 * @returns Whether the file had checksums.
 * @throws {Error} Naming the tensor, when one does not match or the list is malformed.
 */
export async function verifyChecksums(
  tensors: ReadonlyMap<string, TensorRead>,
  metadata: Readonly<Record<string, string>>,
): Promise<boolean> {
  const text = metadata[CHECKSUMS_KEY];
  if (text === undefined) return false;
  const fail = (message: string): never => {
    throw new Error(`Cannot read checkpoint as ${message}`);
  };
  let digests: unknown;
  try {
    digests = parseUntrustedJson(text, CHECKSUMS_KEY);
  } catch (error) {
    fail((error as Error).message);
  }
  if (digests === null || typeof digests !== "object" || Array.isArray(digests)) {
    fail(`its ${CHECKSUMS_KEY} is not a JSON object`);
  }
  const listed = digests as Record<string, unknown>;
  for (const name of Object.keys(listed)) {
    if (!tensors.has(name)) fail(`its ${CHECKSUMS_KEY} lists "${name}", which it does not hold`);
  }
  for (const [name, tensor] of tensors) {
    const expected = listed[name];
    if (typeof expected !== "string" || !HEX_DIGEST.test(expected)) {
      fail(`its ${CHECKSUMS_KEY} has no SHA-256 for tensor "${name}": ${formatValue(expected)}`);
    }
    if (await sha256Hex(tensor.bytes) !== expected) {
      fail(`tensor "${name}" does not match its SHA-256: the file is damaged`);
    }
  }
  return true;
}

/**
 * Refuses a tensor holding a value that is not finite, as
 * `ParameterStore.add` refuses such initial values: training would go on
 * from NaN silently.
 *
 * @param name The tensor's name in the file.
 * @param values Its values.
 * @throws {RangeError} Naming the tensor, the index and the value.
 */
export function checkFiniteTensor(name: string, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    // value − value is 0 for every finite value, NaN for NaN and ±Infinity
    if (value - value === 0) continue;
    throw new RangeError(
      `Cannot read checkpoint as tensor "${name}" must be finite: element ${i} is ${
        formatValue(value)
      }`,
    );
  }
}
