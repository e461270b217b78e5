/**
 * Peers that run in their own process (the C roof, Lion in PyTorch):
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
      // OpenMP's idle threads spin for up to ~0.1 s by default: a peer that
      // just ran would slow the next row down; let them sleep soon instead
      env: { GOMP_SPINCOUNT: "10000" },
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

/**
 * Compiles bench/roof.c.
 *
 * @returns The program, or why there is none.
 */
export async function buildRoof(): Promise<{ program: string } | { reason: string }> {
  const dir = new URL("./.build/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const program = `${dir}roof`;
  const source = new URL("./roof.c", import.meta.url).pathname;
  const failures: string[] = [];
  for (const cc of ["cc", "gcc", "clang"]) {
    try {
      const result = await new Deno.Command(cc, {
        args: ["-O3", "-march=native", "-fopenmp", source, "-o", program, "-lm"],
        stderr: "piped",
      }).output();
      if (result.success) return { program };
      failures.push(`${cc}: ${new TextDecoder().decode(result.stderr).split("\n")[0]}`);
    } catch {
      // no such compiler
    }
  }
  return {
    reason: failures.length
      ? `no C compiler built it with OpenMP (${failures.join("; ")})`
      : "no C compiler (apt-get install -y gcc)",
  };
}

/**
 * A Python that imports torch: `python3` on the PATH, else Debian's
 * /usr/bin/python3 (where `apt-get install python3-torch` puts it).
 *
 * @returns The interpreter and torch's version, or the reason there is none.
 */
export async function findTorchPython(): Promise<
  { python: string; version: string } | { reason: string }
> {
  for (const python of ["python3", "/usr/bin/python3"]) {
    try {
      const result = await new Deno.Command(python, {
        args: ["-c", "import torch; print(torch.__version__)"],
        stderr: "null",
      }).output();
      if (result.success) {
        return { python, version: new TextDecoder().decode(result.stdout).trim() };
      }
    } catch {
      // not installed
    }
  }
  return { reason: "no python3 imports torch (Debian: apt-get install -y python3-torch)" };
}
