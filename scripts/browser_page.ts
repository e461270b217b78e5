/**
 * A page bundled from one module, for headless Chromium with WebGL and WebGPU
 * on SwiftShader: the device checks (tests/tfjs_device_page_test.ts) and
 * the device bench (`deno task bench:tfjs`) both run this way.
 *
 * @module
 */

import type { Browser } from "npm:playwright-core@1.57.0";

/** Where Chromium is (Debian's, unless `CHROMIUM_PATH` says otherwise). */
export const CHROMIUM: string = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** Headless Chromium as root on a closed network, with SwiftShader for WebGL and WebGPU. */
export const GPU_CHROMIUM_ARGS: readonly string[] = [
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

/**
 * Bundles `entry` for the browser into `dir/page.js`, with an `index.html`
 * that loads it.
 *
 * @param entry The page's module.
 * @param dir The output folder (made if missing).
 * @param lock The lockfile the bundle resolves its packages with.
 * @throws {Error} With deno bundle's output, when it fails.
 */
export async function bundlePage(entry: URL, dir: string, lock: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["bundle", "--quiet", "--platform", "browser", "--lock", lock],
      ...["-o", `${dir}/page.js`, entry.pathname],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`deno bundle ${entry.pathname} failed:\n${new TextDecoder().decode(stderr)}`);
  }
  await Deno.writeTextFile(
    `${dir}/index.html`,
    `<!doctype html><meta charset="utf-8"><script type="module" src="page.js"></script>`,
  );
}

/**
 * Opens `url` in a new page of `browser`, waits until the page's report
 * (`globalThis[name]`) says it is done, and returns it with the page's
 * uncaught errors.
 *
 * @param browser The browser.
 * @param url The page.
 * @param name The global the page keeps its report in (with a `done` flag).
 * @param timeoutMs How long the page may take.
 * @returns The report and the errors.
 */
export async function pageReport<T extends { readonly done: boolean }>(
  browser: Browser,
  url: string,
  name: string,
  timeoutMs: number,
): Promise<{ report: T; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  try {
    await page.goto(url);
    await page.waitForFunction(
      (key) =>
        (globalThis as unknown as Record<string, { done?: boolean } | undefined>)[key]?.done ===
          true,
      name,
      { timeout: timeoutMs },
    );
    const report = await page.evaluate((key) => (globalThis as Record<string, unknown>)[key], name);
    return { report: report as T, errors };
  } finally {
    await page.close();
  }
}
