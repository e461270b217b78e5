/**
 * The house rules, read from the sources: `src/` folders import only the
 * folders after them, nothing imports in a cycle, the shard worker loads
 * only what it runs, the adapters use public modules, and only the engine
 * tests a backend's name.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** The folders of `src/`, each importing only those after it. */
const LAYERS = [
  "tools",
  "io",
  "training",
  "optimizer",
  "distributed",
  "engine",
  "step",
  "kernels",
  "store",
  "errors",
  "_internal",
];

/** Every `.ts` file under `dir` (repository-relative), tests left out. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sources(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) out.push(path);
  }
  return out;
}

/** The relative modules a file imports, statically or dynamically, as repository paths. */
function importsOf(path: string): string[] {
  // doc comments hold examples with imports of their own: leave them out
  const text = Deno.readTextFileSync(new URL(path, ROOT)).split("\n")
    .filter((line) => !/^\s*(\*|\/\/)/.test(line)).join("\n");
  const found = text.matchAll(/(?:from|import)\s*\(?\s*"(\.\.?\/[^"]+)"/g);
  const dir = new URL(path, ROOT);
  return [...found].map(([, spec]) => new URL(spec!, dir).href.slice(ROOT.href.length));
}

const FILES = ["src", "workers", "gpu", "tfjs", "mpi"].flatMap(sources);
const GRAPH = new Map(FILES.map((file) => [file, importsOf(file)]));

/** The `src/` folder of a path, or `undefined` outside `src/`. */
function layerOf(path: string): string | undefined {
  const match = /^src\/([^/]+)\//.exec(path);
  return match?.[1];
}

/** Every module `entry` loads, itself included. */
function closure(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const dep of GRAPH.get(file) ?? []) visit(dep);
  };
  visit(entry);
  return seen;
}

Deno.test("every src/ folder imports only the folders after it", () => {
  assert.deepEqual(
    [...new Set(FILES.map(layerOf).filter((l) => l !== undefined))].sort(),
    [...LAYERS].sort(),
    "src/ holds exactly these folders",
  );
  const upward: string[] = [];
  for (const [file, deps] of GRAPH) {
    const from = layerOf(file);
    if (from === undefined) continue;
    for (const dep of deps) {
      const to = layerOf(dep);
      if (to !== undefined && LAYERS.indexOf(to) < LAYERS.indexOf(from)) {
        upward.push(`${file} -> ${dep}`);
      }
    }
  }
  assert.deepEqual(upward, []);
});

Deno.test("no module imports itself back through a cycle", () => {
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const dep of GRAPH.get(file) ?? []) {
      if (state.get(dep) === "open") {
        cycles.push([...stack.slice(stack.indexOf(dep)), dep].join(" -> "));
      } else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of GRAPH.keys()) if (!state.has(file)) visit(file);
  assert.deepEqual(cycles, []);
});

Deno.test("the edges: nothing under src/ imports workers/ or gpu/ (they register), which never import the factory", () => {
  const wrong: string[] = [];
  for (const [file, deps] of GRAPH) {
    for (const dep of deps) {
      const edge = dep.startsWith("workers/") || dep.startsWith("gpu/");
      if (edge && layerOf(file) !== undefined) wrong.push(`${file} -> ${dep}`);
      const inEdge = file.startsWith("workers/") || file.startsWith("gpu/");
      if (
        inEdge &&
        !["engine", "step", "kernels", "store", "_internal", undefined].includes(layerOf(dep))
      ) {
        wrong.push(`${file} -> ${dep}`);
      }
      if (inEdge && dep === "src/engine/engine_factory.ts") wrong.push(`${file} -> ${dep}`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("a shard worker loads no pool, optimizer, toolkit or distributed module", () => {
  const loaded = [...closure("workers/shard_worker.ts")];
  const wrong = loaded.filter((file) =>
    file === "workers/worker_pool.ts" || file === "src/engine/engine_factory.ts" ||
    file === "src/engine/inline_engine.ts" ||
    ["optimizer", "distributed", "training", "io", "tools"].includes(layerOf(file) ?? "")
  );
  assert.deepEqual(wrong, []);
  // (33: the 8-bit moments' format and map, and the blocks' tuned rule, which the kernels run)
  assert.ok(loaded.length <= 33, `the shard worker loads ${loaded.length} modules`);
});

Deno.test("the adapters import public modules, no private src/ file", () => {
  const wrong = FILES.filter((file) => file.startsWith("tfjs/") || file.startsWith("mpi/"))
    .flatMap((file) => GRAPH.get(file)!.map((dep) => `${file} -> ${dep}`))
    .filter((edge) => /-> src\/(_|.*\/_)/.test(edge));
  assert.deepEqual(wrong, []);
});

Deno.test("no module outside the engine tests a backend's name", () => {
  const tests = FILES.filter((file) => !file.startsWith("src/engine/"))
    .filter((file) =>
      /\bbackend\s*[!=]==?\s*"(js|wasm|gpujs)"|"(js|wasm|gpujs)"\s*[!=]==?\s*\S*backend\b/.test(
        Deno.readTextFileSync(new URL(file, ROOT)),
      )
    );
  assert.deepEqual(tests, []);
});

Deno.test("no tfjs module tests a tfjs backend's name: the adapter reads its row, tfjs its kernel registry", () => {
  const compares =
    /getBackend\(\)\s*[!=]==|[!=]==\s*"(cpu|wasm|webgl|webgpu)"|"(cpu|wasm|webgl|webgpu)"\s*[!=]==|\[\s*"(webgl|webgpu|cpu|wasm)"[^\]]*\]\.includes/;
  const tests = FILES.filter((file) => file.startsWith("tfjs/"))
    .filter((file) => compares.test(Deno.readTextFileSync(new URL(file, ROOT))));
  assert.deepEqual(tests, []);
});

Deno.test("the optimizer class stays small: at most 450 lines of code, as every module", () => {
  const codeLines = (file: string) =>
    Deno.readTextFileSync(new URL(file, ROOT)).split("\n")
      .filter((line) => !/^\s*($|\/\/|\/\*|\*)/.test(line)).length;
  const large = FILES.filter((file) => !file.endsWith("lion_wasm.ts"))
    .map((file) => [file, codeLines(file)] as const)
    .filter(([, lines]) => lines > 450);
  assert.deepEqual(large, []);
});

Deno.test("the optimizer composes its parts: nothing subclasses it, and it reaches no engine implementation", () => {
  const subclasses = FILES.filter((file) =>
    /extends\s+DecoupledLionW\b/.test(Deno.readTextFileSync(new URL(file, ROOT)))
  );
  assert.deepEqual(subclasses, []);
  const reached = GRAPH.get("src/optimizer/decoupled_lionw.ts")!.filter((dep) =>
    dep.startsWith("src/engine/") && dep !== "src/engine/engine.ts" &&
    dep !== "src/engine/backends.ts" && dep !== "src/engine/engine_factory.ts"
  );
  assert.deepEqual(reached, []);
});

Deno.test("the front pages stay within their limits: README 12,000 bytes, performance and contributing 10,000", () => {
  const limits = { "README.md": 12_000, "docs/performance.md": 10_000, "CONTRIBUTING.md": 10_000 };
  const over = Object.entries(limits)
    .map(([file, limit]) => [file, Deno.readFileSync(new URL(file, ROOT)).length, limit] as const)
    .filter(([, size, limit]) => size > limit);
  assert.deepEqual(over, []);
});
