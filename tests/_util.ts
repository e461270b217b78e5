/** Small helpers shared by the tests. */

import { type Logger, type Parameter, ParameterStore } from "../mod.ts";

/** A store with one parameter "w" of `values`. */
export function oneParam(values: number[] = [1, 2, 3]): { store: ParameterStore; w: Parameter } {
  const store = new ParameterStore();
  return { store, w: store.add("w", [values.length], values) };
}

/** A logger that keeps what it is told. */
export function recordingLogger(): Logger & { messages: string[] } {
  const messages: string[] = [];
  return { messages, warn: (message: string) => void messages.push(message) };
}

/** Deterministic float32 values in (-scale, scale). */
export function seededValues(count: number, seed: number, scale = 1): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = (state / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** What a child process printed. */
export interface ChildOutput {
  stdout: string;
  stderr: string;
}

/** The lockfile of the tests, the bench and the build tools (deno.lock holds the library's and the demo's). */
export const DEV_LOCK: string = new URL("../deno.dev.lock", import.meta.url).pathname;

/**
 * Runs a test's child module with `deno run --no-check --allow-read` (and
 * `flags`) and asserts it exited 0, showing its stderr otherwise.
 *
 * @param module The child module, beside the test.
 * @param args Its arguments.
 * @param options More `deno run` flags, the environment, and a time limit
 * after which the child is killed.
 * @returns What it printed.
 */
export async function runChild(
  module: URL,
  args: string[] = [],
  options: { flags?: string[]; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ChildOutput> {
  const flags = options.flags ?? [];
  // a child of the tests resolves npm packages through the tests' lockfile
  const lock = flags.includes("--no-config") ? [] : [`--lock=${DEV_LOCK}`];
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-check", "--allow-read", ...lock, ...flags, module.pathname, ...args],
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.timeoutMs === undefined ? {} : { signal: AbortSignal.timeout(options.timeoutMs) }),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  if (child.code !== 0) {
    throw new Error(`${module.pathname} ${args.join(" ")} exited with ${child.code}:\n${stderr}`);
  }
  return { stdout: new TextDecoder().decode(child.stdout), stderr };
}
