/**
 * The npm package under every Node found (`node` on PATH and those
 * `deno task nodes --install` put beside the build; CI: 20, 22 and 24):
 * `deno task build:npm`, `npm pack`, the tarball installed into a temporary
 * Node project, then there, under each: the README's Node example runs, a
 * training loop on 2 worker_threads gives the parameters and state a Deno
 * run gives (bit for bit), a checkpoint resumes across processes; and a
 * TypeScript consumer type-checks against the package's declarations.
 *
 * Needs `node` and `npm` (CI installs them); the TypeScript used for the
 * type check comes from the npm registry. `LIONW_REQUIRE_NODES=22,24`
 * fails the test where one of those majors is not found.
 */

import assert from "node:assert/strict";
import * as lionw from "../mod.ts";
import { npmProject, run } from "./_npm_project.ts";
import { train } from "./_npm_train.mjs";
import { findNodes, type NodeRuntime } from "../scripts/node_runtimes.ts";

const TYPESCRIPT = "typescript@5.9.3";

/** A README's Node example: its first ```js block after `heading`. */
function nodeExample(readme: string, heading: string): string {
  const found = readme.slice(readme.indexOf(heading)).match(/```js\n([\s\S]*?)```/);
  assert.ok(found, `a js example under ${heading}`);
  return found[1]!;
}

/** Runs an example with `node` and checks it prints what its `console.log` line's comment says. */
async function runExample(
  node: NodeRuntime,
  example: string,
  project: string,
  file: string,
): Promise<void> {
  const said = example.match(/console\.log\(.*\); \/\/ (.*)\n/)?.[1];
  assert.ok(said !== undefined, "the example says what it prints");
  await Deno.writeTextFile(`${project}/${file}`, example);
  const { code, stdout, stderr } = await new Deno.Command(node.path, { args: [file], cwd: project })
    .output();
  const text = new TextDecoder();
  assert.equal(code, 0, text.decode(stderr));
  assert.equal(text.decode(stdout).trim(), said);
  assert.equal(text.decode(stderr), "", "no warning");
}

/** The package under one Node: its examples, a training loop on its workers, a checkpoint. */
async function underNode(t: Deno.TestContext, node: NodeRuntime, project: string): Promise<void> {
  await t.step(
    `Node ${node.version}: the README's Node example and the package's own print what they say`,
    async () => {
      const repository = await Deno.readTextFile(new URL("../README.md", import.meta.url));
      await runExample(node, nodeExample(repository, "### Node"), project, "readme.mjs");
      const own = await Deno.readTextFile(`${project}/node_modules/@decoupled/lionw/README.md`);
      await runExample(node, nodeExample(own, "## Usage"), project, "package_readme.mjs");
      // the package's README opens with Node, says it is ESM, and links nowhere it does not ship
      assert.match(own, /Node 22 or later \(Node 20\.16 runs it too/);
      assert.match(own, /\*\*ESM only\*\*/);
      const links = [...own.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]!);
      assert.deepEqual(links.filter((link) => !/^https:\/\//.test(link)), []);
    },
  );

  await t.step(
    `Node ${node.version}: a training loop on 2 worker_threads equals Deno's, bit for bit`,
    async () => {
      await Deno.copyFile(new URL("./_npm_train.mjs", import.meta.url), `${project}/train.mjs`);
      await Deno.writeTextFile(
        `${project}/main.mjs`,
        'import * as lionw from "@decoupled/lionw";\nimport { train } from "./train.mjs";\nconsole.log(JSON.stringify(await train(lionw)));\n',
      );
      const got = JSON.parse(await run(node.path, ["main.mjs"], project));
      const deno = await train(lionw);
      assert.equal(got.backend, "wasm");
      assert.equal(got.workers, 2);
      assert.deepEqual([got.w, got.b, got.m], [deno.w, deno.b, deno.m]);
      assert.deepEqual(got.losses, deno.losses);
      assert.equal(
        Object.keys(deno.metrics).length,
        16,
        "two tensors' six metrics and four global norms",
      );
      if (node.major >= 22) {
        // relaxed SIMD validates from Node 22 on: the build Deno runs, the same metric sums
        assert.deepEqual(got.metrics, deno.metrics);
      } else {
        // Node 20 runs the strict build: float32 products rounded apart, not fused
        for (const [name, value] of Object.entries(deno.metrics) as [string, number][]) {
          assert.ok(Math.abs(got.metrics[name] - value) <= 1e-5 * Math.abs(value), name);
        }
      }
    },
  );

  await t.step(
    `Node ${node.version}: a checkpoint file saved by one Node process resumes exactly in another`,
    async () => {
      const script = (options: string) =>
        `import * as lionw from "@decoupled/lionw";\nimport { train } from "./train.mjs";\nconsole.log(JSON.stringify(await train(lionw, ${options})));\n`;
      await Deno.writeTextFile(
        `${project}/first.mjs`,
        script('{ to: 10, save: "half.safetensors" }'),
      );
      await Deno.writeTextFile(
        `${project}/second.mjs`,
        script('{ from: 10, load: "half.safetensors" }'),
      );
      await run(node.path, ["first.mjs"], project);
      const resumed = JSON.parse(await run(node.path, ["second.mjs"], project));
      const whole = await train(lionw);
      assert.deepEqual([resumed.w, resumed.b, resumed.m], [whole.w, whole.b, whole.m]);
      assert.deepEqual(resumed.losses, whole.losses.slice(10));
      // the write was atomic: no temporary file is left beside it
      const left = [...Deno.readDirSync(project)].map((entry) => entry.name);
      assert.deepEqual(left.filter((name) => name.includes("half.safetensors")), [
        "half.safetensors",
      ]);
      // Deno KV is Deno's: in Node, the KV functions say so
      await Deno.writeTextFile(
        `${project}/kv.mjs`,
        `import { DecoupledLionW, ParameterStore, saveCheckpointKv } from "@decoupled/lionw";
const opt = new DecoupledLionW([new ParameterStore().add("w", [2])]);
try { await saveCheckpointKv(undefined, ["run"], opt); } catch (error) { console.log(error.message); }
await opt.close();
`,
      );
      assert.match(
        await run(node.path, ["kv.mjs"], project),
        /in Node, use saveCheckpoint\(\) and loadCheckpoint\(\) with a file/,
      );
    },
  );
}

/** The Node majors `LIONW_REQUIRE_NODES` asks for (CI: 22,24); none elsewhere. */
function requiredMajors(): number[] {
  const asked = Deno.env.get("LIONW_REQUIRE_NODES") ?? "";
  return asked === "" ? [] : asked.split(",").map(Number);
}

Deno.test({
  name:
    "the npm package installs into a Node project; under every Node found: import, workers, results and checkpoints work; types check",
  async fn(t) {
    const nodes = await findNodes();
    const majors = nodes.map((node) => node.major);
    for (const major of requiredMajors()) {
      assert.ok(
        majors.includes(major),
        `LIONW_REQUIRE_NODES asks for Node ${major}: found ${
          nodes.map((n) => n.version)
        } (deno task nodes --install ${major})`,
      );
    }
    assert.ok(nodes.length > 0, "a node on PATH");
    const { project, files, remove } = await npmProject([TYPESCRIPT]);
    try {
      assert.ok(files.includes("esm/workers/shard_worker.js"));
      assert.ok(files.includes("esm/mod.d.ts") && files.includes("esm/tfjs/mod.d.ts"));
      for (const node of nodes) await underNode(t, node, project);
      await t.step("a TypeScript consumer type-checks against the declarations", async () => {
        await Deno.writeTextFile(
          `${project}/consumer.ts`,
          `import { DecoupledLionW, ParameterStore, type StepReport } from "@decoupled/lionw";
import { lionw } from "@decoupled/lionw/tfjs";
const w = new ParameterStore().add("w", [2]);
const opt = new DecoupledLionW([w], { lr: 1e-3, momentumDtype: "bfloat16" });
const report: StepReport = opt.lastStep;
const made: typeof lionw = lionw;
// @ts-expect-error: an unknown option is a type error
new DecoupledLionW([w], { learningRate: 1 });
export { made, report };
`,
        );
        await Deno.writeTextFile(
          `${project}/tsconfig.json`,
          JSON.stringify({
            compilerOptions: {
              strict: true,
              noEmit: true,
              module: "nodenext",
              target: "es2022",
              lib: ["es2022", "dom"],
              types: [],
              skipLibCheck: true,
            },
            files: ["consumer.ts"],
          }),
        );
        await run(nodes.at(-1)!.path, ["node_modules/typescript/bin/tsc", "-p", "."], project);
      });
    } finally {
      await remove();
    }
  },
});
