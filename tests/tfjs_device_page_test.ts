import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.57.0";
import { servePage } from "../demo/serve.ts";
import type { DeviceCheckReport } from "./_device_checks_page.ts";
import { DEV_LOCK } from "./_util.ts";
import { bundlePage, CHROMIUM, GPU_CHROMIUM_ARGS, pageReport } from "../scripts/browser_page.ts";

const present = await Deno.stat(CHROMIUM).then(() => true, () => false);
// CI installs Chromium and sets this, so that a missing browser fails there instead of being skipped
const required = Deno.env.get("LIONW_REQUIRE_CHROMIUM") === "1";

Deno.test({
  name:
    "the tfjs adapter's device checks pass in Chromium on webgl and webgpu (SwiftShader; webgpu may skip only outside CI)",
  ignore: !present && !required,
  async fn(t) {
    assert.ok(present, `Chromium is not at ${CHROMIUM} (set CHROMIUM_PATH)`);
    const dir = await Deno.makeTempDir();
    await bundlePage(new URL("_device_checks_page.ts", import.meta.url), dir, DEV_LOCK);
    const server = servePage(dir, { port: 0 });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...GPU_CHROMIUM_ARGS],
    });
    try {
      for (const backend of ["webgl", "webgpu"]) {
        const { report, errors } = await pageReport<DeviceCheckReport>(
          browser,
          `http://127.0.0.1:${server.addr.port}/?backend=${backend}`,
          "deviceChecks",
          300_000,
        );
        assert.deepEqual(errors, []);
        if (report.skipped !== null) {
          // WebGL always runs (SwiftShader); WebGPU only where this Chromium exposes an adapter,
          // which CI's does: there a skip is a failure
          assert.equal(backend, "webgpu", report.skipped);
          assert.ok(!required, `${backend} under CI: ${report.skipped}`);
          console.log(`Chromium ${backend} checks skipped: ${report.skipped}`);
          continue;
        }
        for (const { name, error } of report.results) {
          await t.step(`${backend}: ${name}`, () => assert.equal(error, null));
        }
      }
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
