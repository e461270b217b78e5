/**
 * The package as another project imports it: by path or URL, without this
 * repository's deno.json (its import map is not theirs).
 */

import assert from "node:assert/strict";

const CHILD = new URL("./_import_child.ts", import.meta.url).pathname;

async function runChild(backend: string, flags: string[], env: Record<string, string> = {}) {
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-check", "--allow-read", ...flags, CHILD, backend],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assert.equal(child.code, 0, stderr);
  return { result: JSON.parse(new TextDecoder().decode(child.stdout)), stderr };
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
      const { result, stderr } = await runChild(backend, [], { DENO_DIR: emptyCache });
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
  const { result } = await runChild("gpujs", []);
  assert.equal(result.backend, "gpujs");
  assert.deepEqual(result.data, [0.5, 1.5, 1, 0.5]);
});
