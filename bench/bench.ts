/**
 * `deno task bench`: this project's kernels against the C/OpenMP roof, the
 * seed in PyTorch and Lion in TensorFlow.js (wasm), side by side and
 * interleaved (every round runs every row once, in rotated order), so that
 * machine noise hits all alike. Writes bench/results/latest.json and
 * latest.svg.
 *
 * Options: --sizes 1M,16M,64M,1000x1K  --workers 1,2  --quick
 *          --rounds N  --out DIR  --peers roof,torch,tfjs  --no-js
 *          --gpujs webgpu,webasm,cpu (or none)  --gpu-peak-gbps N
 *
 * The gpujs rows run on the largest worker count; `webgpu` only where an
 * adapter answers (on a software adapter its numbers say nothing of a GPU).
 * "gpujs webgpu kernels only" times the two update kernels on buffers
 * already on the device (no transfers): with `--gpu-peak-gbps` (the GPU's
 * memory bandwidth, e.g. 3350 for an H100 SXM) it reports the share of it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DecoupledLionW, type NonFinitePolicy, ParameterStore } from "../mod.ts";
import { relaxedMaddIsFused } from "../src/wasm_kernel.ts";
import { adapterReport } from "../gpu/gpujs_runtime.ts";
import type { GpuJsMode } from "../gpu/gpujs_kernels.ts";
import { gpujsKernelRow, KERNEL_BYTES_PER_ELEMENT } from "./gpujs_kernel_row.ts";
import { buildRoof, findTorchPython, PeerProcess } from "./_peers.ts";
import { renderChart } from "./_chart.ts";
import { TFJS_VERSION, TfjsLion, useTfjsWasm } from "./tfjs_lion.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "1M,16M,64M,1000x1K" },
    workers: { type: "string", default: "1,2" },
    rounds: { type: "string" },
    quick: { type: "boolean", default: false },
    out: { type: "string", default: new URL("./results/", import.meta.url).pathname },
    peers: { type: "string", default: "roof,torch,tfjs" },
    "no-js": { type: "boolean", default: false },
    gpujs: { type: "string", default: "webgpu,webasm,cpu" },
    "gpu-peak-gbps": { type: "string" },
  },
});

const log = (line: string) => console.error(line);

/** A size: one tensor of `elements`, or `count` tensors of `size`. */
interface Size {
  label: string;
  count: number;
  size: number;
}

function parseSize(text: string): Size {
  const unit = (t: string) => {
    const match = /^(\d+)([KM]?)$/.exec(t);
    if (!match) throw new RangeError(`Cannot parse size ${JSON.stringify(text)}`);
    return Number(match[1]) * (match[2] === "M" ? 2 ** 20 : match[2] === "K" ? 1000 : 1);
  };
  const [count, size] = text.includes("x") ? text.split("x") as [string, string] : ["1", text];
  return { label: text, count: unit(count), size: unit(size) };
}

/** One implementation's set-up for one size, kept for all rounds. */
interface Session {
  /** Runs warm-up steps, then `steps` timed steps; returns each one's ms. */
  run(steps: number): Promise<number[]>;
  close(): Promise<void>;
}

/** One implementation measured. */
interface Row {
  id: string;
  label: string;
  open(size: Size): Promise<Session>;
}

const sizes = args.sizes.split(",").map(parseSize);
const workerCounts = args.workers.split(",").map(Number);
const maxWorkers = Math.max(...workerCounts);
const rounds = Number(args.rounds ?? (args.quick ? 3 : 5));
const peers = new Set(args.peers.split(","));

/** The store of the current size, shared by every lionw row (one optimizer at a time). */
let shared: { size: Size; store: ParameterStore } | undefined;

function storeFor(size: Size): ParameterStore {
  if (shared?.size !== size) {
    shared = undefined; // let the previous size's memory go first
    const store = new ParameterStore();
    for (let i = 0; i < size.count; i++) {
      const g = store.add(`p${i}`, [size.size]).ensureGrad();
      for (let j = 0; j < g.length; j++) g[j] = Math.sin(i * 7919 + j);
    }
    shared = { size, store };
  }
  return shared.store;
}

/**
 * Warm-up before timing: workers started and their code tiered up to
 * optimized machine code (fresh workers run JavaScript in the interpreter
 * at first; a real training run keeps its workers for thousands of steps).
 */
async function warmUp(step: () => Promise<unknown> | unknown, minSteps: number): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < minSteps || performance.now() - start < 100; i++) await step();
}

function lionRow(
  backend: "wasm" | "js" | "gpujs",
  workers: number,
  nonFinite: NonFinitePolicy,
  metrics: boolean,
  gpuMode: GpuJsMode = "webasm",
): Row {
  const where = workers === 0 ? "inline" : `×${workers}`;
  const name = backend === "gpujs" ? `gpujs-${gpuMode}` : backend;
  return {
    id: `lionw-${name}-${workers}w-${nonFinite}${metrics ? "-metrics" : ""}`,
    label: `lionw ${name.replace("-", " ")} ${where} ${nonFinite}${metrics ? " +metrics" : ""}`,
    open(size) {
      const store = storeFor(size);
      return Promise.resolve({
        async run(steps) {
          // one optimizer at a time over the shared store: built per round
          const opt = new DecoupledLionW(store.parameters, {
            backend,
            gpuMode,
            workers,
            nonFinite,
            lr: 1e-4,
            weightDecay: 1e-4,
            logger: null,
          });
          try {
            // gpujs: compiling and the first upload are in the first step
            await warmUp(() => opt.step({ metrics }), backend === "gpujs" ? 3 : 20);
            const ms: number[] = [];
            for (let i = 0; i < steps; i++) {
              const t0 = performance.now();
              await opt.step({ metrics });
              ms.push(performance.now() - t0);
            }
            return ms;
          } finally {
            await opt.close();
          }
        },
        close: () => Promise.resolve(),
      });
    },
  };
}

async function peerRows(): Promise<Row[]> {
  const rows: Row[] = [];
  if (peers.has("roof")) {
    const roof = await buildRoof(log);
    if (roof) {
      rows.push({
        id: "roof",
        label: `C/OpenMP roof ×${maxWorkers}`,
        async open(size) {
          const peer = await PeerProcess.start(roof, [
            String(size.count * size.size),
            String(maxWorkers),
          ], false);
          return {
            run: async (steps) => (await peer.run(steps + 3)).slice(3),
            close: () => peer.close(),
          };
        },
      });
    }
  }
  if (peers.has("torch")) {
    const found = await findTorchPython();
    if ("reason" in found) log(`PyTorch seed: skipped (${found.reason})`);
    else {
      const script = new URL("./torch_seed.py", import.meta.url).pathname;
      rows.push({
        id: "torch",
        label: `PyTorch seed ×${maxWorkers} threads`,
        async open(size) {
          const shape = size.count === 1 ? String(size.size) : `${size.count}x${size.size}`;
          const peer = await PeerProcess.start(
            found.python,
            [script, shape, String(maxWorkers)],
            true,
          );
          return {
            run: async (steps) => (await peer.run(steps + 2)).slice(2),
            close: () => peer.close(),
          };
        },
      });
    }
  }
  if (peers.has("tfjs")) {
    await useTfjsWasm();
    rows.push({
      id: "tfjs",
      label: `tfjs-wasm Lion (tfjs ${TFJS_VERSION})`,
      open(size) {
        const lion = new TfjsLion(new Array(size.count).fill(size.size));
        return Promise.resolve({
          async run(steps) {
            await warmUp(() => lion.step(), 2);
            const ms: number[] = [];
            for (let i = 0; i < steps; i++) {
              const t0 = performance.now();
              lion.step();
              ms.push(performance.now() - t0);
            }
            return ms;
          },
          close() {
            lion.dispose();
            return Promise.resolve();
          },
        });
      },
    });
  }
  return rows;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Timed steps per row and round: 5 at 64M elements, up to 40 for small sizes. */
function stepsFor(elements: number): number {
  return Math.max(5, Math.min(40, Math.round(2 ** 26 / elements)));
}

const rows: Row[] = [];
for (const workers of [0, ...workerCounts]) {
  rows.push(lionRow("wasm", workers, "ignore", false));
  if (workers > 0) rows.push(lionRow("wasm", workers, "error", false));
}
rows.push(lionRow("wasm", maxWorkers, "error", true));
rows.push(lionRow("wasm", maxWorkers, "ignore", true));
if (!args["no-js"]) rows.push(lionRow("js", maxWorkers, "ignore", false));
const adapter = await adapterReport();
for (const mode of args.gpujs.split(",").filter((m) => m !== "none") as GpuJsMode[]) {
  if (mode === "webgpu" && !adapter.available) {
    log(`gpujs webgpu skipped: ${adapter.description}`);
    continue;
  }
  rows.push(lionRow("gpujs", maxWorkers, "error", false, mode));
  if (mode === "webgpu") rows.push(gpujsKernelRow());
}
rows.push(...await peerRows());

interface Result {
  id: string;
  label: string;
  medianMs: number;
  bestMs: number;
  gElementsPerS: number;
  percentOfRoof: number | null;
  samples: number[];
}

const results: { size: string; elements: number; tensors: number; rows: Result[] }[] = [];
for (const size of sizes) {
  const elements = size.count * size.size;
  const steps = stepsFor(elements);
  const samples = new Map<string, number[]>(rows.map((row) => [row.id, []]));
  log(`[${size.label}] setting up ${rows.length} implementations …`);
  const sessions = new Map<string, Session>();
  try {
    for (const row of rows) sessions.set(row.id, await row.open(size));
    for (let round = 0; round < rounds; round++) {
      const order = rows.map((_, i) => rows[(i + round) % rows.length]!);
      for (const row of order) {
        log(`[${size.label} round ${round + 1}/${rounds}] ${row.label} …`);
        samples.get(row.id)!.push(...await sessions.get(row.id)!.run(steps));
      }
    }
  } finally {
    for (const session of sessions.values()) await session.close();
  }
  const roofMs = samples.has("roof") && samples.get("roof")!.length
    ? median(samples.get("roof")!)
    : null;
  results.push({
    size: size.label,
    elements,
    tensors: size.count,
    rows: rows.map((row) => {
      const ms = median(samples.get(row.id)!);
      return {
        id: row.id,
        label: row.label,
        medianMs: ms,
        bestMs: Math.min(...samples.get(row.id)!),
        gElementsPerS: elements / ms / 1e6,
        percentOfRoof: roofMs === null ? null : (100 * roofMs) / ms,
        samples: samples.get(row.id)!,
      };
    }),
  });
}

// ---- report -------------------------------------------------------------

const find = (size: string, id: string) =>
  results.find((r) => r.size === size)?.rows.find((row) => row.id === id);
const ratio = (a?: Result, b?: Result) => (a && b ? a.medianMs / b.medianMs : null);
const main = `lionw-wasm-${maxWorkers}w`;
const peakGbps = args["gpu-peak-gbps"] ? Number(args["gpu-peak-gbps"]) : null;
const kernel16M = find("16M", "gpujs-webgpu-kernels");
const targets = [
  [
    `gpujs webgpu / wasm ≤ 1 (16M, error; a real GPU only${
      adapter.fallback ? ": this one is software" : ""
    })`,
    ratio(find("16M", `lionw-gpujs-webgpu-${maxWorkers}w-error`), find("16M", `${main}-error`)),
    "<=",
    1,
  ],
  [
    "gpujs webgpu kernels ≥ 50 % of GPU memory bandwidth (16M; needs --gpu-peak-gbps)",
    kernel16M && peakGbps
      ? (100 * KERNEL_BYTES_PER_ELEMENT * kernel16M.gElementsPerS) / peakGbps
      : null,
    ">=",
    50,
  ],
  ["wasm ×2 ignore ≥ 85 % of roof (16M)", find("16M", `${main}-ignore`)?.percentOfRoof, ">=", 85],
  ["wasm ×2 error ≥ 70 % of roof (16M)", find("16M", `${main}-error`)?.percentOfRoof, ">=", 70],
  [
    "metrics on / off ≤ 1.25 (16M, error)",
    ratio(find("16M", `${main}-error-metrics`), find("16M", `${main}-error`)),
    "<=",
    1.25,
  ],
  [
    "speedup over PyTorch seed ≥ 5 (16M, error)",
    ratio(find("16M", "torch"), find("16M", `${main}-error`)),
    ">=",
    5,
  ],
  [
    "speedup over tfjs-wasm ≥ 20 (16M, error)",
    ratio(find("16M", "tfjs"), find("16M", `${main}-error`)),
    ">=",
    20,
  ],
  [
    "2 workers / 1 worker ≥ 1.8 (16M, ignore)",
    ratio(find("16M", "lionw-wasm-1w-ignore"), find("16M", "lionw-wasm-2w-ignore")),
    ">=",
    1.8,
  ],
  [
    "1,000 tensors / one tensor ≤ 1.5 (1M, error)",
    ratio(find("1000x1K", `${main}-error`), find("1M", `${main}-error`)),
    "<=",
    1.5,
  ],
] as const;

const fmt = (
  x: number | null | undefined,
  digits = 2,
) => (x === null || x === undefined ? "–" : x.toFixed(digits));
const lines: string[] = [];
for (const result of results) {
  const peerMs = (id: string) => result.rows.find((r) => r.id === id)?.medianMs;
  lines.push(
    `\n### ${result.size} (${
      result.elements.toLocaleString("en")
    } elements in ${result.tensors} tensor${result.tensors > 1 ? "s" : ""})\n`,
  );
  lines.push(
    "| implementation | ms/step (median) | best | G elem/s | % of roof | × PyTorch | × tfjs |",
  );
  lines.push("|---|---:|---:|---:|---:|---:|---:|");
  for (const row of result.rows) {
    const torch = peerMs("torch"), tfjs = peerMs("tfjs");
    lines.push(
      `| ${row.label} | ${fmt(row.medianMs)} | ${fmt(row.bestMs)} | ${
        fmt(row.gElementsPerS, 3)
      } | ${fmt(row.percentOfRoof, 0)} | ${torch ? fmt(torch / row.medianMs, 1) : "–"} | ${
        tfjs ? fmt(tfjs / row.medianMs, 1) : "–"
      } |`,
    );
  }
}
lines.push("\n### Targets\n");
for (const [name, value, op, bound] of targets) {
  const met = value === null || value === undefined
    ? "not measured"
    : (op === ">=" ? value >= bound : value <= bound)
    ? "met"
    : "NOT met";
  lines.push(`- ${name}: ${fmt(value)} — ${met}`);
}
console.log(lines.join("\n"));

const machine = {
  // Deno asks for --allow-all to read /proc/cpuinfo, so ask a program
  cpu: await (async () => {
    try {
      const out = await new Deno.Command("sh", {
        args: ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
        stderr: "null",
      }).output();
      return new TextDecoder().decode(out.stdout).trim() || "unknown";
    } catch {
      return "unknown";
    }
  })(),
  cores: navigator.hardwareConcurrency,
  deno: Deno.version.deno,
  v8: Deno.version.v8,
  relaxedMaddFused: relaxedMaddIsFused(),
  gpu: adapter,
  gpuPeakGbps: peakGbps,
};
await Deno.mkdir(args.out, { recursive: true });
const report = {
  date: new Date().toISOString(),
  machine,
  rounds,
  results,
  targets: targets.map(([name, value, op, bound]) => ({ name, value: value ?? null, op, bound })),
};
await Deno.writeTextFile(`${args.out}/latest.json`, JSON.stringify(report, null, 1) + "\n");
await Deno.writeTextFile(`${args.out}/latest.svg`, renderChart(results));
log(`wrote ${args.out}/latest.json and latest.svg`);
