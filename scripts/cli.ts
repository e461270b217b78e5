/**
 * The command line of every task that runs a script: `--help` prints the
 * usage and exits 0 before anything is written; an unknown flag, or a flag
 * without its value, exits 2 with the closest known flag and the usage.
 * Built on `node:util`'s `parseArgs` (no `@std/cli` here: JSR is not
 * reachable from every machine this project builds on).
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { closestName } from "../src/_internal/validate.ts";

/** What `parseCommandLine()` returns: the parsed values, by flag name. */
export type CommandLineValues = Record<string, string | boolean | undefined>;

/**
 * Parses `args` strictly against `options` (a `--help`/`-h` flag is added),
 * or exits: 0 after printing `usage` for `--help`, 2 with a message for a
 * bad flag.
 *
 * @param name The task, for messages (`bench:large`).
 * @param usage The usage text.
 * @param options The flags, as `parseArgs` takes them.
 * @param args The arguments (default: `Deno.args`).
 * @returns The values.
 */
export function parseCommandLine(
  name: string,
  usage: string,
  options: ParseArgsOptionsConfig,
  args: string[] = Deno.args,
): CommandLineValues {
  const all = { ...options, help: { type: "boolean" as const, short: "h" } };
  let values: CommandLineValues;
  try {
    values = parseArgs({ args, options: all, strict: true, allowPositionals: false }).values;
  } catch (error) {
    usageError(name, usage, explain(error, Object.keys(all)));
  }
  if (values.help === true) {
    console.log(usage);
    Deno.exit(0);
  }
  delete values.help;
  return values;
}

/**
 * Prints a usage error (the message, then the usage) and exits 2.
 *
 * @param name The task.
 * @param usage The usage text.
 * @param message What is wrong.
 */
export function usageError(name: string, usage: string, message: string): never {
  console.error(`${name}: ${message}\n\n${usage}`);
  Deno.exit(2);
}

/**
 * `parseArgs`'s message, with the closest known flag for an unknown one.
 *
 * @param error What `parseArgs` threw.
 * @param known The flags.
 * @returns The message to show.
 */
export function explain(error: unknown, known: readonly string[]): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /Unknown option '-{1,2}([^']+)'/.exec(message)?.[1];
  if (unknown === undefined) return message;
  const closest = closestName(unknown, known);
  return `unknown flag --${unknown}${closest === undefined ? "" : `: did you mean --${closest}?`}`;
}
