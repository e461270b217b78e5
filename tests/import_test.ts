/**
 * The package as another project imports it: by path or URL, without this
 * repository's deno.json (its import map is not theirs).
 */

import assert from "node:assert/strict";
import { runChild } from "./_util.ts";

/** One step in a child run with `--no-config`, as a project that imports this package. */
async function stepInChild(backend: string, env?: Record<string, string>) {
  const { stdout, stderr } = await runChild(
    new URL("./_import_child.ts", import.meta.url),
    [backend],
    { flags: ["--no-config"], ...(env === undefined ? {} : { env }) },
  );
  return { result: JSON.parse(stdout), stderr };
}

/** The npm packages a Deno cache holds (Deno makes an empty `npm` folder in any case). */
function npmPackagesIn(denoDir: string): string[] {
  try {
    return [...Deno.readDirSync(`${denoDir}/npm/registry.npmjs.org`)].map((entry) => entry.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

Deno.test("the CPU backends fetch no npm package (gpu.js is fetched only by the gpujs backend)", async () => {
  const emptyCache = await Deno.makeTempDir();
  try {
    for (const backend of ["wasm", "js"]) {
      const { result, stderr } = await stepInChild(backend, { DENO_DIR: emptyCache });
      assert.equal(result.backend, backend);
      // p − lr·sign(g): g = [1, −1, 0, 2], lr 0.5
      assert.deepEqual(result.data, [0.5, 1.5, 1, 0.5]);
      assert.equal(stderr, "", `${backend}: nothing is downloaded or warned about`);
    }
    assert.deepEqual(npmPackagesIn(emptyCache), []);
  } finally {
    await Deno.remove(emptyCache, { recursive: true });
  }
});

Deno.test("the gpujs backend resolves gpu.js without this repository's import map", async () => {
  const { result } = await stepInChild("gpujs");
  assert.equal(result.backend, "gpujs");
  assert.deepEqual(result.data, [0.5, 1.5, 1, 0.5]);
});

Deno.test("deno.lock and the import map hold only what the library and the demo use: a first `deno task demo` fetches no dev tool", () => {
  const devTool = /^(gpu\.js|gl|playwright-core|typescript|wabt|webgpu)@/;
  const lock = JSON.parse(Deno.readTextFileSync(new URL("../deno.lock", import.meta.url)));
  assert.deepEqual(Object.keys(lock.npm ?? {}).filter((name) => devTool.test(name)), []);
  const config = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const mapped = Object.values(config.imports as Record<string, string>)
    .map((target) => target.replace(/^npm:/, ""));
  assert.deepEqual(mapped.filter((name) => devTool.test(name)), []);
});
