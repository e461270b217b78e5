/**
 * MPICH's ABI, as Deno's FFI sees it: the handle constants of MPICH's
 * `mpi.h` (plain integers, stable since MPICH 3.1 and shared by its
 * derivatives: Intel MPI, MVAPICH, Cray MPICH) and the C signatures this
 * binding calls. Open MPI's handles are pointers to global symbols instead,
 * so its library is recognized and refused (mpi_library.ts).
 *
 * @module
 */

/** `MPI_COMM_WORLD`. */
export const MPI_COMM_WORLD = 0x44000000;
/** `MPI_FLOAT`. */
export const MPI_FLOAT = 0x4c00040a;
/** `MPI_DOUBLE`. */
export const MPI_DOUBLE = 0x4c00080b;
/** `MPI_SUM`. */
export const MPI_SUM = 0x58000003;
/** `MPI_THREAD_MULTIPLE`: Deno's nonblocking FFI calls run on other threads. */
export const MPI_THREAD_MULTIPLE = 3;
/** `MPI_SUCCESS`. */
export const MPI_SUCCESS = 0;
/** `MPI_MAX_LIBRARY_VERSION_STRING`. */
export const MPI_MAX_LIBRARY_VERSION_STRING = 8192;
/** The largest count of one call: MPI counts are C `int`s. */
export const MPI_MAX_COUNT = 2 ** 31 - 1;

/** The address of `MPI_IN_PLACE`: `(void *) -1`. */
export const MPI_IN_PLACE = -1n;
/** The address of `MPI_STATUS_IGNORE`: `(MPI_Status *) 1`. */
export const MPI_STATUS_IGNORE = 1n;

/**
 * A pointer to a special address. Made when called, not when this module
 * loads: making a pointer needs the FFI permission, which importing the
 * library must not.
 *
 * @param address One of the addresses above.
 * @returns The pointer.
 */
export function specialPointer(address: bigint): Deno.PointerValue {
  return Deno.UnsafePointer.create(address);
}

/** The functions this binding calls; handles are `int`, buffers pointers. */
export const MPI_SYMBOLS = {
  MPI_Get_library_version: { parameters: ["buffer", "buffer"], result: "i32" },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Comm_rank: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Iallreduce: {
    parameters: ["pointer", "pointer", "i32", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  MPI_Ibcast: { parameters: ["pointer", "i32", "i32", "i32", "i32", "buffer"], result: "i32" },
  MPI_Ibarrier: { parameters: ["i32", "buffer"], result: "i32" },
  MPI_Ireduce_scatter: {
    parameters: ["pointer", "pointer", "pointer", "i32", "i32", "i32", "buffer"],
    result: "i32",
  },
  MPI_Iallgatherv: {
    parameters: ["pointer", "i32", "i32", "pointer", "pointer", "pointer", "i32", "i32", "buffer"],
    result: "i32",
  },
  MPI_Test: { parameters: ["buffer", "buffer", "pointer"], result: "i32" },
  /** Waits on one of Deno's blocking threads: the calling thread goes on. */
  MPI_Wait_off_thread: {
    name: "MPI_Wait",
    parameters: ["buffer", "pointer"],
    result: "i32",
    nonblocking: true,
  },
  /**
   * Aborts on one of Deno's blocking threads: the calling thread can give
   * up on it (a rank cut off from the launcher waits in it forever).
   */
  MPI_Abort_off_thread: {
    name: "MPI_Abort",
    parameters: ["i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  MPI_Finalize: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened library's functions. */
export type MpiSymbols = Deno.DynamicLibrary<typeof MPI_SYMBOLS>["symbols"];
