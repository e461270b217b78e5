/**
 * {@linkcode MpiCollective}: the {@linkcode Collective} of the ranks an
 * `mpiexec` started, over MPICH through Deno's FFI.
 *
 * Every collective is started nonblocking (`MPI_I…`) from the calling
 * thread, in the order the program calls them, and one at a time: two
 * collectives in flight on one communicator, started from different
 * threads, can be matched in different orders on different ranks and sum
 * the wrong buffers silently (measured: 42–60 % of trials). Buffers (and
 * the count arrays MPI reads during the operation) are held until the
 * request completes, as Deno does not keep them alive for a call in flight.
 *
 * @module
 */

import {
  type BlockingCollectives,
  checkCounts,
  type Collective,
  type CollectiveBuffer,
} from "../src/distributed/collective.ts";
import {
  MPI_COMM_WORLD,
  MPI_DOUBLE,
  MPI_FLOAT,
  MPI_IN_PLACE,
  MPI_MAX_COUNT,
  MPI_SUM,
  MPI_THREAD_MULTIPLE,
  type MpiSymbols,
  specialPointer,
} from "./mpich_abi.ts";
import { checkInitOptions, type MpiInitOptions } from "./init_options.ts";
import { mpiLibraryPath, openMpiLibrary, readEnv } from "./mpi_library.ts";
import { check, type ProgressMode, waitAsync, type WaitPolicy, waitSync } from "./request_wait.ts";

/**
 * Exit code of a job the watchdog aborted.
 *
 * @example Tell a timeout from other failures of a job
 * ```ts
 * import { TIMEOUT_EXIT_CODE } from "@decoupled/lionw/mpi";
 * import assert from "node:assert/strict";
 *
 * const exitCode: number = 124; // what mpiexec.mpich returned
 * assert.equal(exitCode === TIMEOUT_EXIT_CODE, true);
 * ```
 */
export const TIMEOUT_EXIT_CODE = 124;

let initialized: MpiCollective | undefined;

/**
 * The ranks of an MPI job (`MPI_COMM_WORLD`), for data-parallel training:
 * pass it as the optimizer's `collective`. Launch with
 * `mpiexec.mpich -n 2 deno run --allow-ffi --allow-env …`.
 *
 * Outside `mpiexec`, MPICH starts a job of one rank (world size 1).
 *
 * @example Average a value over the ranks
 * ```ts ignore
 * import { MpiCollective } from "@decoupled/lionw/mpi";
 *
 * const comm = await MpiCollective.init();
 * const x = new Float64Array([comm.rank]);
 * await comm.allReduceSum(x);
 * console.log(`rank ${comm.rank} of ${comm.worldSize}: mean rank ${x[0]! / comm.worldSize}`);
 * await comm.close();
 * ```
 */
export class MpiCollective implements Collective {
  /** This process's rank in `MPI_COMM_WORLD`. */
  readonly rank: number;
  /** The number of ranks. */
  readonly worldSize: number;
  /** Ranks on this machine (`MPI_LOCALNRANKS`; 1 when unknown). */
  readonly localRanks: number;
  /** How this rank waits for collectives. */
  readonly progress: ProgressMode;
  /** The library's version line ("MPICH Version: 4.0.2"). */
  readonly library: string;
  /** The collectives, blocking the calling thread (with the same watchdog). */
  readonly blocking: BlockingCollectives;
  readonly #symbols: MpiSymbols;
  readonly #timeoutMs: number;
  readonly #spinMicros: number;
  #tail: Promise<void> = Promise.resolve();
  #scratch32 = new Float32Array(0);
  #scratch64 = new Float64Array(0);
  #inFlight = 0;
  #closed = false;

  private constructor(
    symbols: MpiSymbols,
    library: string,
    progress: ProgressMode | "auto",
    timeoutMs: number,
    spinMicros: number,
  ) {
    this.#symbols = symbols;
    this.library = library;
    this.#timeoutMs = timeoutMs;
    this.#spinMicros = spinMicros;
    const out = new Int32Array(1);
    check("MPI_Comm_rank", symbols.MPI_Comm_rank(MPI_COMM_WORLD, out));
    this.rank = out[0]!;
    check("MPI_Comm_size", symbols.MPI_Comm_size(MPI_COMM_WORLD, out));
    this.worldSize = out[0]!;
    this.localRanks = Number(readEnv("MPI_LOCALNRANKS") ?? 1) || 1;
    this.progress = progress !== "auto"
      ? progress
      : this.localRanks > navigator.hardwareConcurrency
      ? "poll"
      : "block";
    this.blocking = {
      allReduceSum: (buffer) => this.#runSync("allReduceSum", this.#allReduce(buffer)),
      reduceScatter: (buffer, counts) =>
        this.#runSync("reduceScatter", this.#reduceScatter(buffer, counts)),
      allGather: (buffer, counts) => this.#runSync("allGather", this.#allGather(buffer, counts)),
      broadcast: (buffer, root) => this.#runSync("broadcast", this.#broadcast(buffer, root)),
      barrier: () => this.#runSync("barrier", this.#barrier()),
    };
  }

  /**
   * Initializes MPI (`MPI_Init_thread`, `MPI_THREAD_MULTIPLE`) once per
   * process; later calls return the same collective.
   *
   * @param options Library, progress mode, watchdog, abort on error.
   * @returns The collective of `MPI_COMM_WORLD`.
   * @throws {Error} When the library cannot be opened or is not MPICH's
   * ABI (Open MPI is named), MPI was finalized, or the thread level is
   * not granted.
   */
  static init(options: MpiInitOptions = {}): Promise<MpiCollective> {
    if (initialized !== undefined) {
      if (initialized.#closed) {
        return Promise.reject(
          new Error(
            "Cannot initialize MPI again after close(): MPI allows one MPI_Init per process",
          ),
        );
      }
      return Promise.resolve(initialized);
    }
    try {
      const { timeoutMs, progress, spinMicros } = checkInitOptions(options);
      const { symbols, version } = openMpiLibrary(mpiLibraryPath(options.library));
      const provided = new Int32Array(1);
      check("MPI_Init_thread", symbols.MPI_Init_thread(null, null, MPI_THREAD_MULTIPLE, provided));
      if (provided[0]! < MPI_THREAD_MULTIPLE) {
        symbols.MPI_Finalize();
        throw new Error(
          `Cannot use MPI as it grants thread level ${
            provided[0]
          }, and waiting off the calling thread needs MPI_THREAD_MULTIPLE (3)`,
        );
      }
      const comm = new MpiCollective(symbols, version, progress, timeoutMs, spinMicros);
      initialized = comm;
      if (options.abortOnError ?? true) comm.#abortOnError();
      return Promise.resolve(comm);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  allReduceSum(buffer: CollectiveBuffer): Promise<void> {
    return this.#enqueue("allReduceSum", () => this.#allReduce(buffer));
  }

  broadcast(buffer: CollectiveBuffer, root: number): Promise<void> {
    return this.#enqueue("broadcast", () => this.#broadcast(buffer, root));
  }

  barrier(): Promise<void> {
    return this.#enqueue("barrier", () => this.#barrier());
  }

  reduceScatter(buffer: CollectiveBuffer, counts: readonly number[]): Promise<void> {
    return this.#enqueue("reduceScatter", () => this.#reduceScatter(buffer, counts));
  }

  allGather(buffer: CollectiveBuffer, counts: readonly number[]): Promise<void> {
    return this.#enqueue("allGather", () => this.#allGather(buffer, counts));
  }

  /**
   * Ends the whole job now (`MPI_Abort`): every rank exits with `code`.
   *
   * @param code The exit code.
   * @param reason Printed to stderr first.
   */
  abort(code = 1, reason?: string): never {
    if (reason !== undefined) console.error(`lionw/mpi rank ${this.rank}: ${reason}`);
    // MPI_Abort tears the job down at once, and MPICH's process manager can
    // drop what this rank wrote just before (its stdio is forwarded through a
    // pipe): 1 run in 40 lost the whole message. Give the forwarding time.
    const sleep = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(sleep, 0, 0, ABORT_FLUSH_MS);
    // MPI_Abort asks the launcher to end every rank, and waits for it: a rank
    // whose link to the launcher is down (a cut cable) would wait forever.
    // It runs off this thread; if this rank is still alive after the grace
    // period, it ends itself (the launcher, where reachable, ends the others).
    void this.#symbols.MPI_Abort_off_thread(MPI_COMM_WORLD, code);
    Atomics.wait(sleep, 0, 0, ABORT_GRACE_MS);
    Deno.exit(code);
  }

  /** Waits for the collectives in flight, then finalizes MPI (`MPI_Finalize`); idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#tail;
    if (this.#closed) return;
    this.#closed = true;
    check("MPI_Finalize", this.#symbols.MPI_Finalize());
  }

  /** A collective: checked now, started when the ones before it completed. */
  #enqueue(name: string, prepare: () => Started): Promise<void> {
    let started: Started;
    try {
      this.#assertOpen(name);
      started = prepare();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.worldSize === 1) return Promise.resolve(); // the buffer is the result already
    this.#inFlight++;
    const run = this.#tail.then(async () => {
      const request = new Int32Array(1);
      check(name, started.start(request));
      await waitAsync(this.#symbols, request, this.#policy(name, started));
      started.done?.();
    }).finally(() => this.#inFlight--);
    this.#tail = run.catch(() => {});
    return run;
  }

  #runSync(name: string, started: Started): void {
    this.#assertOpen(name);
    if (this.#inFlight > 0) {
      throw new Error(
        `Cannot ${name} blocking as ${this.#inFlight} asynchronous collective(s) are in flight: await them first`,
      );
    }
    if (this.worldSize === 1) return;
    const request = new Int32Array(1);
    check(name, started.start(request));
    waitSync(this.#symbols, request, this.#policy(name, started));
    started.done?.();
  }

  #policy(name: string, started: Started): WaitPolicy {
    return {
      mode: this.progress,
      timeoutMs: this.#timeoutMs,
      spinMicros: this.#spinMicros,
      onTimeout: (waited) =>
        this.abort(
          TIMEOUT_EXIT_CODE,
          `${name}${started.what} did not complete within ${
            Math.round(waited)
          } ms (timeoutMs ${this.#timeoutMs}): another rank hung, died, or called a different collective. Aborting the job`,
        ),
    };
  }

  #allReduce(buffer: CollectiveBuffer): Started {
    const type = datatype("all-reduce", buffer);
    const count = checkedCount("all-reduce", buffer.length);
    return {
      what: ` of ${describe(buffer)}`,
      start: (request) =>
        this.#symbols.MPI_Iallreduce(
          specialPointer(MPI_IN_PLACE),
          pointer(buffer),
          count,
          type,
          MPI_SUM,
          MPI_COMM_WORLD,
          request,
        ),
    };
  }

  #broadcast(buffer: CollectiveBuffer, root: number): Started {
    const type = datatype("broadcast", buffer);
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      throw new RangeError(
        `Cannot broadcast as 'root' must be a rank in [0, ${this.worldSize}): current value is ${root}`,
      );
    }
    const count = checkedCount("broadcast", buffer.length);
    return {
      what: ` of ${describe(buffer)} from rank ${root}`,
      start: (request) =>
        this.#symbols.MPI_Ibcast(pointer(buffer), count, type, root, MPI_COMM_WORLD, request),
    };
  }

  #barrier(): Started {
    return { what: "", start: (request) => this.#symbols.MPI_Ibarrier(MPI_COMM_WORLD, request) };
  }

  /**
   * A collective over the ranks' parts of `buffer`: its MPI type, and the
   * counts and offsets as MPI reads them (held until the request completes).
   */
  #parts(
    action: string,
    buffer: CollectiveBuffer,
    counts: readonly number[],
  ): { type: number; counts: Int32Array; offsets: Int32Array } {
    const type = datatype(action, buffer);
    checkCounts(action, counts, this.worldSize, checkedCount(action, buffer.length));
    const offsets = new Int32Array(counts.length);
    for (let r = 1; r < counts.length; r++) offsets[r] = offsets[r - 1]! + counts[r - 1]!;
    return { type, counts: Int32Array.from(counts), offsets };
  }

  #reduceScatter(buffer: CollectiveBuffer, counts: readonly number[]): Started {
    const { type, counts: recvCounts, offsets } = this.#parts("reduce-scatter", buffer, counts);
    const offset = offsets[this.rank]!;
    const own = counts[this.rank]!;
    // Not MPI_IN_PLACE: MPICH 4.0's in-place reduce-scatter copies a rank's
    // sums to the buffer's start with memcpy and aborts where the two overlap
    const sums = this.#scratch(buffer, own);
    return {
      what: ` of ${describe(buffer)}`,
      start: (request) =>
        this.#symbols.MPI_Ireduce_scatter(
          pointer(buffer),
          pointer(sums),
          Deno.UnsafePointer.of(recvCounts),
          type,
          MPI_SUM,
          MPI_COMM_WORLD,
          request,
        ),
      done: () => buffer.set(sums, offset),
    };
  }

  /** A receive buffer of `length` elements of `like`'s type, reused from call to call (one runs at a time). */
  #scratch(like: CollectiveBuffer, length: number): CollectiveBuffer {
    if (like instanceof Float32Array) {
      if (this.#scratch32.length < length) this.#scratch32 = new Float32Array(length);
      return this.#scratch32.subarray(0, length);
    }
    if (this.#scratch64.length < length) this.#scratch64 = new Float64Array(length);
    return this.#scratch64.subarray(0, length);
  }

  #allGather(buffer: CollectiveBuffer, counts: readonly number[]): Started {
    const { type, counts: recvCounts, offsets: displacements } = this.#parts(
      "all-gather",
      buffer,
      counts,
    );
    return {
      what: ` of ${describe(buffer)}`,
      start: (request) =>
        this.#symbols.MPI_Iallgatherv(
          specialPointer(MPI_IN_PLACE),
          0,
          type,
          pointer(buffer),
          Deno.UnsafePointer.of(recvCounts),
          Deno.UnsafePointer.of(displacements),
          type,
          MPI_COMM_WORLD,
          request,
        ),
    };
  }

  #assertOpen(name: string): void {
    if (this.#closed) throw new Error(`Cannot ${name} as the MPI collective is closed`);
  }

  /**
   * `mpiexec` hangs when one rank dies in a way MPI does not see, and
   * returns 0 when a rank exits without `MPI_Finalize`: turn both into an
   * abort of the job (or a finalize, for a clean exit without `close()`).
   */
  #abortOnError(): void {
    const fail = (what: string, error: unknown) => {
      if (this.#closed) return;
      console.error(`lionw/mpi rank ${this.rank}: ${what}:`, error);
      this.abort(1);
    };
    addEventListener("error", (event) => fail("uncaught error", event.error));
    addEventListener("unhandledrejection", (event) => fail("unhandled rejection", event.reason));
    addEventListener("unload", () => {
      if (this.#closed) return;
      const code = Deno.exitCode;
      if (code !== 0) this.abort(code, `exited with code ${code} before close()`);
      this.#closed = true;
      this.#symbols.MPI_Finalize();
    });
  }
}

/** How long a rank waits for `MPI_Abort` to end it before it exits by itself. */
const ABORT_GRACE_MS = 3_000;

/** How long a rank waits before `MPI_Abort`, so that what it printed reaches mpiexec. */
const ABORT_FLUSH_MS = 250;

/** A collective ready to start: the call, and what to do once it completed. */
interface Started {
  /** For messages: what it moves. */
  readonly what: string;
  /** Starts it; returns MPI's code. */
  start(request: Int32Array): number;
  /** Runs once it completed. */
  done?: () => void;
}

function datatype(action: string, buffer: CollectiveBuffer): number {
  if (buffer instanceof Float32Array) return MPI_FLOAT;
  if (buffer instanceof Float64Array) return MPI_DOUBLE;
  throw new TypeError(
    `Cannot ${action} as the buffer must be a Float32Array or Float64Array: current value is ${
      Object.prototype.toString.call(buffer)
    }`,
  );
}

function checkedCount(action: string, length: number): number {
  if (length > MPI_MAX_COUNT) {
    throw new RangeError(
      `Cannot ${action} ${length} elements in one call: MPI counts stop at ${MPI_MAX_COUNT}`,
    );
  }
  return length;
}

function pointer(buffer: CollectiveBuffer): Deno.PointerValue {
  return Deno.UnsafePointer.of(buffer as Float32Array<ArrayBuffer>);
}

function describe(buffer: CollectiveBuffer): string {
  return `${buffer.length} ${buffer instanceof Float32Array ? "float32" : "float64"}`;
}
