/**
 * `deno task bench`: this library's engines against the C/OpenMP roof, Lion
 * in PyTorch (bench/torch_lion.py) and Lion in TensorFlow.js (wasm), side by
 * side and interleaved (every round runs every row once, in rotated order),
 * so that machine noise hits all alike. `--help` lists the options.
 *
 * A row that cannot run here (a peer that is not installed, a size over a
 * device's buffer limit) is reported as skipped, with the reason, and the
 * others go on.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { explain } from "../scripts/cli.ts";
import { adapterReport } from "../gpu/gpujs_runtime.ts";
import type { GpuJsMode } from "../src/engine/backends.ts";
import { KERNEL_BYTES_PER_ELEMENT } from "./gpujs_kernel_row.ts";
import { evaluateTargets } from "./_targets.ts";
import { median } from "./_timing.ts";
import { lionwRows, type Row, type RowSettings, type Session, type Size } from "./_rows.ts";
import { peerRows } from "./_peer_rows.ts";
import { findNodes, nodeAt } from "../scripts/node_runtimes.ts";
import { messageOf, type SizeResult, sizeTable, targetReport, writeReport } from "./_report.ts";

const HELP = `deno task bench [options]

Times one Lion step of this library's engines against the C/OpenMP roof,
Lion in PyTorch and Lion in TensorFlow.js, interleaved, and prints a table
per size as it goes. Rows that cannot run here are listed as skipped.

Options:
  --sizes LIST        sizes: N elements (1M = 2^20, 1K = 1000) or COUNTxSIZE
                      tensors (default 1M,16M,64M,1000x1K; --quick: 256K,100x1K)
  --workers LIST      worker counts of the sharded rows (default 1,2)
  --rounds N          rounds; each runs every row once (default 5; --quick: 1)
  --quick             a smoke test: small sizes, 1 round, fewer steps, every kind
                      of row once, in about a minute (its numbers are noise)
  --peers LIST        roof,torch,tfjs,node or none (default roof,torch,tfjs,node;
                      node: the npm package under Node, see --node)
  --node PATH         the Node of the node rows (default: the newest found, of
                      the node on PATH and those \`deno task nodes --install\`
                      put in bench/.build/node)
  --gpujs LIST        gpu.js modes of the gpujs rows: webgpu,webasm,cpu or none
                      (default webgpu,webasm,cpu)
  --no-js             leave out the scalar js kernel's row
  --gpu-peak-gbps N   the GPU's memory bandwidth in GB/s (e.g. 3350 for an H100
                      SXM): report the gpujs kernels' share of it
  --out DIR           where latest.json and latest.svg go
                      (default bench/.build/results, not tracked by git)
  --markdown          print the tables as GitHub markdown
  -h, --help          this text

Peers: the roof needs a C compiler with OpenMP (apt-get install -y gcc), the
PyTorch row a python3 that imports torch (apt-get install -y python3-torch).`;

const OPTIONS = {
  sizes: { type: "string" },
  workers: { type: "string", default: "1,2" },
  rounds: { type: "string" },
  quick: { type: "boolean", default: false },
  out: { type: "string" },
  peers: { type: "string", default: "roof,torch,tfjs,node" },
  node: { type: "string" },
  "no-js": { type: "boolean", default: false },
  gpujs: { type: "string", default: "webgpu,webasm,cpu" },
  "gpu-peak-gbps": { type: "string" },
  markdown: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

function parseOptions() {
  try {
    return parseArgs({ args: Deno.args, strict: true, options: OPTIONS }).values;
  } catch (error) {
    usageError(explain(error, Object.keys(OPTIONS)));
  }
}

function usageError(message: string): never {
  console.error(`bench: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

const args = parseOptions();
if (args.help) {
  console.log(HELP);
  Deno.exit(0);
}

const log = (line: string) => console.error(line);

function parseSize(text: string): Size {
  const unit = (t: string) => {
    const match = /^(\d+)([KM]?)$/.exec(t);
    if (!match) usageError(`cannot read size ${JSON.stringify(text)}: write 16M, 256K, 1000x1K`);
    return Number(match[1]) * (match[2] === "M" ? 2 ** 20 : match[2] === "K" ? 1000 : 1);
  };
  const [count, size] = text.includes("x") ? text.split("x") as [string, string] : ["1", text];
  const parsed = { label: text, count: unit(count), size: unit(size) };
  if (parsed.count < 1 || parsed.size < 1) usageError(`size ${JSON.stringify(text)} is empty`);
  return parsed;
}

function parseCount(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    usageError(`--${name} must be an integer >= ${min}: got ${JSON.stringify(text)}`);
  }
  return value;
}

const sizes = (args.sizes ?? (args.quick ? "256K,100x1K" : "1M,16M,64M,1000x1K"))
  .split(",").map(parseSize);
const workerCounts = args.workers.split(",").map((w) => parseCount("workers", w, 1));
const maxWorkers = Math.max(...workerCounts);
const rounds = parseCount("rounds", args.rounds ?? (args.quick ? "1" : "5"), 1);
const peers = new Set(args.peers.split(","));
const gpujsModes = args.gpujs.split(",").filter((m) => m !== "none");
for (const mode of gpujsModes) {
  if (!["webgpu", "webasm", "cpu"].includes(mode)) usageError(`unknown gpu.js mode ${mode}`);
}
const peakGbps = args["gpu-peak-gbps"] === undefined
  ? null
  : parseCount("gpu-peak-gbps", args["gpu-peak-gbps"], 1);
const outDir = args.out ?? new URL("./.build/results", import.meta.url).pathname;

/** Per row and round: warm-up time at least, and the time after which a slow row stops. */
const WARM_UP_MS = args.quick ? 20 : 100;
const BUDGET_MS = args.quick ? 500 : 2000;

/** Timed steps per row and round: 5 at 64M elements, up to 40 for small sizes (10 when quick). */
function stepsFor(elements: number): number {
  return Math.max(
    args.quick ? 3 : 5,
    Math.min(args.quick ? 10 : 40, Math.round(2 ** 26 / elements)),
  );
}

// the Node of the node rows: the one named (checked even where those rows are left out), else the newest
const node = args.node !== undefined
  ? await nodeAt(args.node)
  : peers.has("node")
  ? (await findNodes()).at(-1)
  : undefined;
if (args.node !== undefined && node === undefined) {
  usageError(`no Node runs at --node ${args.node}`);
}
const adapter = await adapterReport();
const settings: RowSettings = {
  quick: args.quick,
  warmUpMs: WARM_UP_MS,
  budgetMs: BUDGET_MS,
  workerCounts,
  maxWorkers,
  noJs: args["no-js"],
  gpujsModes: gpujsModes as GpuJsMode[],
  adapter,
};
const rows: Row[] = [...lionwRows(settings), ...await peerRows(peers, settings, node)];
for (const row of rows) if (row.unavailable) log(`${row.label}: skipped (${row.unavailable})`);

/** Runs every row at one size, round by round; a row that fails is skipped from then on. */
async function measure(size: Size): Promise<SizeResult> {
  const elements = size.count * size.size;
  const steps = stepsFor(elements);
  const samples = new Map<string, number[]>(rows.map((row) => [row.id, []]));
  const skipped = new Map<string, string>();
  for (const row of rows) if (row.unavailable) skipped.set(row.id, row.unavailable);
  const sessions = new Map<string, Session>();
  const skip = async (row: Row, error: unknown) => {
    skipped.set(row.id, messageOf(error));
    log(`[${size.label}] ${row.label}: skipped (${messageOf(error)})`);
    await sessions.get(row.id)?.close().catch(() => {});
    sessions.delete(row.id);
  };
  log(`[${size.label}] setting up ${rows.length - skipped.size} implementations …`);
  try {
    for (const row of rows) {
      if (skipped.has(row.id)) continue;
      try {
        sessions.set(row.id, await row.open(size));
      } catch (error) {
        await skip(row, error);
      }
    }
    for (let round = 0; round < rounds; round++) {
      const order = rows.map((_, i) => rows[(i + round) % rows.length]!);
      for (const row of order) {
        const session = sessions.get(row.id);
        if (session === undefined) continue;
        log(`[${size.label} round ${round + 1}/${rounds}] ${row.label} …`);
        try {
          samples.get(row.id)!.push(...await session.run(steps));
        } catch (error) {
          await skip(row, error);
        }
      }
    }
  } finally {
    for (const session of sessions.values()) await session.close().catch(() => {});
  }
  const measured = (id: string) => (skipped.has(id) ? [] : samples.get(id) ?? []);
  const roofMs = measured("roof").length ? median(measured("roof")) : null;
  return {
    size: size.label,
    elements,
    tensors: size.count,
    rows: rows.map((row) => {
      const ms = measured(row.id);
      const medianMs = ms.length ? median(ms) : null;
      return {
        id: row.id,
        label: row.label,
        medianMs,
        bestMs: ms.length ? Math.min(...ms) : null,
        gElementsPerS: medianMs === null ? null : elements / medianMs / 1e6,
        percentOfRoof: roofMs === null || medianMs === null ? null : (100 * roofMs) / medianMs,
        samples: ms,
        skipped: skipped.get(row.id) ?? (ms.length ? null : "no samples"),
      };
    }),
  };
}

if (args.quick) {
  console.log(
    "deno task bench --quick is a smoke test: every kind of row runs once at small sizes, to show\n" +
      "that each works here. Its numbers are not measurements; quote the default run's.\n",
  );
}

const results: SizeResult[] = [];
for (const size of sizes) {
  const result = await measure(size);
  results.push(result);
  console.log(sizeTable(result, rounds, args.markdown).join("\n"));
}

// ---- targets (bench/_targets.ts) -----------------------------------------

const targets = evaluateTargets(results, {
  maxWorkers,
  softwareAdapter: adapter.fallback,
  peakGbps,
  kernelBytesPerElement: KERNEL_BYTES_PER_ELEMENT,
});
console.log(targetReport(targets, args.markdown));

// ---- results on disk ----------------------------------------------------

try {
  await writeReport(outDir, { rounds, results, targets, adapter, peakGbps });
  log(`wrote ${outDir}/latest.json and latest.svg`);
} catch (error) {
  log(`bench: could not write the results to ${outDir}: ${messageOf(error)}`);
  Deno.exit(1);
}
