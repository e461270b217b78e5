/**
 * Builds the npm package into `npm/` (`deno task build:npm`): ESM
 * JavaScript and `.d.ts` declarations emitted by TypeScript's own compiler
 * (the `.ts` import extensions rewritten to `.js`), the shard worker as its
 * own module, a `package.json` with `exports` for `.` and `./tfjs`, the
 * README (scripts/npm_readme.md: Node first) and the LICENSE. The MPI entry point (Deno's FFI) is not in it.
 *
 * Usage: deno task build:npm [--out DIR]
 *
 * @module
 */

import ts from "npm:typescript@5.9.3";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseCommandLine } from "./cli.ts";

const ROOT = new URL("../", import.meta.url);
/** The entry points: the package's two exports and the worker the pool spawns. */
const ENTRIES = ["mod.ts", "tfjs/mod.ts", "workers/shard_worker.ts"];

/** What `tsc` is asked for: modules Node 20 and browsers load as they are. */
const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  declaration: true,
  // the sources are checked by `deno check` with Deno's types; explicit
  // types on every export (no slow types) let declarations be emitted alone
  noCheck: true,
  skipLibCheck: true,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
  newLine: ts.NewLineKind.LineFeed,
  removeComments: false,
};

/**
 * The package.json of the build.
 *
 * @param version The package version (deno.json's).
 * @returns Its text.
 */
function packageJson(version: string): string {
  const entry = (path: string) => ({ types: `./esm/${path}.d.ts`, import: `./esm/${path}.js` });
  return JSON.stringify(
    {
      name: "@decoupled/lionw",
      version,
      description:
        "DecoupledLionW (Lion with decoupled, lr-scaled weight decay) bit-exact with PyTorch: WebAssembly SIMD kernels sharded over worker threads in shared memory, per-parameter metrics, a TensorFlow.js adapter",
      license: "Apache-2.0",
      type: "module",
      exports: {
        ".": entry("mod"),
        "./tfjs": entry("tfjs/mod"),
        "./shard-worker": entry("workers/shard_worker"),
      },
      files: ["esm/", "README.md", "LICENSE"],
      engines: { node: ">=20.16" },
      peerDependencies: { "@tensorflow/tfjs-core": "^4.22.0" },
      peerDependenciesMeta: { "@tensorflow/tfjs-core": { optional: true } },
      keywords: ["lion", "optimizer", "deep-learning", "webassembly", "simd", "tfjs", "pytorch"],
    },
    null,
    2,
  ) + "\n";
}

/**
 * Builds the package.
 *
 * @param out Where it goes (emptied first).
 * @returns The emitted files, relative to `out`.
 */
export async function buildNpm(out: URL): Promise<string[]> {
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const esm = new URL("esm/", out);
  const rootNames = ENTRIES.map((entry) => fileURLToPath(new URL(entry, ROOT)));
  const program = ts.createProgram(rootNames, {
    ...COMPILER_OPTIONS,
    rootDir: fileURLToPath(ROOT),
    outDir: fileURLToPath(esm),
  });
  const written: string[] = [];
  const result = program.emit(undefined, (fileName, text) => {
    Deno.mkdirSync(dirname(fileName), { recursive: true });
    Deno.writeTextFileSync(fileName, text);
    written.push(fileName.slice(fileURLToPath(out).length));
  });
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0 || result.emitSkipped) {
    const host = {
      getCanonicalFileName: (f: string) => f,
      getCurrentDirectory: () => fileURLToPath(ROOT),
      getNewLine: () => "\n",
    };
    throw new Error(`tsc failed:\n${ts.formatDiagnostics(errors, host)}`);
  }
  const mpi = written.filter((file) => file.includes("/mpi/"));
  if (mpi.length > 0) throw new Error(`the npm package must not hold the MPI entry: ${mpi}`);
  const { version } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  await Deno.writeTextFile(new URL("package.json", out), packageJson(version));
  // the package's own README: Node first, links only to what it ships or to absolute addresses
  await Deno.copyFile(new URL("scripts/npm_readme.md", ROOT), new URL("README.md", out));
  await Deno.copyFile(new URL("LICENSE", ROOT), new URL("LICENSE", out));
  return written.sort();
}

if (import.meta.main) {
  const values = parseCommandLine(
    "build:npm",
    "deno task build:npm [--out DIR]\n\nBuilds the npm package into DIR (default npm/): ESM and .d.ts from TypeScript's compiler,\npackage.json, the package's README and the LICENSE. Then: cd DIR && npm pack",
    { out: { type: "string" } },
  );
  const out = pathToFileURL(`${values.out ?? "npm"}/`.replace(/\/+$/, "/"));
  const files = await buildNpm(out);
  console.log(
    `wrote ${
      fileURLToPath(out)
    }: ${files.length} files (esm/mod.js, esm/tfjs/mod.js, esm/workers/shard_worker.js, .d.ts beside each)`,
  );
}
