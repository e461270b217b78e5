/**
 * Opens the MPI library: from `LIONW_MPI_LIBRARY`, else Debian's MPICH,
 * and refuses one whose ABI this binding does not speak (Open MPI), naming
 * what it found.
 *
 * @module
 */

import { MPI_MAX_LIBRARY_VERSION_STRING, MPI_SYMBOLS, type MpiSymbols } from "./mpich_abi.ts";

/**
 * Debian's and Ubuntu's MPICH (`apt-get install mpich`), the library
 * opened unless {@linkcode MPI_LIBRARY_ENV} names another.
 *
 * @example The library a job will open
 * ```ts
 * import { DEFAULT_MPI_LIBRARY, MPI_LIBRARY_ENV } from "@decoupled/lionw/mpi";
 *
 * console.log(Deno.env.get(MPI_LIBRARY_ENV) ?? DEFAULT_MPI_LIBRARY);
 * ```
 */
export const DEFAULT_MPI_LIBRARY = "/usr/lib/x86_64-linux-gnu/libmpich.so.12";
/**
 * The environment variable that names another MPICH-ABI library (Intel
 * MPI, MVAPICH, a MPICH of your own build).
 *
 * @example Point a job at another MPICH
 * ```sh
 * LIONW_MPI_LIBRARY=/opt/mpich/lib/libmpi.so.12 mpiexec.mpich -n 4 deno run --allow-ffi --allow-env train.ts
 * ```
 */
export const MPI_LIBRARY_ENV = "LIONW_MPI_LIBRARY";

/** An opened MPI library. */
export interface MpiLibrary {
  /** Its path. */
  readonly path: string;
  /** The first line of `MPI_Get_library_version` ("MPICH Version: 4.0.2"). */
  readonly version: string;
  /** The functions. */
  readonly symbols: MpiSymbols;
}

/**
 * The library path to open: `explicit`, else `LIONW_MPI_LIBRARY` (when
 * the environment may be read), else {@linkcode DEFAULT_MPI_LIBRARY}.
 *
 * @param explicit A path given in code.
 * @returns The path.
 */
export function mpiLibraryPath(explicit: string | undefined): string {
  return explicit ?? readEnv(MPI_LIBRARY_ENV) ?? DEFAULT_MPI_LIBRARY;
}

/**
 * Opens `path` and checks that it is an MPICH-ABI library.
 *
 * @param path The shared library.
 * @returns The library.
 * @throws {Error} When it cannot be opened (missing, no `--allow-ffi`), or
 * is Open MPI or another library that is not MPICH's ABI.
 */
export function openMpiLibrary(path: string): MpiLibrary {
  let library: Deno.DynamicLibrary<typeof MPI_SYMBOLS>;
  try {
    library = Deno.dlopen(path, MPI_SYMBOLS);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Cannot open the MPI library ${path} (${reason}): install MPICH (apt-get install mpich), set ${MPI_LIBRARY_ENV} to its libmpich.so, and run with --allow-ffi`,
      { cause: error },
    );
  }
  const version = libraryVersion(library.symbols);
  if (!/MPICH|Intel\(R\) MPI|MVAPICH/i.test(version)) {
    library.close();
    const found = /Open MPI/i.test(version) ? "Open MPI" : "an MPI that is not MPICH";
    throw new Error(
      `Cannot use the MPI library ${path}: it is ${found} ("${version}"), whose handles are pointers, and this binding speaks MPICH's ABI (integer handles). Install MPICH (apt-get install mpich), point ${MPI_LIBRARY_ENV} at its libmpich.so, and launch with mpiexec.mpich`,
    );
  }
  return { path, version, symbols: library.symbols };
}

function libraryVersion(symbols: MpiSymbols): string {
  const text = new Uint8Array(MPI_MAX_LIBRARY_VERSION_STRING);
  const length = new Int32Array(1);
  symbols.MPI_Get_library_version(text, length);
  return new TextDecoder().decode(text.subarray(0, length[0])).split("\n")[0]!.replace(/\s+/g, " ")
    .trim();
}

/** An environment variable, or `undefined` when it is unset or may not be read. */
export function readEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name) || undefined;
}
