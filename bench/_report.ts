/**
 * The bench's report: a table per size, the targets' lines, and the run on
 * disk (`latest.json` with the machine, `latest.svg`).
 *
 * @module
 */

import { renderChart } from "./_chart.ts";
import { renderTable } from "./_table.ts";
import type { evaluateTargets } from "./_targets.ts";
import type { GpuAdapterReport } from "../src/engine/backends.ts";
import { relaxedMaddIsFused } from "../src/kernels/wasm_kernel.ts";

/** One row at one size. */
export interface Result {
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

/** Every row at one size. */
export interface SizeResult {
  size: string;
  elements: number;
  tensors: number;
  rows: Result[];
}

/**
 * An error's first line, as a table's "skipped" line and the log show it.
 *
 * @param error What was thrown.
 * @returns The line.
 */
export function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

/** A number for a table, or a dash. */
export const fmt = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined ? "–" : x.toFixed(digits);

/**
 * One size's table: each row measured, its rate, its share of the roof and
 * its speed against the peers, then the rows skipped and why.
 *
 * @param result The size's results.
 * @param rounds Rounds run (one: the heading says it is noise).
 * @param markdown Markdown instead of aligned text.
 * @returns The lines.
 */
export function sizeTable(result: SizeResult, rounds: number, markdown: boolean): string[] {
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
    markdown,
  );
  const skippedRows = result.rows.filter((row) => row.skipped !== null);
  const heading = rounds === 1 ? `${title}: ${NOISE_NOTE}` : title;
  return [
    markdown ? `### ${heading}` : heading,
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
/**
 * The targets' lines, or where they are measured when no size measured them.
 *
 * @param targets The targets, evaluated.
 * @param markdown Markdown headings.
 * @returns The text.
 */
export function targetReport(
  targets: ReturnType<typeof evaluateTargets>,
  markdown: boolean,
): string {
  const targetLines = targets.map(({ name, value, met }) =>
    `- ${name}: ${fmt(value)} — ${
      met === null ? "not measured (needs that size and row)" : met ? "met" : "NOT met"
    }`
  );
  if (targets.some(({ value }) => value !== null)) {
    return [markdown ? "### Targets" : "Targets", "", ...targetLines].join("\n");
  }
  return "Targets: measured at 1M, 16M and 1000x1K (the default sizes)";
}

/** What a run writes to disk. */
export interface RunReport {
  readonly rounds: number;
  readonly results: readonly SizeResult[];
  readonly targets: ReturnType<typeof evaluateTargets>;
  readonly adapter: GpuAdapterReport;
  readonly peakGbps: number | null;
}

/**
 * Writes `latest.json` (the date, the machine, every sample, the targets)
 * and `latest.svg` (the rates) into `outDir`.
 *
 * @param outDir The folder.
 * @param run The run.
 */
export async function writeReport(outDir: string, run: RunReport): Promise<void> {
  const { rounds, results, targets, adapter, peakGbps } = run;
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
}
