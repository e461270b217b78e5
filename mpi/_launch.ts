/**
 * Launching MPI jobs of Deno programs, for this repository's own launchers
 * (`deno task demo:dist`, `deno task bench:dist`) and tests: MPICH's
 * launcher by its own name (Open MPI's takes over `mpiexec` when both are
 * installed), running this Deno (a Deno from npm is not on `PATH`).
 *
 * @module
 */

/** MPICH's launcher. */
export const MPIEXEC = "mpiexec.mpich";

/** What a rank needs: FFI for libmpich, env for its settings, read for its module and workers. */
const RANK_PERMISSIONS = ["--allow-ffi", "--allow-env", "--allow-read"];

/** Whether {@linkcode MPIEXEC} runs here. */
export function mpiexecAvailable(): Promise<boolean> {
  return new Deno.Command(MPIEXEC, { args: ["--version"], stdout: "null", stderr: "null" })
    .output().then((out) => out.success, () => false);
}

/**
 * The command of one rank: this Deno running `module`.
 *
 * @param module The program's path.
 * @param args Its arguments.
 * @param permissions More `deno run` flags than a rank's own (`--allow-write=…`).
 * @returns The command line.
 */
export function rankProgram(
  module: string,
  args: readonly string[],
  permissions: readonly string[] = [],
): string[] {
  return [
    Deno.execPath(),
    "run",
    "--no-check",
    "--quiet",
    ...RANK_PERMISSIONS,
    ...permissions,
    module,
    ...args,
  ];
}

/**
 * A job of `ranks` ranks, each running `module` with this Deno.
 *
 * @param ranks How many ranks.
 * @param module The program's path.
 * @param args Its arguments.
 * @param permissions More `deno run` flags than a rank's own (`--allow-write=…`).
 * @param options Where output goes, and a signal that ends the job.
 * @returns The command.
 */
export function mpiJob(
  ranks: number,
  module: string,
  args: readonly string[],
  permissions: readonly string[] = [],
  options: Pick<Deno.CommandOptions, "stdout" | "stderr" | "signal"> = {},
): Deno.Command {
  return new Deno.Command(MPIEXEC, {
    args: ["-n", String(ranks), ...rankProgram(module, args, permissions)],
    stdin: "null",
    ...options,
  });
}
