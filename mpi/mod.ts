/**
 * Data-parallel training over MPI: {@linkcode MpiCollective}, the ranks of
 * an `mpiexec` job as the optimizer's `collective`, through MPICH and
 * Deno's FFI (`--allow-ffi`). The core (`@decoupled/lionw`) needs no FFI.
 *
 * @example Every rank steps on the gradients averaged over all ranks
 * ```ts ignore
 * // mpiexec.mpich -n 2 deno run --allow-ffi --allow-env --allow-read train.ts
 * import { DecoupledLionW, ParameterStore } from "@decoupled/lionw";
 * import { MpiCollective } from "@decoupled/lionw/mpi";
 *
 * const comm = await MpiCollective.init();
 * const w = new ParameterStore().add("w", [4], [1, 2, 3, 4]);
 * await using opt = new DecoupledLionW([w], { lr: 0.1, collective: comm });
 * w.grad = [comm.rank, 1, -1, 0]; // this rank's gradient
 * await opt.step(); // averaged over the ranks, then the same update everywhere
 * await comm.close();
 * ```
 *
 * @module
 */

export { MpiCollective, TIMEOUT_EXIT_CODE } from "./mpi_collective.ts";
export type { MpiInitOptions } from "./init_options.ts";
export type { ProgressMode } from "./request_wait.ts";
export { DEFAULT_MPI_LIBRARY, MPI_LIBRARY_ENV } from "./mpi_library.ts";
export type {
  BlockingCollectives,
  Collective,
  CollectiveBuffer,
} from "../src/distributed/collective.ts";
