/**
 * {@linkcode ParameterStore}: the shared memory that holds every parameter,
 * gradient and exp_avg slot of a model.
 *
 * @module
 */

import {
  isUint8Moment,
  momentSlotWords,
  MOMENTUM_DTYPES,
  type MomentumDtype,
  UINT8_BLOCK_WORDS,
} from "./moment_dtype.ts";
import { KERNEL_TABLES } from "./uint8_moments.ts";
import { formatValue } from "../_internal/format.ts";
import { checkNumbers } from "../_internal/validate.ts";
import {
  alignUp,
  Arena,
  MAX_ARENA_BYTES,
  PAGE_BYTES,
  sharedMemoryAvailable,
  SLOT_ALIGN,
} from "./arena.ts";
import { Parameter } from "./parameter.ts";
import type { ParameterSlots, StoreMemory } from "./slots.ts";

/**
 * Options of {@linkcode ParameterStore}.
 *
 * @example Small arenas, to see a model spread over several memories
 * ```ts
 * import { ParameterStore, type ParameterStoreOptions } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const options: ParameterStoreOptions = { arenaBytes: 65536 };
 * const store = new ParameterStore(options);
 * store.add("a", [2500]);
 * store.add("b", [2500]); // 3 slots of 10 KB do not fit beside "a" and the kernels' tables
 * assert.equal(store.arenaCount, 2);
 * ```
 */
export interface ParameterStoreOptions {
  /**
   * The most bytes one arena (one `WebAssembly.Memory`) may hold: a multiple
   * of 65,536 up to 4 GiB, the wasm32 limit. A store larger than this spreads
   * its parameters over several arenas; each parameter's three slots stay in
   * one arena. Lower it to exercise several arenas with small models.
   *
   * @default {4294967296}
   */
  arenaBytes?: number;
  /**
   * Whether to use shared memory (a `SharedArrayBuffer`), which workers need.
   * `false` gives plain memory, as used where shared memory is unavailable.
   *
   * @default {true where the runtime has SharedArrayBuffer}
   */
  shared?: boolean;
  /**
   * The size of the exp_avg slots: `"float32"` (4 bytes an element),
   * `"bfloat16"` (2 bytes: 10 instead of 12 bytes per parameter), for
   * optimizers with `momentumDtype: "bfloat16"`, or `"uint8"` (1.016 bytes:
   * 9.02 bytes per parameter; tensors under 4,096 elements keep 4), for
   * optimizers with `momentumDtype: "uint8"`. A store of float32 slots
   * serves either (in part of each slot).
   *
   * @default {"float32"}
   */
  momentumDtype?: MomentumDtype;
}

const memoryOf = new WeakMap<ParameterStore, StoreMemory>();

/**
 * A chunk: three regions of `capacity` elements each — data, gradients,
 * exp_avg — in one arena. Parameters are packed one after another in each
 * region (64-byte aligned), so a run of small tensors is three long
 * contiguous streams for the kernel rather than three short ones per tensor
 * (measured: 1,000 tensors of 1,000 elements update 1.4× faster so).
 */
interface Chunk {
  /** Index of the arena. */
  readonly arena: number;
  /** Byte offset of the data region. */
  readonly base: number;
  /** Elements per region. */
  readonly capacity: number;
  /** Bytes from one region to the next: the capacity plus a skew. */
  readonly stride: number;
  /** The exp_avg region's type (a uint8 store keeps small tensors' float32 moments in chunks of their own). */
  readonly moments: MomentumDtype;
  /** Bytes of the exp_avg region. */
  readonly momentCapacity: number;
  /** Elements handed out. */
  used: number;
  /** Bytes of the exp_avg region handed out. */
  momentUsed: number;
}

/**
 * A slot's exp_avg bytes in a region of type `moments`: float32 and
 * bfloat16 moments as many elements as the data slot holds (16-element
 * aligned), 8-bit ones their blocks, 64-byte aligned.
 */
function momentSlotBytes(moments: MomentumDtype, size: number): number {
  const elements = alignUp(size, SLOT_ALIGN / 4);
  if (moments === "float32") return 4 * elements;
  if (moments === "bfloat16") return 2 * elements;
  return alignUp(momentSlotWords(moments, size) * 4, SLOT_ALIGN);
}

/**
 * An exp_avg region's bytes for `capacity` elements: float32's stride, half
 * of it for bfloat16; 8-bit moments take 260 bytes a 256 elements, and a
 * kilobyte for the tensors' rounding (a tensor that does not fit goes to
 * the next chunk).
 */
function momentRegionBytes(moments: MomentumDtype, capacity: number, stride: number): number {
  if (moments === "float32") return stride;
  if (moments === "bfloat16") return alignUp(capacity * 2, SLOT_ALIGN);
  return alignUp(Math.ceil((capacity * UINT8_BLOCK_WORDS * 4) / 256) + 1024, SLOT_ALIGN);
}

/** The open chunk of one kind of exp_avg region, and the size of the next. */
interface OpenChunk {
  chunk: Chunk | undefined;
  next: number;
}

/**
 * Bytes between a chunk's regions beyond their size. Regions a large power
 * of two apart make the kernel's three streams collide in the caches:
 * measured on a 32M-element tensor, 103 ms a step with regions 128 MiB
 * apart, 19 ms with this skew (the C roof: 14 ms). Any skew of 20 KiB or
 * more did; this one is also no multiple of 4 KiB.
 */
const REGION_SKEW = 65_536 + 1_344;

/** A region's stride: its bytes, plus the skew for regions of 64 KiB or more where it fits. */
function regionStride(capacity: number, arenaBytes: number): number {
  const bytes = capacity * 4;
  return bytes >= 65_536 && 3 * (bytes + REGION_SKEW) <= arenaBytes ? bytes + REGION_SKEW : bytes;
}

/** Elements per region of the first chunk; later ones double up to the maximum. */
const FIRST_CHUNK_ELEMENTS = 2 ** 14;
const MAX_CHUNK_ELEMENTS = 2 ** 22;

/**
 * The arenas of `store`; internal to this package.
 *
 * @param store A store.
 * @returns Its arenas, in order.
 */
export function storeArenas(store: ParameterStore): readonly Arena[] {
  return memoryOf.get(store)!.arenas;
}

/**
 * Owns the shared memory of a model: each parameter's data, gradient and
 * exp_avg slots, 64-byte aligned in a `WebAssembly.Memory` whose buffer is a
 * `SharedArrayBuffer`, so kernels update them in place and workers share
 * them without a copy.
 *
 * Add every parameter before building an optimizer over the store: while an
 * optimizer uses it (until its `close()`), `add` throws, because the
 * optimizer's kernels and workers were given the memory as it was.
 *
 * @example Build a two-layer model's parameters
 * ```ts
 * import { ParameterStore } from "@decoupled/lionw";
 * import assert from "node:assert/strict";
 *
 * const store = new ParameterStore();
 * const w = store.add("fc1.weight", [4, 3], Array.from({ length: 12 }, (_, i) => i / 10));
 * const b = store.add("fc1.bias", [3]); // zeros
 *
 * assert.equal(store.size, 15);
 * assert.equal(store.get("fc1.bias"), b);
 * assert.ok(w.data.buffer instanceof SharedArrayBuffer);
 * assert.equal(w.data.byteOffset % 16, 0);
 * assert.deepEqual([...b.data], [0, 0, 0]);
 * ```
 */
export class ParameterStore implements Iterable<Parameter> {
  readonly #parameters: Parameter[] = [];
  readonly #byName = new Map<string, Parameter>();
  readonly #arenaBytes: number;
  readonly #shared: boolean;
  readonly #momentumDtype: MomentumDtype;
  #size = 0;
  readonly #open = new Map<MomentumDtype, OpenChunk>();

  /**
   * Makes an empty store.
   *
   * @param options Arena limit and memory kind.
   * @throws {RangeError} When `arenaBytes` is not a multiple of 65,536 in
   * [65,536, 4 GiB], or `shared` is asked for where it is unavailable.
   * @throws {TypeError} When `shared` is not a boolean.
   */
  constructor(options: ParameterStoreOptions = {}) {
    const arenaBytes = options.arenaBytes ?? MAX_ARENA_BYTES;
    if (
      typeof arenaBytes !== "number" || !Number.isInteger(arenaBytes) ||
      arenaBytes < PAGE_BYTES || arenaBytes > MAX_ARENA_BYTES || arenaBytes % PAGE_BYTES !== 0
    ) {
      throw new RangeError(
        `Cannot create parameter store as 'arenaBytes' must be a multiple of 65536 in [65536, 4294967296]: current value is ${
          formatValue(arenaBytes)
        }`,
      );
    }
    const available = sharedMemoryAvailable();
    const shared = options.shared ?? available;
    if (typeof shared !== "boolean") {
      throw new TypeError(
        `Cannot create parameter store as 'shared' must be a boolean: current value is ${
          formatValue(shared)
        }`,
      );
    }
    if (shared && !available) {
      throw new RangeError(
        "Cannot create parameter store as 'shared' is true but this runtime has no shared WebAssembly memory",
      );
    }
    const momentumDtype = options.momentumDtype ?? "float32";
    if (!MOMENTUM_DTYPES.includes(momentumDtype)) {
      throw new RangeError(
        `Cannot create parameter store as 'momentumDtype' must be "float32", "bfloat16" or "uint8": current value is ${
          formatValue(momentumDtype)
        }`,
      );
    }
    this.#arenaBytes = arenaBytes;
    this.#shared = shared;
    this.#momentumDtype = momentumDtype;
    memoryOf.set(this, { arenas: [], shared, momentumDtype, users: 0 });
  }

  /** Whether the memory is shared (a `SharedArrayBuffer`), so workers can use it. */
  get shared(): boolean {
    return this.#shared;
  }

  /** The size of the exp_avg slots (the `momentumDtype` option). */
  get momentumDtype(): MomentumDtype {
    return this.#momentumDtype;
  }

  /** The total number of elements over all parameters. */
  get size(): number {
    return this.#size;
  }

  /** The parameters, in the order they were added (a copy). */
  get parameters(): Parameter[] {
    return [...this.#parameters];
  }

  /** The number of arenas (memories) the parameters occupy. */
  get arenaCount(): number {
    return storeArenas(this).length;
  }

  /** Bytes of memory reserved for slots (whole chunks, padding included) and each arena's kernel tables. */
  get byteLength(): number {
    return storeArenas(this).reduce((total, arena) => total + arena.usedBytes, 0);
  }

  /**
   * Adds a parameter with slots for its data, gradient and exp_avg.
   *
   * @param name A unique, non-empty name (metrics and state dicts use it).
   * @param shape Positive integer dimensions; `[]` is a scalar.
   * @param initial Initial values, copied; zeros when omitted.
   * @returns The new parameter, its data a view into shared memory.
   * @throws {TypeError} When `name` is not a non-empty string, `shape` not an
   * array, or `initial` not array-like or holding an element that is not a
   * number.
   * @throws {RangeError} When the name is taken, a dimension is not a positive
   * integer, `initial` has the wrong length or a value that is not finite in
   * float32 (NaN, ±Infinity, beyond ±3.4e38), the parameter cannot fit in one
   * arena, or an optimizer uses the store. Nothing is added then.
   */
  add(name: string, shape: readonly number[], initial?: ArrayLike<number>): Parameter {
    const size = this.#validate(name, shape, initial);
    const { arenaIndex, arena, data, stride, expAvg } = this.#place(name, size);
    const momentWords = momentSlotWords(this.#momentumDtype, size);
    const slots: ParameterSlots = {
      memory: memoryOf.get(this)!,
      index: this.#parameters.length,
      arena: arenaIndex,
      data: data / 4,
      grad: (data + stride) / 4,
      expAvg: expAvg / 4,
      dataView: arena.view(data, size),
      gradView: arena.view(data + stride, size),
      expAvgView: arena.view(expAvg, momentWords),
      hasGrad: false,
      gradScan: null,
      gradViewShared: false,
      written: false,
      requiresGrad: true,
      owner: undefined,
    };
    if (initial !== undefined) slots.dataView.set(initial);
    const param = new Parameter(name, shape, slots);
    this.#parameters.push(param);
    this.#byName.set(name, param);
    this.#size += size;
    return param;
  }

  /**
   * The parameter called `name`.
   *
   * @param name A parameter name.
   * @returns The parameter, or `undefined` when there is none.
   */
  get(name: string): Parameter | undefined {
    return this.#byName.get(name);
  }

  /**
   * Whether `param` was made by this store.
   *
   * @param param A parameter.
   * @returns `true` when this store owns its memory.
   */
  has(param: Parameter): boolean {
    return this.#byName.get(param.name) === param;
  }

  /** Iterates the parameters in the order they were added. */
  [Symbol.iterator](): Iterator<Parameter> {
    return this.#parameters[Symbol.iterator]();
  }

  #validate(name: string, shape: readonly number[], initial?: ArrayLike<number>): number {
    if (typeof name !== "string" || name.length === 0) {
      throw new TypeError(
        `Cannot add parameter as 'name' must be a non-empty string: current value is ${
          formatValue(name)
        }`,
      );
    }
    if (memoryOf.get(this)!.users > 0) {
      throw new RangeError(
        `Cannot add parameter '${name}' as an optimizer uses this store: add every parameter before building the optimizer, or close it first`,
      );
    }
    if (this.#byName.has(name)) {
      throw new RangeError(`Cannot add parameter '${name}' as the name is already taken`);
    }
    if (!Array.isArray(shape)) {
      throw new TypeError(
        `Cannot add parameter '${name}' as 'shape' must be an array: current value is ${
          formatValue(shape)
        }`,
      );
    }
    for (const [i, dim] of shape.entries()) {
      if (typeof dim !== "number" || !Number.isInteger(dim) || dim <= 0) {
        throw new RangeError(
          `Cannot add parameter '${name}' as 'shape[${i}]' must be a positive integer: current value is ${
            formatValue(dim)
          }`,
        );
      }
    }
    const size = shape.reduce((product: number, dim: number) => product * dim, 1);
    const slotBytes = 2 * 4 * alignUp(size, SLOT_ALIGN / 4) +
      momentSlotBytes(this.#momentumDtype, size);
    if (slotBytes > this.#arenaBytes - KERNEL_TABLES.bytes) {
      throw new RangeError(
        `Cannot add parameter '${name}' as its ${size} elements need ${slotBytes} bytes of slots, more than one arena holds (${this.#arenaBytes} bytes, of which the kernels' tables take ${KERNEL_TABLES.bytes})`,
      );
    }
    if (initial !== undefined) {
      if (initial === null || typeof initial !== "object" || typeof initial.length !== "number") {
        throw new TypeError(
          `Cannot add parameter '${name}' as 'initial' must be an array of numbers: current value is ${
            formatValue(initial)
          }`,
        );
      }
      if (initial.length !== size) {
        throw new RangeError(
          `Cannot add parameter '${name}' as 'initial' must have ${size} values: current length is ${initial.length}`,
        );
      }
      checkNumbers(`Cannot add parameter '${name}'`, "initial", initial);
      checkFiniteValues(name, initial);
    }
    return size;
  }

  /**
   * Places a parameter's three slots: in the open chunk when it has room,
   * else in a new chunk (a parameter at least as large as the next chunk
   * gets one of its own, and the open chunk stays open for small ones).
   *
   * @returns The arena, the data slot's byte offset, the distance in bytes
   * from it to the gradient slot (the chunk's region size), and the exp_avg
   * slot's byte offset.
   */
  #place(
    name: string,
    size: number,
  ): { arenaIndex: number; arena: Arena; data: number; stride: number; expAvg: number } {
    const elements = alignUp(size, SLOT_ALIGN / 4);
    // a uint8 store keeps the float32 moments of small tensors in chunks of their own
    const moments = isUint8Moment(this.#momentumDtype, size) || this.#momentumDtype === "bfloat16"
      ? this.#momentumDtype
      : "float32";
    const momentBytes = momentSlotBytes(moments, size);
    let open = this.#open.get(moments);
    if (open === undefined) {
      this.#open.set(moments, open = { chunk: undefined, next: FIRST_CHUNK_ELEMENTS });
    }
    let chunk = open.chunk;
    if (
      chunk === undefined || chunk.used + elements > chunk.capacity ||
      chunk.momentUsed + momentBytes > chunk.momentCapacity
    ) {
      const bytesPerElement = 2 * 4 + momentSlotBytes(moments, 256) / 256;
      const maxCapacity =
        Math.floor((this.#arenaBytes - KERNEL_TABLES.bytes) / bytesPerElement / (SLOT_ALIGN / 4)) *
        (SLOT_ALIGN / 4);
      const next = Math.min(open.next, maxCapacity);
      const own = elements >= next;
      chunk = this.#openChunk(name, own ? elements : next, moments);
      if (!own || open.chunk === undefined) {
        open.chunk = chunk;
        if (!own) open.next = Math.min(2 * open.next, MAX_CHUNK_ELEMENTS);
      }
    }
    const data = chunk.base + chunk.used * 4;
    const expAvg = chunk.base + 2 * chunk.stride + chunk.momentUsed;
    chunk.used += elements;
    chunk.momentUsed += momentBytes;
    const arena = storeArenas(this)[chunk.arena]!;
    return { arenaIndex: chunk.arena, arena, data, stride: chunk.stride, expAvg };
  }

  /** Allocates a chunk of `capacity` elements per region from the last arena, or a new one. */
  #openChunk(name: string, capacity: number, moments: MomentumDtype): Chunk {
    const stride = regionStride(capacity, this.#arenaBytes - KERNEL_TABLES.bytes);
    const momentCapacity = momentRegionBytes(moments, capacity, stride);
    const bytes = 2 * stride + momentCapacity;
    const arenas = memoryOf.get(this)!.arenas;
    try {
      const last = arenas.at(-1);
      let base = last?.allocate(bytes);
      if (base === undefined) {
        arenas.push(Arena.open(bytes, this.#arenaBytes, this.#shared, last?.limitBytes ?? 0));
        base = arenas.at(-1)!.allocate(bytes)!;
      }
      return {
        arena: arenas.length - 1,
        base,
        capacity,
        stride,
        moments,
        momentCapacity,
        used: 0,
        momentUsed: 0,
      };
    } catch (error) {
      throw new RangeError(
        `Cannot add parameter '${name}' as ${bytes} bytes of memory could not be allocated: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
  }
}

/**
 * Initial values must be finite in float32: a NaN (an uninitialized array,
 * a bad division) or a value past float32's range would train silently on.
 */
function checkFiniteValues(name: string, values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(Math.fround(values[i]!))) continue;
    throw new RangeError(
      `Cannot add parameter '${name}' as 'initial[${i}]' must be finite in float32: current value is ${
        formatValue(values[i])
      }`,
    );
  }
}
