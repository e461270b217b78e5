/**
 * The memory a run of the sign-vote exchange's bits travels and is counted
 * in: every rank's sign words, then every rank's voting words (each rank's
 * part `stride` words, a multiple of 4), then the run's masks (a pair of
 * words per word of a rank's part) and the count's scratch. It is a
 * `WebAssembly.Memory` of its own so that the engine's kernel can count
 * the ballots where the all-gathers leave them
 * ({@linkcode LionKernel.tallyVotes}).
 *
 * @module
 */

import { type LionKernel, TALLY_SCRATCH_BYTES } from "../kernels/kernel.ts";

/** The bytes a `WebAssembly.Memory` can hold (65,536 pages). */
const MEMORY_LIMIT_BYTES = 2 ** 32;
const PAGE_BYTES = 65_536;

/** One run's ballots and masks. */
export class BallotBox {
  /** The memory they lie in. */
  readonly memory: WebAssembly.Memory;
  /** Every rank's sign bits: rank `r`'s part from word `r · stride`. */
  readonly signs: Uint32Array;
  /** Every rank's voting bits, laid out as {@linkcode BallotBox.signs}. */
  readonly voting: Uint32Array;
  /** After {@linkcode BallotBox.tally}: word `w`'s up and down masks at `2w` and `2w + 1`. */
  readonly masks: Int32Array;
  /** Words in a rank's part. */
  readonly stride: number;
  readonly #worldSize: number;

  /**
   * @param words The words of a rank's part (its blocks' bits).
   * @param worldSize The ranks.
   * @throws {RangeError} When the ballots do not fit in one `WebAssembly.Memory`.
   */
  constructor(words: number, worldSize: number) {
    // whole vectors of four words: the count reads them four at a time
    const stride = Math.ceil(words / 4) * 4;
    const part = 4 * stride * worldSize;
    const bytes = 2 * part + 8 * stride + TALLY_SCRATCH_BYTES;
    if (bytes > MEMORY_LIMIT_BYTES) {
      throw new RangeError(
        `Cannot hold the sign-vote ballots of ${
          32 * words
        } elements from ${worldSize} ranks (${bytes} bytes): a WebAssembly.Memory holds ${MEMORY_LIMIT_BYTES}`,
      );
    }
    // the kernel's module imports a memory with a maximum; this one never grows
    const pages = Math.ceil(bytes / PAGE_BYTES);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const { buffer } = this.memory;
    this.signs = new Uint32Array(buffer, 0, stride * worldSize);
    this.voting = new Uint32Array(buffer, part, stride * worldSize);
    this.masks = new Int32Array(buffer, 2 * part, 2 * stride);
    this.stride = stride;
    this.#worldSize = worldSize;
  }

  /**
   * Counts the gathered ballots into {@linkcode BallotBox.masks}.
   *
   * @param kernel The engine's kernel on the host.
   * @param abstaining Whether some rank abstains somewhere (else every element votes).
   */
  tally(kernel: LionKernel, abstaining: boolean): void {
    const { signs, voting, masks, stride } = this;
    kernel.tallyVotes(this.memory, {
      signs: signs.byteOffset,
      voting: abstaining ? voting.byteOffset : null,
      stride: 4 * stride,
      worldSize: this.#worldSize,
      words: stride,
      out: masks.byteOffset,
      scratch: masks.byteOffset + masks.byteLength,
    });
  }
}
