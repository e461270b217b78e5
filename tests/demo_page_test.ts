import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.57.0";
import { buildPage, servePage } from "../demo/serve.ts";
import type { DemoState } from "../demo/web/page.ts";
import { runChild } from "./_util.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const present = await Deno.stat(CHROMIUM).then(() => true, () => false);
// CI installs Chromium and sets this, so that a missing browser fails there instead of being skipped
const required = Deno.env.get("LIONW_REQUIRE_CHROMIUM") === "1";

/** Flags for a headless Chromium on a closed network, as root. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const RUN = { steps: 40, evalEvery: 20, seed: 42, workers: 2 };

/** The same run on Deno, through the demo's command line. */
async function denoRun(): Promise<
  {
    lionw: { valLoss: number[]; trainLoss: number[] };
    adam: { valLoss: number[]; trainLoss: number[] };
  }
> {
  const out = await Deno.makeTempDir();
  await runChild(
    new URL("../demo/main.ts", import.meta.url),
    [
      ...["--steps", String(RUN.steps), "--eval-every", String(RUN.evalEvery)],
      ...["--seed", String(RUN.seed), "--out", out],
    ],
    { flags: ["--allow-write", "--allow-env"] },
  );
  const report = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  await Deno.remove(out, { recursive: true });
  return report;
}

Deno.test({
  name: "the demo page trains in Chromium on LionW's workers in shared memory, with Deno's numbers",
  ignore: !present && !required,
  async fn() {
    assert.ok(present, `Chromium is not at ${CHROMIUM} (set CHROMIUM_PATH)`);
    const dir = await Deno.makeTempDir();
    await buildPage(dir);
    const server = servePage(dir, { port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(String(error)));
      const query =
        `steps=${RUN.steps}&eval=${RUN.evalEvery}&seed=${RUN.seed}&workers=${RUN.workers}`;
      await page.goto(`http://127.0.0.1:${server.addr.port}/?${query}`);
      await page.waitForFunction(
        () => {
          const state = (globalThis as unknown as { demoState?: DemoState }).demoState;
          return state?.done || state?.error !== null;
        },
        null,
        { timeout: 180_000 },
      );
      const state = await page.evaluate(() =>
        (globalThis as unknown as { demoState: DemoState }).demoState
      );
      assert.equal(state.error, null);
      assert.deepEqual(errors, []);
      assert.equal(state.crossOriginIsolated, true);
      assert.equal(state.sharedMemory, true);
      assert.equal(state.lionwWorkers, RUN.workers);
      const history = state.history!;
      assert.deepEqual(history.evalSteps, [0, 20, 40]);
      for (const run of ["lionw", "adam"] as const) {
        const loss = history[run].valLoss;
        assert.ok(loss.at(-1)! < loss[0]! - 0.3, `${run} learns in the page: ${loss}`);
      }
      // the charts were drawn
      assert.equal(await page.locator("#loss svg").count(), 1);
      assert.equal(await page.locator("#metrics svg").count(), 1);

      const deno = await denoRun();
      for (const run of ["lionw", "adam"] as const) {
        assert.deepEqual(history[run].valLoss, deno[run].valLoss, `${run} validation loss`);
        assert.deepEqual(history[run].trainLoss, deno[run].trainLoss, `${run} training loss`);
      }
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
