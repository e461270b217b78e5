/**
 * Peers that run in their own process (the C roof, the seed in PyTorch):
 * started once per size, then asked for K timed steps per round over stdin,
 * so that they interleave with the in-process rows.
 *
 * @module
 */

/** A peer process speaking the bench protocol ("K" → {"ms": [...]}). */
export class PeerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new LineSplitter())[Symbol.asyncIterator]();
  }

  /** Starts `command args`; waits for a first line when `ready` is set. */
  static async start(command: string, args: string[], ready: boolean): Promise<PeerProcess> {
    const child = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const peer = new PeerProcess(child);
    if (ready) await peer.#next();
    return peer;
  }

  async #next(): Promise<string> {
    const { value, done } = await this.#lines.next();
    if (done) throw new Error("peer process ended");
    return value;
  }

  /** Runs `steps` steps and returns each one's milliseconds. */
  async run(steps: number): Promise<number[]> {
    await this.#writer.write(new TextEncoder().encode(`${steps}\n`));
    return (JSON.parse(await this.#next()) as { ms: number[] }).ms;
  }

  /** Ends the process. */
  async close(): Promise<void> {
    try {
      await this.#writer.write(new TextEncoder().encode("quit\n"));
      await this.#writer.close();
    } catch {
      // already gone
    }
    await this.#child.status;
  }
}

/** Splits a text stream into lines. */
class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let buffer = "";
    super({
      transform(chunk, controller) {
        buffer += chunk;
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        for (const line of lines) if (line.trim()) controller.enqueue(line);
      },
      flush(controller) {
        if (buffer.trim()) controller.enqueue(buffer);
      },
    });
  }
}

/** Compiles bench/roof.c; undefined (with the reason logged) when no compiler works. */
export async function buildRoof(log: (line: string) => void): Promise<string | undefined> {
  const dir = new URL("./.build/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const output = `${dir}roof`;
  const source = new URL("./roof.c", import.meta.url).pathname;
  for (const cc of ["cc", "gcc", "clang"]) {
    try {
      const result = await new Deno.Command(cc, {
        args: ["-O3", "-march=native", "-fopenmp", source, "-o", output, "-lm"],
        stderr: "piped",
      }).output();
      if (result.success) return output;
      log(`C roof: ${cc} failed: ${new TextDecoder().decode(result.stderr).split("\n")[0]}`);
    } catch {
      // no such compiler
    }
  }
  log("C roof: skipped (no C compiler with OpenMP: apt-get install -y gcc)");
  return undefined;
}

/**
 * A Python that imports torch: `python3` on the PATH, else Debian's
 * /usr/bin/python3 (where `apt-get install python3-torch` puts it).
 *
 * @returns The interpreter, or the reason there is none.
 */
export async function findTorchPython(): Promise<{ python: string } | { reason: string }> {
  if (!seedPresent()) {
    return { reason: "the seed (shared/seed/*.txt beside the checkout) is not here" };
  }
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      const result = await new Deno.Command(python, {
        args: ["-c", "import torch"],
        stderr: "null",
      })
        .output();
      if (result.success) return { python };
    } catch {
      // not installed
    }
  }
  return { reason: "no python3 imports torch (Debian: apt-get install -y python3-torch)" };
}

/** Whether the seed file that torch_seed.py reads is beside the checkout. */
function seedPresent(): boolean {
  try {
    const dir = new URL("../../shared/seed/", import.meta.url);
    return [...Deno.readDirSync(dir)].some((entry) => entry.name.endsWith(".txt"));
  } catch {
    return false;
  }
}
