/**
 * A temporary Node project with this library's npm package installed, as a
 * user installs it: `deno task build:npm`'s output packed with `npm pack`,
 * then `npm install` of the tarball and of `extra` packages. Used by
 * tests/npm_package_test.ts and tests/tfjs_support_matrix_test.ts.
 *
 * @module
 */

import { fileURLToPath, pathToFileURL } from "node:url";
import { buildNpm } from "../scripts/build_npm.ts";

/** Runs a command in `cwd`; its stdout, or an error with its stderr. */
export async function run(command: string, args: string[], cwd: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(command, { args, cwd }).output();
  const text = new TextDecoder();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${code}:\n${text.decode(stderr)}`);
  }
  return text.decode(stdout);
}

/** The project: its folder, the files the build wrote, and a way to remove it all. */
export interface NpmProject {
  /** The Node project's folder. */
  readonly project: string;
  /** The files of the built package, relative to it. */
  readonly files: readonly string[];
  /** Removes the project, the package and the tarball. */
  remove(): Promise<void>;
}

/**
 * Builds, packs and installs the package into a new Node project.
 *
 * @param extra More packages to install beside it (`name@version`).
 * @returns The project.
 */
export async function npmProject(extra: readonly string[] = []): Promise<NpmProject> {
  const temp = await Deno.makeTempDir({ prefix: "lionw_npm_" });
  const remove = () => Deno.remove(temp, { recursive: true });
  try {
    const out = pathToFileURL(`${temp}/package/`);
    const files = await buildNpm(out);
    const packed =
      (await run("npm", ["pack", "--silent", "--pack-destination", temp], fileURLToPath(out)))
        .trim().split("\n").at(-1)!;
    const project = `${temp}/project`;
    await Deno.mkdir(project);
    await Deno.writeTextFile(`${project}/package.json`, '{ "type": "module", "private": true }\n');
    await run(
      "npm",
      ["install", "--no-audit", "--no-fund", `${temp}/${packed}`, ...extra],
      project,
    );
    return { project, files, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
