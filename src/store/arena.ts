/**
 * An arena: one `WebAssembly.Memory` that holds the data, gradient and
 * exp_avg slots of many parameters, so that a WebAssembly kernel can update
 * them in place and workers can share them without a copy.
 *
 * Where shared memory is available the arena is a *shared* memory (its
 * buffer is a `SharedArrayBuffer`) that grows in place up to its limit, and
 * views handed out earlier stay valid. Elsewhere (a page that is not
 * cross-origin isolated, say) it is a plain memory of fixed capacity, since
 * growing a plain memory would detach every view handed out.
 *
 * @module
 */

import { KERNEL_TABLES, writeKernelTables } from "./uint8_moments.ts";

/** WebAssembly page size in bytes. */
export const PAGE_BYTES = 65_536;
/** Slot alignment in bytes: a cache line, so that SIMD loads are aligned and
 * two workers never write the same line through adjacent tensors. */
export const SLOT_ALIGN = 64;
/** The wasm32 limit: 65,536 pages. */
export const MAX_ARENA_BYTES = 4 * 1024 ** 3;
/** Capacity of the first arena without shared memory; later ones double. */
const FIRST_PLAIN_ARENA_BYTES = 1024 ** 2;

/** Rounds `bytes` up to a multiple of `multiple` (a power of two). */
export function alignUp(bytes: number, multiple: number): number {
  return Math.ceil(bytes / multiple) * multiple;
}

/**
 * Whether `buffer` is shared. Safe where `SharedArrayBuffer` is not defined
 * (a page that is not cross-origin isolated).
 *
 * @param buffer A buffer.
 * @returns `true` for a `SharedArrayBuffer`.
 */
export function isShared(buffer: ArrayBufferLike): boolean {
  return typeof SharedArrayBuffer !== "undefined" && buffer instanceof SharedArrayBuffer;
}

/** Whether this runtime can create shared WebAssembly memory. */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  try {
    return isShared(new WebAssembly.Memory({ initial: 0, maximum: 1, shared: true }).buffer);
  } catch {
    return false;
  }
}

/** One memory and the bytes handed out from it. */
export class Arena {
  /** The memory; its buffer is a `SharedArrayBuffer` when `shared`. */
  readonly memory: WebAssembly.Memory;
  /** Whether the memory is shared (and so growable in place). */
  readonly shared: boolean;
  /** The most bytes this arena may hold. */
  readonly limitBytes: number;
  #usedBytes = 0;

  private constructor(memory: WebAssembly.Memory, shared: boolean, limitBytes: number) {
    this.memory = memory;
    this.shared = shared;
    this.limitBytes = limitBytes;
  }

  /**
   * Opens an arena that can take at least `firstBytes`.
   *
   * @param firstBytes The bytes of the first allocation.
   * @param limitBytes The store's arena limit (a multiple of the page size).
   * @param shared Whether to use shared memory.
   * @param previousPlainBytes Capacity of the previous plain arena, for doubling.
   */
  static open(
    firstBytes: number,
    limitBytes: number,
    shared: boolean,
    previousPlainBytes: number,
  ): Arena {
    const maximum = limitBytes / PAGE_BYTES;
    const needed = KERNEL_TABLES.bytes + firstBytes;
    let arena: Arena;
    if (shared) {
      const initial = Math.ceil(needed / PAGE_BYTES);
      arena = new Arena(
        new WebAssembly.Memory({ initial, maximum, shared: true }),
        true,
        limitBytes,
      );
    } else {
      const capacity = Math.min(
        limitBytes,
        alignUp(Math.max(needed, FIRST_PLAIN_ARENA_BYTES, 2 * previousPlainBytes), PAGE_BYTES),
      );
      const pages = capacity / PAGE_BYTES;
      arena = new Arena(
        new WebAssembly.Memory({ initial: pages, maximum: pages }),
        false,
        capacity,
      );
    }
    // the 8-bit rule's tables come first, where the wasm kernel looks for them
    writeKernelTables(arena.memory.buffer);
    arena.#usedBytes = KERNEL_TABLES.bytes;
    return arena;
  }

  /** Bytes handed out so far. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Hands out `bytes` (a multiple of {@linkcode SLOT_ALIGN}), growing a
   * shared memory as needed.
   *
   * @returns The byte offset, or `undefined` when the arena is full.
   */
  allocate(bytes: number): number | undefined {
    const offset = this.#usedBytes;
    const end = offset + bytes;
    if (end > this.limitBytes) return undefined;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      if (!this.shared) return undefined;
      this.memory.grow(Math.ceil((end - have) / PAGE_BYTES));
    }
    this.#usedBytes = end;
    return offset;
  }

  /** A float32 view of `length` elements at `byteOffset`. */
  view(byteOffset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, byteOffset, length);
  }
}
