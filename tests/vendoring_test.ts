/**
 * Vendoring, as the README says it: the published files copied into a new
 * project's `vendor/lionw/`, the README's `deno.json` (its JSON block) beside
 * them, and the README's usage and TensorFlow.js examples run there with
 * `deno run --allow-read`, resolving tfjs from npm as a user's project would.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** The first fenced block of `language` after `heading` in the README. */
function block(readme: string, heading: string, language: string): string {
  const from = readme.indexOf(heading);
  assert.ok(from >= 0, heading);
  const found = readme.slice(from).match(new RegExp("```" + language + "\\n([\\s\\S]*?)```"));
  assert.ok(found, `a ${language} block under ${heading}`);
  return found[1]!;
}

async function copyTree(from: URL, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const source = new URL(entry.name + (entry.isDirectory ? "/" : ""), from);
    if (entry.isDirectory) await copyTree(source, `${to}/${entry.name}`);
    else if (!entry.name.endsWith("_test.ts")) await Deno.copyFile(source, `${to}/${entry.name}`);
  }
}

Deno.test("a project that vendors the library as the README says runs the README's examples", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const project = await Deno.makeTempDir({ prefix: "lionw_vendor_" });
  try {
    // what `deno publish` ships: the library's own files
    const { include } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))).publish;
    await Deno.mkdir(`${project}/vendor/lionw`, { recursive: true });
    for (const path of include as string[]) {
      if (path.endsWith("/")) {
        await copyTree(new URL(path, ROOT), `${project}/vendor/lionw/${path}`);
      } else await Deno.copyFile(new URL(path, ROOT), `${project}/vendor/lionw/${path}`);
    }
    // the vendored deno.json would make vendor/lionw a workspace member of its own: a copy of
    // files has none
    await Deno.remove(`${project}/vendor/lionw/deno.json`);
    await Deno.writeTextFile(`${project}/deno.json`, block(readme, "Or vendor it", "json"));
    await Deno.writeTextFile(`${project}/usage.ts`, block(readme, "## Usage", "ts"));
    await Deno.writeTextFile(`${project}/tfjs.ts`, block(readme, "## TensorFlow.js", "ts"));
    for (const file of ["usage.ts", "tfjs.ts"]) {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-env", file],
        cwd: project,
        stdout: "null",
        stderr: "piped",
      }).output();
      const errors = new TextDecoder().decode(stderr).split("\n")
        .filter((line) => line !== "" && !line.includes("Download"));
      assert.equal(code, 0, `${file}:\n${errors.join("\n")}`);
    }
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});
