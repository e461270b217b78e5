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

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { explain } from "../scripts/cli.ts";
import { DecoupledLionW, type NonFinitePolicy, ParameterStore } from "../mod.ts";
import type { MomentumDtype } from "../src/store/moment_dtype.ts";
import { buildNpm } from "../scripts/build_npm.ts";
import { relaxedMaddIsFused } from "../src/kernels/wasm_kernel.ts";
import { adapterReport } from "../gpu/gpujs_runtime.ts";
import type { GpuJsMode } from "../src/engine/backends.ts";
import { gpujsKernelRow, KERNEL_BYTES_PER_ELEMENT } from "./gpujs_kernel_row.ts";
import { buildRoof, findTorchPython, PeerProcess } from "./_peers.ts";
import { renderChart } from "./_chart.ts";
import { renderTable } from "./_table.ts";
import { evaluateTargets } from "./_targets.ts";
import { median, timeSteps, warmUp } from "./_timing.ts";
import { TFJS_VERSION, TfjsLion, useTfjsWasm } from "./tfjs_lion.ts";

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
                      node: the npm package under the node on PATH)
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

/** A size: one tensor of `size` elements, or `count` tensors of `size`. */
interface Size {
  label: string;
  count: number;
  size: number;
}

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

/** One implementation's set-up for one size, kept for all rounds. */
interface Session {
  /** Runs warm-up steps, then `steps` timed steps; returns each one's ms. */
  run(steps: number): Promise<number[]>;
  close(): Promise<void>;
}

/** One implementation measured, or the reason it cannot be here. */
interface Row {
  id: string;
  label: string;
  /** Why the row cannot run on this machine at all (a peer that is not installed). */
  unavailable?: string;
  open(size: Size): Promise<Session>;
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

/** Per row and round: warm-up time at least, and the time after which a slow row stops. */
const WARM_UP_MS = args.quick ? 20 : 100;
const BUDGET_MS = args.quick ? 500 : 2000;

function lionRow(
  backend: "wasm" | "js" | "gpujs",
  workers: number,
  nonFinite: NonFinitePolicy,
  metrics: boolean,
  gpuMode: GpuJsMode = "webasm",
  maxGradNorm = Infinity,
  momentumDtype: MomentumDtype = "float32",
): Row {
  const where = workers === 0 ? "inline" : `×${workers}`;
  const name = backend === "gpujs" ? `gpujs-${gpuMode}` : backend;
  const clip = maxGradNorm !== Infinity;
  const bf16 = momentumDtype === "bfloat16";
  return {
    id: `lionw-${name}-${workers}w-${nonFinite}${metrics ? "-metrics" : ""}${clip ? "-clip" : ""}${
      bf16 ? "-bf16" : ""
    }`,
    label: `lionw ${name.replace("-", " ")} ${where} ${nonFinite}${metrics ? " +metrics" : ""}${
      clip ? " +clip" : ""
    }${bf16 ? " bf16 m" : ""}`,
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
            maxGradNorm,
            momentumDtype,
            lr: 1e-4,
            weightDecay: 1e-4,
            logger: null,
          });
          try {
            // gpujs: the first step compiles the kernels and uploads the shard
            await warmUp(
              () => opt.step({ metrics }),
              backend === "gpujs" ? 1 : args.quick ? 5 : 20,
              WARM_UP_MS,
            );
            return await timeSteps(steps, () => opt.step({ metrics }), BUDGET_MS);
          } finally {
            await opt.close();
          }
        },
        close: () => Promise.resolve(),
      });
    },
  };
}

/**
 * A store of the current size whose gradients come through the `grad`
 * setter, as training that hands the library its gradients does (the
 * shared store's were written in place, through `ensureGrad()`), and the
 * gradients to write, one array per tensor.
 */
let written: { size: Size; store: ParameterStore; grads: Float32Array[] } | undefined;

function writtenStoreFor(size: Size): { store: ParameterStore; grads: Float32Array[] } {
  if (written?.size !== size) {
    written = undefined;
    const store = new ParameterStore();
    const grads = Array.from({ length: size.count }, (_, i) => {
      store.add(`p${i}`, [size.size]);
      return Float32Array.from({ length: size.size }, (_, j) => Math.sin(i * 7919 + j));
    });
    written = { size, store, grads };
  }
  return written;
}

/** Write every gradient with the `grad` setter, then step: the write and the step together. */
function writeStepRow(workers: number, nonFinite: NonFinitePolicy): Row {
  return {
    id: `lionw-wasm-${workers}w-write-${nonFinite}`,
    label: `lionw wasm ×${workers} write+step ${nonFinite}`,
    open(size) {
      const { store, grads } = writtenStoreFor(size);
      const params = store.parameters;
      const step = (opt: DecoupledLionW) => {
        params.forEach((p, i) => (p.grad = grads[i]!));
        return opt.step();
      };
      return Promise.resolve({
        async run(steps) {
          const opt = new DecoupledLionW(params, {
            workers,
            nonFinite,
            lr: 1e-4,
            weightDecay: 1e-4,
            logger: null,
          });
          try {
            await warmUp(() => step(opt), args.quick ? 5 : 20, WARM_UP_MS);
            return await timeSteps(steps, () => step(opt), BUDGET_MS);
          } finally {
            await opt.close();
          }
        },
        close: () => Promise.resolve(),
      });
    },
  };
}

function unavailableRow(id: string, label: string, reason: string): Row {
  return { id, label, unavailable: reason, open: () => Promise.reject(new Error(reason)) };
}

/**
 * Rows under Node (a `node` on PATH): the npm package, built into
 * bench/.build/npm, stepping one tensor on the same worker count, with the
 * wasm build Node runs (without relaxed SIMD on Node 20).
 */
async function nodeRows(): Promise<Row[]> {
  const label = (policy: string, metrics: boolean) =>
    `node lionw wasm ×${maxWorkers} ${policy}${metrics ? " +metrics" : ""}`;
  const kinds = [["ignore", false], ["error", false], ["error", true]] as const;
  let version: string;
  try {
    const { stdout } = await new Deno.Command("node", { args: ["--version"] }).output();
    version = new TextDecoder().decode(stdout).trim();
  } catch {
    return kinds.map(([policy, metrics]) =>
      unavailableRow(
        `node-${policy}${metrics ? "-metrics" : ""}`,
        label(policy, metrics),
        "no node",
      )
    );
  }
  const dir = new URL("./.build/npm/", import.meta.url);
  await buildNpm(dir);
  const script = fileURLToPath(new URL("./node_peer.mjs", import.meta.url));
  return kinds.map(([policy, metrics]) => ({
    id: `node-${policy}${metrics ? "-metrics" : ""}`,
    label: `${label(policy, metrics)} (${version})`,
    async open(size) {
      const peer = await PeerProcess.start("node", [
        script,
        fileURLToPath(dir),
        String(size.count * size.size),
        String(maxWorkers),
        policy,
        metrics ? "metrics" : "",
      ], true);
      return { run: (steps) => peer.run(steps), close: () => peer.close() };
    },
  }));
}

async function peerRows(): Promise<Row[]> {
  const rows: Row[] = [];
  if (peers.has("roof")) {
    const label = `C/OpenMP roof ×${maxWorkers}`;
    const roof = await buildRoof();
    if ("reason" in roof) {
      rows.push(unavailableRow("roof", label, roof.reason));
      rows.push(unavailableRow("roof-metrics", `${label} +metrics`, roof.reason));
    } else {
      rows.push({
        id: "roof",
        label,
        async open(size) {
          const peer = await PeerProcess.start(roof.program, [
            String(size.count * size.size),
            String(maxWorkers),
          ], false);
          return {
            run: async (steps) => (await peer.run(steps + 3)).slice(3),
            close: () => peer.close(),
          };
        },
      });
      // with the six metric sums in double, vectorized: the limit of a step with metrics
      rows.push({
        id: "roof-metrics",
        label: `${label} +metrics`,
        async open(size) {
          const peer = await PeerProcess.start(roof.program, [
            String(size.count * size.size),
            String(maxWorkers),
            "metrics",
          ], false);
          return {
            run: async (steps) => (await peer.run(steps + 3)).slice(3),
            close: () => peer.close(),
          };
        },
      });
    }
  }
  if (peers.has("node")) rows.push(...await nodeRows());
  if (peers.has("torch")) {
    const found = await findTorchPython();
    const label = `PyTorch Lion ×${maxWorkers} threads`;
    if ("reason" in found) rows.push(unavailableRow("torch", label, found.reason));
    else {
      const script = new URL("./torch_lion.py", import.meta.url).pathname;
      rows.push({
        id: "torch",
        label: `${label} (torch ${found.version})`,
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
    const label = `tfjs-wasm Lion (tfjs ${TFJS_VERSION})`;
    try {
      await useTfjsWasm();
      rows.push({
        id: "tfjs",
        label,
        open(size) {
          const lion = new TfjsLion(new Array(size.count).fill(size.size));
          return Promise.resolve({
            async run(steps) {
              await warmUp(() => lion.step(), 2, WARM_UP_MS);
              return await timeSteps(steps, () => lion.step(), BUDGET_MS);
            },
            close() {
              lion.dispose();
              return Promise.resolve();
            },
          });
        },
      });
    } catch (error) {
      rows.push(unavailableRow("tfjs", label, `tfjs-wasm did not start: ${messageOf(error)}`));
    }
  }
  return rows;
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

/** Timed steps per row and round: 5 at 64M elements, up to 40 for small sizes (10 when quick). */
function stepsFor(elements: number): number {
  return Math.max(
    args.quick ? 3 : 5,
    Math.min(args.quick ? 10 : 40, Math.round(2 ** 26 / elements)),
  );
}

const rows: Row[] = [];
for (const workers of [0, ...workerCounts]) {
  rows.push(lionRow("wasm", workers, "ignore", false));
  if (workers > 0) rows.push(lionRow("wasm", workers, "error", false));
}
rows.push(lionRow("wasm", maxWorkers, "error", true));
// clipping to a norm far below the gradients' (every step clipped): the scan
// the "error" policy runs anyway gives the norm, the update scales g in its pass
rows.push(lionRow("wasm", maxWorkers, "error", false, "webasm", 1e-3));
rows.push(lionRow("wasm", maxWorkers, "ignore", true));
// gradients through the setter, which takes the verdict as it copies: the step skips its scan
rows.push(writeStepRow(maxWorkers, "ignore"));
rows.push(writeStepRow(maxWorkers, "error"));
// exp_avg in bfloat16: 16 instead of 20 bytes of traffic per element
rows.push(lionRow("wasm", maxWorkers, "ignore", false, "webasm", Infinity, "bfloat16"));
rows.push(lionRow("wasm", maxWorkers, "error", false, "webasm", Infinity, "bfloat16"));
if (!args["no-js"]) rows.push(lionRow("js", maxWorkers, "ignore", false));
const adapter = await adapterReport();
for (const mode of gpujsModes as GpuJsMode[]) {
  if (mode === "webgpu" && !adapter.available) {
    const reason = `no WebGPU adapter: ${adapter.description}`;
    rows.push(
      unavailableRow(`lionw-gpujs-webgpu-${maxWorkers}w-error`, "lionw gpujs webgpu", reason),
    );
    rows.push(unavailableRow("gpujs-webgpu-kernels", "gpujs webgpu kernels only", reason));
    continue;
  }
  rows.push(lionRow("gpujs", maxWorkers, "error", false, mode));
  if (mode === "webgpu") rows.push(gpujsKernelRow(BUDGET_MS));
}
rows.push(...await peerRows());
for (const row of rows) if (row.unavailable) log(`${row.label}: skipped (${row.unavailable})`);

interface Result {
  id: string;
  label: string;
  medianMs: number | null;
  bestMs: number | null;
  gElementsPerS: number | null;
  percentOfRoof: number | null;
  samples: number[];
  /** Why the row has no numbers at this size. */
  skipped: string | null;
}

interface SizeResult {
  size: string;
  elements: number;
  tensors: number;
  rows: Result[];
}

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

const fmt = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined ? "–" : x.toFixed(digits);

function sizeTable(result: SizeResult): string[] {
  const peerMs = (id: string) => result.rows.find((r) => r.id === id)?.medianMs ?? null;
  const torch = peerMs("torch"), tfjs = peerMs("tfjs");
  const times = (peer: number | null, ms: number | null) =>
    peer === null || ms === null ? "–" : fmt(peer / ms, 1);
  const title = `${result.size} (${result.elements.toLocaleString("en")} elements in ${
    result.tensors.toLocaleString("en")
  } tensor${result.tensors > 1 ? "s" : ""})`;
  const table = renderTable(
    ["implementation", "ms/step (median)", "best", "G elem/s", "% of roof", "× PyTorch", "× tfjs"],
    result.rows.filter((row) => row.skipped === null).map((row) => [
      row.label,
      fmt(row.medianMs),
      fmt(row.bestMs),
      fmt(row.gElementsPerS, 3),
      fmt(row.percentOfRoof, 0),
      times(torch, row.medianMs),
      times(tfjs, row.medianMs),
    ]),
    ["left", "right", "right", "right", "right", "right", "right"],
    args.markdown,
  );
  const skippedRows = result.rows.filter((row) => row.skipped !== null);
  const heading = rounds === 1 ? `${title}: ${NOISE_NOTE}` : title;
  return [
    args.markdown ? `### ${heading}` : heading,
    "",
    ...table,
    ...(skippedRows.length ? ["", "Skipped here:"] : []),
    ...skippedRows.map((row) => `- ${row.label}: ${row.skipped}`),
    "",
  ];
}

/** One round gives one sample per row: an ordering effect or a stall decides it, not the engine. */
const NOISE_NOTE =
  "one round: noise, not a measurement (a row may even read above 100 % of the roof)";
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
  console.log(sizeTable(result).join("\n"));
}

// ---- targets (bench/_targets.ts) -----------------------------------------

const targets = evaluateTargets(results, {
  maxWorkers,
  softwareAdapter: adapter.fallback,
  peakGbps,
  kernelBytesPerElement: KERNEL_BYTES_PER_ELEMENT,
});
const targetLines = targets.map(({ name, value, met }) =>
  `- ${name}: ${fmt(value)} — ${
    met === null ? "not measured (needs that size and row)" : met ? "met" : "NOT met"
  }`
);
if (targets.some(({ value }) => value !== null)) {
  console.log([args.markdown ? "### Targets" : "Targets", "", ...targetLines].join("\n"));
} else {
  console.log("Targets: measured at 1M, 16M and 1000x1K (the default sizes)");
}

// ---- results on disk ----------------------------------------------------

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
const report = {
  date: new Date().toISOString(),
  machine,
  rounds,
  results,
  targets: targets.map(({ name, value, op, bound }) => ({ name, value, op, bound })),
};
try {
  await Deno.mkdir(outDir, { recursive: true });
  await Deno.writeTextFile(`${outDir}/latest.json`, JSON.stringify(report, null, 1) + "\n");
  await Deno.writeTextFile(
    `${outDir}/latest.svg`,
    renderChart(results.map((r) => ({
      size: r.size,
      rows: r.rows.flatMap((row) =>
        row.gElementsPerS === null ? [] : [{ label: row.label, gElementsPerS: row.gElementsPerS }]
      ),
    }))),
  );
  log(`wrote ${outDir}/latest.json and latest.svg`);
} catch (error) {
  log(`bench: could not write the results to ${outDir}: ${messageOf(error)}`);
  Deno.exit(1);
}
