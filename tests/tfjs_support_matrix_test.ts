/**
 * The support matrix: on every runtime and tfjs backend the docs claim, a
 * tfjs-layers model trains with `lionw()` (tests/_training_check.mjs says
 * what is checked). Deno's rows run in child processes, Node's against the
 * npm package installed in a Node project, Chromium's in a bundled page.
 *
 * docs/tfjs.md's support table is this test's output: the test fails when
 * the table there differs, and `LIONW_UPDATE_DOCS=1` writes it instead.
 * Under CI (`LIONW_REQUIRE_CHROMIUM=1`, `LIONW_REQUIRE_WEBGPU=1`) a row that
 * cannot run fails; elsewhere it is listed with the reason.
 */

import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.57.0";
import { servePage } from "../demo/serve.ts";
import { bundlePage, CHROMIUM, GPU_CHROMIUM_ARGS, pageReport } from "../scripts/browser_page.ts";
import { npmProject, run } from "./_npm_project.ts";
import type { TrainingCheckReport } from "./_training_check_page.ts";
import { DEV_LOCK, runChild } from "./_util.ts";

/** A row of the table: a runtime and backend, and each check's result (or why it did not run). */
interface Row {
  runtime: string;
  backend: string;
  loss?: string;
  predict?: string;
  resume?: string;
  clone?: string;
  failures?: string[];
  skipped?: string;
}

const CLAIMED: Record<string, readonly string[]> = {
  Deno: ["cpu", "wasm", "webgpu"],
  Node: ["cpu", "wasm"],
  Chromium: ["cpu", "wasm", "webgl", "webgpu"],
};
const TFJS = "4.22.0";
const DOC = new URL("../docs/tfjs.md", import.meta.url);
const [START, END] = ["<!-- support-matrix:start -->", "<!-- support-matrix:end -->"];

/** Whether a row that cannot run here fails (CI, which installs what it needs) or is listed. */
function required(runtime: string, backend: string): boolean {
  if (runtime === "Chromium") return Deno.env.get("LIONW_REQUIRE_CHROMIUM") === "1";
  if (backend === "webgpu") return Deno.env.get("LIONW_REQUIRE_WEBGPU") === "1";
  return true; // Deno's and Node's CPU backends run wherever the tests do
}

async function denoRow(backend: string): Promise<Row> {
  const { stdout } = await runChild(
    new URL("./_training_check_child.ts", import.meta.url),
    [backend],
    { flags: ["--allow-env", "--allow-sys"], timeoutMs: 120_000 },
  );
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

const NODE_CHECK = `import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import * as tfl from "@tensorflow/tfjs-layers";
import { lionw } from "@decoupled/lionw/tfjs";
import { trainingCheck } from "./training_check.mjs";

const backend = process.argv[2];
tf.env().set("PROD", true);
await tf.setBackend(backend);
const exact = backend === "cpu" || backend === "wasm";
console.log(JSON.stringify(await trainingCheck({ tf, tfl, lionw }, { runtime: "Node", exact })));
`;

async function nodeRows(): Promise<Row[]> {
  const packages = ["tfjs-core", "tfjs-layers", "tfjs-backend-cpu", "tfjs-backend-wasm"];
  const { project, remove } = await npmProject(packages.map((p) => `@tensorflow/${p}@${TFJS}`));
  try {
    await Deno.copyFile(
      new URL("./_training_check.mjs", import.meta.url),
      `${project}/training_check.mjs`,
    );
    await Deno.writeTextFile(`${project}/check.mjs`, NODE_CHECK);
    const rows: Row[] = [];
    for (const backend of CLAIMED.Node!) {
      const stdout = await run("node", ["check.mjs", backend], project);
      rows.push(JSON.parse(stdout.trim().split("\n").at(-1)!));
    }
    return rows;
  } finally {
    await remove();
  }
}

async function chromiumRows(): Promise<Row[]> {
  const present = await Deno.stat(CHROMIUM).then(() => true, () => false);
  if (!present) {
    return CLAIMED.Chromium!.map((backend) => ({
      runtime: "Chromium",
      backend,
      skipped: `no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`,
    }));
  }
  const dir = await Deno.makeTempDir();
  await bundlePage(new URL("_training_check_page.ts", import.meta.url), dir, DEV_LOCK);
  // tfjs-backend-wasm fetches its .wasm files from beside the page (setWasmPaths("./"))
  const wasmDist = new URL(".", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).pathname;
  for (const entry of Deno.readDirSync(wasmDist)) {
    if (entry.name.endsWith(".wasm")) {
      await Deno.copyFile(`${wasmDist}${entry.name}`, `${dir}/${entry.name}`);
    }
  }
  const server = servePage(dir, { port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...GPU_CHROMIUM_ARGS] });
  try {
    const rows: Row[] = [];
    for (const backend of CLAIMED.Chromium!) {
      const { report, errors } = await pageReport<TrainingCheckReport>(
        browser,
        `http://127.0.0.1:${server.addr.port}/?backend=${backend}`,
        "trainingCheck",
        180_000,
      );
      const failures = [...errors, ...(report.error === null ? [] : [report.error])];
      rows.push(
        report.row === null ? { runtime: "Chromium", backend, skipped: failures.join("; ") } : {
          ...(report.row as unknown as Row),
          failures: [...report.row.failures as string[], ...failures],
        },
      );
    }
    return rows;
  } finally {
    await browser.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The markdown table (what docs/tfjs.md holds between its markers), padded as `deno fmt` pads it. */
function table(rows: readonly Row[]): string {
  const head = [
    "runtime",
    "tfjs backend",
    "loss, epoch 1 → 12",
    "`predict` = forward pass from `getWeights()`",
    "save → reload → `fit`",
    "a clone taken before training",
  ];
  const body = rows.map((row) => [
    row.runtime,
    `\`${row.backend}\``,
    ...(row.skipped === undefined
      ? [row.loss!, row.predict!, row.resume!, row.clone!]
      : [`not run here: ${row.skipped}`, "", "", ""]),
  ]);
  const widths = head.map((cell, i) => Math.max(cell.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

Deno.test({
  name:
    "a tfjs-layers model trains with lionw() on every runtime and tfjs backend the docs claim, and docs/tfjs.md's support table is this output",
  sanitizeResources: false, // the page server and the browser end in their own finally blocks
  async fn(t) {
    const rows: Row[] = [];
    for (const backend of CLAIMED.Deno!) {
      await t.step(`Deno ${backend}`, async () => void rows.push(await denoRow(backend)));
    }
    await t.step("Node (the npm package)", async () => void rows.push(...await nodeRows()));
    await t.step("Chromium (a page)", async () => void rows.push(...await chromiumRows()));

    for (const row of rows) {
      await t.step(`${row.runtime} ${row.backend}: every check holds`, () => {
        if (row.skipped !== undefined) {
          assert.ok(!required(row.runtime, row.backend), `cannot run: ${row.skipped}`);
          console.log(`${row.runtime} ${row.backend} not run here: ${row.skipped}`);
          return;
        }
        assert.deepEqual(row.failures, []);
      });
    }
    const expected = rows.map(({ runtime, backend }) => `${runtime} ${backend}`);
    const claimed = Object.entries(CLAIMED).flatMap(([r, bs]) => bs.map((b) => `${r} ${b}`));
    assert.deepEqual(expected, claimed, "a row for every claimed combination");

    const doc = await Deno.readTextFile(DOC);
    const [before, rest] = doc.split(START) as [string, string];
    const after = rest.slice(rest.indexOf(END));
    const written = `${before}${START}\n\n${table(rows)}\n\n${after}`;
    if (Deno.env.get("LIONW_UPDATE_DOCS") === "1") await Deno.writeTextFile(DOC, written);
    else {
      assert.equal(
        doc,
        written,
        "docs/tfjs.md's support table differs from this run: LIONW_UPDATE_DOCS=1 writes it",
      );
    }
  },
});
