/**
 * Every task that runs a script answers `--help` (its usage, exit 0,
 * nothing written) and refuses an unknown flag with exit 2 and the closest
 * known flag, as users of `deno task …` meet them.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const TASKS = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))).tasks as Record<
  string,
  { command: string }
>;
/** The tasks that run a script of this repository (test and check run deno's own commands). */
const SCRIPT_TASKS = Object.keys(TASKS).filter((name) =>
  / (deno run|python3) /.test(` ${TASKS[name]!.command}`) || /python3 /.test(TASKS[name]!.command)
);
/** A misspelt flag per task, and the flag it should suggest. */
const TYPO: Record<string, [string, string]> = {
  demo: ["--stesp", "--steps"],
  "demo:dist": ["--rnaks", "--ranks"],
  serve: ["--prot", "--port"],
  bench: ["--size", "--sizes"],
  "bench:large": ["--element", "--elements"],
  "bench:dist": ["--rep", "--reps"],
  "bench:tfjs": ["--quik", "--quick"],
  "build:npm": ["--output", "--out"],
  "build:wasm": ["--hlep", "--help"],
  "doc:lint": ["--hepl", "--help"],
  fixtures: ["--sed", "--seed"],
  net: ["--hots", "--hosts"],
  nodes: ["--instal", "--install"],
};

function torchAvailable(): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch"], stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function task(name: string, args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", name, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

/** Every tracked file's modification time, to see that nothing was written. */
function modified(): Map<string, number> {
  const files = new TextDecoder().decode(
    new Deno.Command("git", { args: ["ls-files"], cwd: ROOT }).outputSync().stdout,
  ).trim().split("\n");
  return new Map(
    files.map((file) => [file, Deno.statSync(new URL(file, ROOT)).mtime?.getTime() ?? 0]),
  );
}

Deno.test("every task that runs a script answers --help and refuses unknown flags with a hint", async (t) => {
  assert.deepEqual(
    SCRIPT_TASKS.sort(),
    Object.keys(TYPO).sort(),
    "each script task has a case here",
  );
  const withTorch = torchAvailable();
  for (const name of SCRIPT_TASKS) {
    if (name === "fixtures" && !withTorch) {
      console.log("fixtures: left out, as /usr/bin/python3 cannot import torch");
      continue;
    }
    await t.step(name, async () => {
      const before = modified();
      const help = await task(name, ["--help"]);
      assert.equal(help.code, 0, `${name} --help: ${help.stderr}`);
      assert.match(help.stdout, /usage|deno task|Usage/i, `${name} --help prints its usage`);
      assert.deepEqual(modified(), before, `${name} --help wrote nothing`);
      const [typo, meant] = TYPO[name]!;
      const bad = await task(name, [typo]);
      assert.equal(bad.code, 2, `${name} ${typo}: exit ${bad.code}\n${bad.stdout}${bad.stderr}`);
      assert.ok(
        bad.stderr.includes(meant),
        `${name} ${typo} suggests ${meant}:\n${bad.stderr}`,
      );
    });
  }
});

Deno.test("bench --node: a path where no Node runs is a usage error naming it", async () => {
  const bad = await task("bench", ["--node", "/nonexistent/node", "--peers", "node"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /no Node runs at --node \/nonexistent\/node/);
});
