import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.57.0";
import { servePage } from "../demo/serve.ts";
import type { DeviceCheckReport } from "./_device_checks_page.ts";
import { DEV_LOCK } from "./_util.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const present = await Deno.stat(CHROMIUM).then(() => true, () => false);
// CI installs Chromium and sets this, so that a missing browser fails there instead of being skipped
const required = Deno.env.get("LIONW_REQUIRE_CHROMIUM") === "1";

/** Headless Chromium as root on a closed network, with SwiftShader for WebGL and WebGPU. */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader",
  "--enable-unsafe-webgpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Bundles tests/_device_checks_page.ts into `dir`, with a page that loads it. */
async function buildChecksPage(dir: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["bundle", "--quiet", "--platform", "browser", "--lock", DEV_LOCK],
      ...["-o", `${dir}/page.js`, new URL("_device_checks_page.ts", import.meta.url).pathname],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(success, new TextDecoder().decode(stderr));
  await Deno.writeTextFile(
    `${dir}/index.html`,
    `<!doctype html><meta charset="utf-8"><script type="module" src="page.js"></script>`,
  );
}

Deno.test({
  name:
    "the tfjs adapter's device checks pass in Chromium on webgl (SwiftShader), and on webgpu where it has an adapter",
  ignore: !present && !required,
  async fn(t) {
    assert.ok(present, `Chromium is not at ${CHROMIUM} (set CHROMIUM_PATH)`);
    const dir = await Deno.makeTempDir();
    await buildChecksPage(dir);
    const server = servePage(dir, { port: 0 });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      for (const backend of ["webgl", "webgpu"]) {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(String(error)));
        await page.goto(`http://127.0.0.1:${server.addr.port}/?backend=${backend}`);
        await page.waitForFunction(
          () => (globalThis as { deviceChecks?: DeviceCheckReport }).deviceChecks?.done === true,
          null,
          { timeout: 300_000 },
        );
        const report = await page.evaluate(() =>
          (globalThis as unknown as { deviceChecks: DeviceCheckReport }).deviceChecks
        );
        await page.close();
        assert.deepEqual(errors, []);
        if (report.skipped !== null) {
          // WebGL always runs (SwiftShader); WebGPU only where this Chromium exposes an adapter
          assert.equal(backend, "webgpu", report.skipped);
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
