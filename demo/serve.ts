/**
 * `deno task serve`: bundles the demo page, its training worker and the
 * library's shard worker, and serves them with the cross-origin isolation
 * headers (COOP/COEP) that `SharedArrayBuffer` needs in a browser.
 *
 * @module
 */

import { parseCommandLine, usageError } from "../scripts/cli.ts";
import { loadNames } from "./names_data.ts";

/** The headers that make a page cross-origin isolated (SharedArrayBuffer, shared wasm memory). */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

/** The bundles: output file → entry module. */
const BUNDLES: Readonly<Record<string, string>> = {
  "page.js": "demo/web/page.ts",
  "train_worker.js": "demo/web/train_worker.ts",
  // the library's shard worker, named as the page's workerUrl
  "shard_worker.js": "workers/shard_worker.ts",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/**
 * Bundles the page into `dir` (with `deno bundle`) and writes its data.
 *
 * @param dir The output folder.
 */
export async function buildPage(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const root = new URL("..", import.meta.url);
  for (const [file, entry] of Object.entries(BUNDLES)) {
    const { success, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform", "browser", "-o", `${dir}/${file}`, entry],
      cwd: root,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!success) {
      throw new Error(`deno bundle ${entry} failed:\n${new TextDecoder().decode(stderr)}`);
    }
  }
  await Deno.copyFile(new URL("web/index.html", import.meta.url), `${dir}/index.html`);
  await Deno.writeTextFile(`${dir}/names.json`, JSON.stringify(loadNames()));
}

/**
 * Serves `dir` with {@linkcode ISOLATION_HEADERS}.
 *
 * @param dir The built page.
 * @param options Where to listen (port 0: any free port).
 * @returns The server; its `addr` says the port.
 */
export function servePage(
  dir: string,
  options: { hostname?: string; port?: number; onListen?: (addr: Deno.NetAddr) => void } = {},
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 8000,
    onListen: options.onListen ?? (() => {}),
  }, async (request) => {
    const path = new URL(request.url).pathname;
    const file = path === "/" ? "index.html" : path.slice(1);
    const type = CONTENT_TYPES[file.slice(file.lastIndexOf("."))];
    if (file.includes("/") || file.startsWith(".") || type === undefined) {
      return new Response("Not found", { status: 404, headers: ISOLATION_HEADERS });
    }
    try {
      const body = await Deno.readFile(`${dir}/${file}`);
      return new Response(body, { headers: { ...ISOLATION_HEADERS, "Content-Type": type } });
    } catch {
      return new Response("Not found", { status: 404, headers: ISOLATION_HEADERS });
    }
  });
}

if (import.meta.main) {
  const usage =
    "deno task serve [--port N]\n\nBundles the demo page and serves it with COOP/COEP headers (default port 8000; 0: any free port).";
  const values = parseCommandLine("serve", usage, { port: { type: "string" } });
  const port = Number(values.port ?? 8000);
  if (!/^\d+$/.test(String(values.port ?? 8000)) || port > 65535) {
    usageError("serve", usage, `--port must be an integer in [0, 65535]: got "${values.port}"`);
  }
  const dir = new URL("out/web", import.meta.url).pathname;
  console.log("Bundling the page…");
  await buildPage(dir);
  servePage(dir, {
    port,
    onListen: ({ hostname, port }) =>
      console.log(`The demo page: http://${hostname}:${port}/ (Ctrl-C to stop)`),
  });
}
