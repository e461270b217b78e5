/**
 * A page bundled from one module, for headless Chromium with WebGL and WebGPU
 * on SwiftShader: the device checks (tests/tfjs_device_page_test.ts) and
 * the device bench (`deno task bench:tfjs`) both run this way.
 *
 * @module
 */

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
