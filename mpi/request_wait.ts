/**
 * Waiting for a nonblocking MPI request, with a watchdog.
 *
 * MPICH's ch4 device spins at 100 % of a core while a rank waits, and no
 * setting stops it. Where each rank has a core that costs nothing, and
 * `"block"` waits inside `MPI_Wait` on one of Deno's blocking threads (the
 * event loop goes on). Where ranks outnumber cores, the spinning rank steals
 * the core its peer needs to catch up; `"poll"` calls `MPI_Test` for a
 * short spin, then sleeps between tests with a growing back-off, which
 * frees the core at the price of latency (MPICH progresses a nonblocking
 * collective only inside MPI calls, so a sleeping rank progresses nothing).
 *
 * @module
 */

import { MPI_STATUS_IGNORE, MPI_SUCCESS, type MpiSymbols, specialPointer } from "./mpich_abi.ts";

/**
 * How a rank waits for a collective.
 *
 * @example Choose by cores
 * ```ts
 * import type { ProgressMode } from "@decoupled/lionw/mpi";
 *
 * const ranksHere = 3;
 * const mode: ProgressMode = ranksHere > navigator.hardwareConcurrency ? "poll" : "block";
 * console.log(mode);
 * ```
 */
export type ProgressMode = "block" | "poll";

/** How long and how to wait. */
export interface WaitPolicy {
  /** The mode. */
  readonly mode: ProgressMode;
  /** Milliseconds before the watchdog fires (`Infinity`: never). */
  readonly timeoutMs: number;
  /** Microseconds of `MPI_Test` in a loop before the first sleep (`"poll"`). */
  readonly spinMicros: number;
  /** Called when the watchdog fires, with what did not complete; does not return. */
  readonly onTimeout: (waited: number) => never;
}

/** Longest sleep between two tests in `"poll"` mode, in milliseconds. */
const MAX_SLEEP_MS = 2;
/** Tests between two deadline checks (and per wake-up after the spin). */
const TESTS_PER_CHECK = 16;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Waits for `request` without blocking the event loop.
 *
 * @param symbols The library.
 * @param request The request (`MPI_Request`, an `int`), held until it completes.
 * @param policy Mode and watchdog.
 */
export async function waitAsync(
  symbols: MpiSymbols,
  request: Int32Array,
  policy: WaitPolicy,
): Promise<void> {
  const start = performance.now();
  const flag = new Int32Array(1);
  // small collectives complete within the spin: handing a wait to another
  // thread and back costs about a millisecond
  if (test(symbols, request, flag, start, { ...policy, mode: "poll" })) return;
  if (policy.mode === "block") {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const watchdog = new Promise<never>((_, reject) => {
      if (policy.timeoutMs === Infinity) return;
      timer = setTimeout(() => reject(policy.onTimeout(policy.timeoutMs)), policy.timeoutMs);
    });
    try {
      check(
        "MPI_Wait",
        await Promise.race([
          symbols.MPI_Wait_off_thread(request, specialPointer(MPI_STATUS_IGNORE)),
          watchdog,
        ]),
      );
    } finally {
      clearTimeout(timer);
    }
    return;
  }
  let sleepMs = 0.5;
  while (!test(symbols, request, flag, start, policy)) {
    await new Promise((resolve) => setTimeout(resolve, sleepMs));
    sleepMs = Math.min(2 * sleepMs, MAX_SLEEP_MS);
  }
}

/**
 * Waits for `request`, blocking the calling thread (a synchronous step).
 *
 * @param symbols The library.
 * @param request The request.
 * @param policy Mode and watchdog.
 */
export function waitSync(symbols: MpiSymbols, request: Int32Array, policy: WaitPolicy): void {
  const start = performance.now();
  const flag = new Int32Array(1);
  let sleepMs = 0.05;
  while (!test(symbols, request, flag, start, policy)) {
    if (policy.mode === "block") continue; // a spin, as MPI_Wait would, with the watchdog
    Atomics.wait(sleeper, 0, 0, sleepMs);
    sleepMs = Math.min(2 * sleepMs, MAX_SLEEP_MS);
  }
}

/**
 * Calls `MPI_Test` until the request completes, the spin that starts the
 * wait is over (`"poll"`), or a few tests were made (`"block"`, between
 * deadline checks); `true` once complete.
 */
function test(
  symbols: MpiSymbols,
  request: Int32Array,
  flag: Int32Array,
  start: number,
  policy: WaitPolicy,
): boolean {
  const spinUntil = start + policy.spinMicros / 1000;
  const ignore = specialPointer(MPI_STATUS_IGNORE);
  do {
    for (let i = 0; i < TESTS_PER_CHECK; i++) {
      check("MPI_Test", symbols.MPI_Test(request, flag, ignore));
      if (flag[0] !== 0) return true;
    }
    const now = performance.now();
    if (now - start > policy.timeoutMs) policy.onTimeout(now - start);
    if (policy.mode === "block") return false;
  } while (performance.now() < spinUntil);
  return false;
}

/**
 * Throws when an MPI call did not return `MPI_SUCCESS` (MPICH's default
 * handler aborts first; this is for libraries set to return errors).
 *
 * @param call The function's name.
 * @param code Its return code.
 */
export function check(call: string, code: number): void {
  if (code !== MPI_SUCCESS) throw new Error(`${call} failed with MPI error code ${code}`);
}
