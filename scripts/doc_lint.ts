/**
 * `deno task doc:lint`: `deno doc --lint` over every entry point of
 * deno.json's `exports` at once (a type one entry point exports is public for
 * all), failing on any diagnostic but one kind: a `private-type-ref` to one
 * of the tfjs-core types that the `./tfjs` entry point extends or takes.
 *
 * Those five are types of another package, which `deno doc` means not to
 * flag (denoland/deno#27364): its exemption covers types declared in `jsr:`,
 * `npm:` and `https:` modules, but with `"nodeModulesDir": "none"` Deno
 * resolves an npm package to `file:` paths in its cache, where it does not
 * reach. Re-exporting them would make tfjs-core's own undocumented members
 * part of this package's docs. Any other diagnostic, and any sixth reference,
 * fails.
 *
 * @module
 */

import { parseCommandLine } from "./cli.ts";

/** tfjs-core 4.22 types in the `./tfjs` API: `extends tf.Optimizer`, and what its methods take. */
const TFJS_TYPES: ReadonlySet<string> = new Set([
  "Optimizer",
  "Tensor",
  "Variable",
  "NamedTensorMap",
  "ConfigDict",
]);

/** One diagnostic of `deno doc --lint`: its first line and the rest. */
export interface Diagnostic {
  readonly head: string;
  readonly text: string;
}

/**
 * The diagnostics in `deno doc --lint`'s output (without colours).
 *
 * @param output What it printed.
 * @returns Each diagnostic.
 */
export function diagnosticsOf(output: string): Diagnostic[] {
  return output.split(/\n(?=error\[)/).filter((block) => block.startsWith("error[")).map(
    (block) => ({ head: block.split("\n")[0]!, text: block.trim() }),
  );
}

/**
 * Whether a diagnostic is a reference to one of the tfjs-core types, as its
 * own declaration shows it.
 *
 * @param diagnostic The diagnostic.
 * @returns Whether it is allowed.
 */
export function isTfjsTypeReference({ head, text }: Diagnostic): boolean {
  const type = head.match(/^error\[private-type-ref\]: .* references private type '(\w+)'$/)?.[1];
  return type !== undefined && TFJS_TYPES.has(type) &&
    /\|\s*export (declare )?.*\n\s*\|\s*- this is the referenced type/.test(text);
}

if (import.meta.main) {
  parseCommandLine(
    "doc:lint",
    "deno task doc:lint\n\nRuns deno doc --lint over every entry point of deno.json's exports at once; fails on any\ndiagnostic but a reference to one of the five tfjs-core types the ./tfjs entry point uses.",
    {},
  );
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const entries = Object.values(config.exports as Record<string, string>);
  const { stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", ...entries],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const diagnostics = diagnosticsOf(output);
  const allowed = diagnostics.filter(isTfjsTypeReference);
  const failing = diagnostics.filter((d) => !isTfjsTypeReference(d));
  for (const { text } of failing) console.error(`${text}\n`);
  const summary = `deno doc --lint ${entries.join(" ")}: ${failing.length} errors` +
    `, ${allowed.length} references to tfjs-core types (denoland/deno#27364)`;
  if (failing.length > 0 || allowed.length > TFJS_TYPES.size) {
    console.error(summary);
    Deno.exit(1);
  }
  console.log(summary);
}
