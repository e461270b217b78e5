import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "npm:playwright-core@1.57.0";
import { buildPage, servePage } from "../demo/serve.ts";
import type { DemoState } from "../demo/web/page.ts";
import { runChild } from "./_util.ts";
import { CHROMIUM, GPU_CHROMIUM_ARGS } from "../scripts/browser_page.ts";

const present = await Deno.stat(CHROMIUM).then(() => true, () => false);
// CI installs Chromium and sets this, so that a missing browser fails there instead of being skipped
const required = Deno.env.get("LIONW_REQUIRE_CHROMIUM") === "1";

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

/** Opens the demo page with `query` and waits until its run ends; the page's state and errors. */
async function runPage(
  browser: Browser,
  port: number,
  query: string,
): Promise<{ state: DemoState; errors: string[]; page: Page }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(`http://127.0.0.1:${port}/?${query}`);
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
  return { state, errors, page };
}

Deno.test({
  name:
    "the demo page trains in Chromium on LionW's workers in shared memory, with Deno's numbers, and on webgl and webgpu",
  ignore: !present && !required,
  async fn(t) {
    assert.ok(present, `Chromium is not at ${CHROMIUM} (set CHROMIUM_PATH)`);
    const dir = await Deno.makeTempDir();
    await buildPage(dir);
    const server = servePage(dir, { port: 0 });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...GPU_CHROMIUM_ARGS],
    });
    const query =
      `steps=${RUN.steps}&eval=${RUN.evalEvery}&seed=${RUN.seed}&workers=${RUN.workers}`;
    try {
      let cpuLoss: number[] = [];
      await t.step("cpu (the default): LionW's workers, Deno's numbers bit for bit", async () => {
        const { state, errors, page } = await runPage(browser, server.addr.port, query);
        assert.equal(state.error, null);
        assert.deepEqual(errors, []);
        assert.equal(state.tfjsBackend, "cpu");
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
        cpuLoss = history.lionw.valLoss;

        const deno = await denoRun();
        for (const run of ["lionw", "adam"] as const) {
          assert.deepEqual(history[run].valLoss, deno[run].valLoss, `${run} validation loss`);
          assert.deepEqual(history[run].trainLoss, deno[run].trainLoss, `${run} training loss`);
        }
      });
      for (const backend of ["webgl", "webgpu"]) {
        await t.step(
          `?backend=${backend}: both train on the GPU (SwiftShader), LionW on the device`,
          async () => {
            const { state, errors, page } = await runPage(
              browser,
              server.addr.port,
              `${query}&backend=${backend}`,
            );
            assert.equal(state.error, null);
            assert.deepEqual(errors, []);
            assert.equal(state.tfjsBackend, backend);
            assert.equal(state.names?.lionw?.length, 10, "names sampled after training");
            assert.ok(
              new RegExp(`tfjs ${backend}; LionW steps on the device`).test(
                await page.locator("#status").innerText(),
              ),
            );
            const history = state.history!;
            for (const run of ["lionw", "adam"] as const) {
              const loss = history[run].valLoss;
              assert.ok(loss.at(-1)! < loss[0]! - 0.3, `${run} learns on ${backend}: ${loss}`);
            }
            // the same run as on the cpu backend, to float32 (the GPU sums in another order)
            history.lionw.valLoss.forEach((loss, i) =>
              assert.ok(
                Math.abs(loss - cpuLoss[i]!) <= 1e-2 * cpuLoss[i]!,
                `${loss} vs ${cpuLoss[i]}`,
              )
            );
            assert.equal(await page.locator("#metrics svg").count(), 1);
          },
        );
      }
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
