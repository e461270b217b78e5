/**
 * The options of `MpiCollective.init` and their checks, apart from the
 * binding: all of them are checked before MPI is opened.
 *
 * @module
 */

import { checkKnownKeys, formatValue } from "../src/errors/error_grammar.ts";
import type { ProgressMode } from "./request_wait.ts";

/**
 * Options of `MpiCollective.init`.
 *
 * @example Ranks that outnumber the cores, and a shorter watchdog
 * ```ts
 * import type { MpiInitOptions } from "@decoupled/lionw/mpi";
 *
 * const options: MpiInitOptions = { progress: "poll", timeoutMs: 60_000 };
 * console.log(options); // MpiCollective.init(options) under mpiexec.mpich
 * ```
 */
export interface MpiInitOptions {
  /**
   * The MPICH library.
   *
   * @default {$LIONW_MPI_LIBRARY, else "/usr/lib/x86_64-linux-gnu/libmpich.so.12"}
   */
  library?: string;
  /**
   * How a waiting rank waits: `"block"` inside `MPI_Wait` (MPICH spins a
   * core at 100 %), `"poll"` with `MPI_Test`, a short spin, then sleeps
   * (frees the core, adds latency), `"auto"`: `"poll"` when this machine's
   * ranks (`MPI_LOCALNRANKS`) outnumber its cores.
   *
   * @default {"auto"}
   */
  progress?: ProgressMode | "auto";
  /**
   * Milliseconds a collective may take before the watchdog names it on
   * stderr and aborts the whole job (`MPI_Abort`, exit code 124): a rank
   * that hung or died must not hang the others forever. `Infinity` turns
   * the watchdog off.
   *
   * @default {300000}
   */
  timeoutMs?: number;
  /** Microseconds of `MPI_Test` in a loop before `"poll"` first sleeps. @default {200} */
  spinMicros?: number;
  /**
   * Abort the whole job (`MPI_Abort`) when this rank has an uncaught error
   * or unhandled rejection, or exits with a non-zero code; finalize when it
   * exits normally without `MpiCollective.close`. Without this,
   * `mpiexec` can hang on the other ranks, or return 0 for a failed job.
   *
   * @default {true}
   */
  abortOnError?: boolean;
}

const INIT = "Cannot initialize MPI";
const INIT_KEYS = ["library", "progress", "timeoutMs", "spinMicros", "abortOnError"];

/**
 * The options, checked before anything is opened, with their defaults.
 *
 * @param options As given.
 * @returns The watchdog's limit, the progress mode and the spin.
 * @throws {TypeError} When an option has the wrong type or is unknown.
 * @throws {RangeError} When a value is out of range.
 */
export function checkInitOptions(
  options: MpiInitOptions,
): { timeoutMs: number; progress: ProgressMode | "auto"; spinMicros: number } {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${INIT} as 'options' must be an object: current value is ${formatValue(options)}`,
    );
  }
  checkKnownKeys(INIT, "options", options, INIT_KEYS);
  const { timeoutMs = 300_000, progress = "auto", spinMicros = 200, abortOnError = true, library } =
    options;
  if (typeof timeoutMs !== "number" || !(timeoutMs > 0)) {
    throw new RangeError(
      `${INIT} as 'timeoutMs' must be a number > 0 (Infinity: no watchdog): current value is ${
        formatValue(timeoutMs)
      }`,
    );
  }
  if (!["auto", "block", "poll"].includes(progress)) {
    throw new RangeError(
      `${INIT} as 'progress' must be "auto", "block" or "poll": current value is ${
        formatValue(progress)
      }`,
    );
  }
  if (typeof spinMicros !== "number" || !Number.isFinite(spinMicros) || spinMicros < 0) {
    throw new RangeError(
      `${INIT} as 'spinMicros' must be a finite number >= 0: current value is ${
        formatValue(spinMicros)
      }`,
    );
  }
  if (typeof abortOnError !== "boolean") {
    throw new TypeError(
      `${INIT} as 'abortOnError' must be a boolean: current value is ${formatValue(abortOnError)}`,
    );
  }
  if (library !== undefined && (typeof library !== "string" || library.length === 0)) {
    throw new TypeError(
      `${INIT} as 'library' must be a path: current value is ${formatValue(library)}`,
    );
  }
  return { timeoutMs, progress, spinMicros };
}
