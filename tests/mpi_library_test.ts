// Opening the MPI library: a missing library, and an Open MPI one, are
// refused with what was found and what to do. The Open MPI stand-in is a
// small C library (compiled here with cc) that answers MPI_Get_library_version
// as Open MPI 4.1 does.
import assert from "node:assert/strict";
import {
  DEFAULT_MPI_LIBRARY,
  MPI_LIBRARY_ENV,
  MpiCollective,
  type MpiInitOptions,
} from "../mpi/mod.ts";
import { MPI_SYMBOLS } from "../mpi/mpich_abi.ts";
import { mpiLibraryPath, openMpiLibrary } from "../mpi/mpi_library.ts";

const cc = await new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
  .output().then((out) => out.success, () => false);

Deno.test("a missing MPI library is named, with how to install one", () => {
  assert.throws(
    () => openMpiLibrary("/nonexistent/libmpich.so.12"),
    /Cannot open the MPI library \/nonexistent\/libmpich\.so\.12 \(.*\): install MPICH \(apt-get install mpich\), set LIONW_MPI_LIBRARY to its libmpich\.so, and run with --allow-ffi/,
  );
});

Deno.test("the library path: given, else LIONW_MPI_LIBRARY, else Debian's MPICH", () => {
  const before = Deno.env.get(MPI_LIBRARY_ENV);
  try {
    Deno.env.delete(MPI_LIBRARY_ENV);
    assert.equal(mpiLibraryPath(undefined), DEFAULT_MPI_LIBRARY);
    Deno.env.set(MPI_LIBRARY_ENV, "/opt/mpich/lib/libmpi.so");
    assert.equal(mpiLibraryPath(undefined), "/opt/mpich/lib/libmpi.so");
    assert.equal(mpiLibraryPath("/x/libmpich.so"), "/x/libmpich.so");
  } finally {
    if (before === undefined) Deno.env.delete(MPI_LIBRARY_ENV);
    else Deno.env.set(MPI_LIBRARY_ENV, before);
  }
});

Deno.test({
  name: "an Open MPI library is refused, named, before MPI is initialized",
  ignore: !cc,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const stubs = Object.entries(MPI_SYMBOLS)
        .map(([key, symbol]) => ("name" in symbol ? symbol.name : key))
        .filter((name, i, all) => name !== "MPI_Get_library_version" && all.indexOf(name) === i)
        .map((name) => `int ${name}(void) { return 1; }`);
      await Deno.writeTextFile(
        `${dir}/openmpi.c`,
        [
          "#include <string.h>",
          'int MPI_Get_library_version(char *v, int *n) { strcpy(v, "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4"); *n = (int) strlen(v); return 0; }',
          ...stubs,
        ].join("\n"),
      );
      const built = await new Deno.Command("cc", {
        args: ["-shared", "-fPIC", "-o", `${dir}/libmpi.so.40`, `${dir}/openmpi.c`],
      }).output();
      assert.ok(built.success, new TextDecoder().decode(built.stderr));
      assert.throws(
        () => openMpiLibrary(`${dir}/libmpi.so.40`),
        /Cannot use the MPI library .*libmpi\.so\.40: it is Open MPI \("Open MPI v4\.1\.4, package: Debian OpenMPI, ident: 4\.1\.4"\), whose handles are pointers, and this binding speaks MPICH's ABI \(integer handles\)/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("MpiCollective.init() checks its options before it opens anything, naming the bad value", async () => {
  await assert.rejects(
    MpiCollective.init({ timeoutMs: 0 }),
    /Cannot initialize MPI as 'timeoutMs' must be a number > 0 \(Infinity: no watchdog\): current value is 0/,
  );
  await assert.rejects(
    MpiCollective.init({ progress: "spin" as "poll" }),
    /'progress' must be "auto", "block" or "poll": current value is "spin"/,
  );
  await assert.rejects(
    MpiCollective.init({ spinMicros: -1 }),
    /'spinMicros' must be a finite number >= 0: current value is -1/,
  );
  await assert.rejects(
    MpiCollective.init({ progres: "poll" } as MpiInitOptions),
    /Cannot initialize MPI as 'options' has an unknown key "progres": did you mean "progress"\?/,
  );
  await assert.rejects(
    MpiCollective.init({ library: "/nonexistent/libmpich.so.12" }),
    /Cannot open the MPI library \/nonexistent\/libmpich\.so\.12/,
  );
});
