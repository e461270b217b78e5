/**
 * `deno task demo:dist --sweep`: the demo trained data-parallel with each
 * exchange (`float32`, `bfloat16`, `sign-vote`) over each rank count, one
 * MPI job a run, through network namespaces over TCP where this process may
 * make them (root), plain ranks otherwise. Then LionW's final validation
 * loss of each exchange is set beside `float32`'s over the same ranks, and
 * the curves are plotted side by side (`curves.svg`, `sweep.json`).
 *
 * @module
 */

import { EXCHANGES } from "@decoupled/lionw";
import { mpiJob, rankProgram } from "../mpi/_launch.ts";
import { netDown, netJob, netnsPermitted, netUp } from "../scripts/netns.ts";
import { type SweepCurve, sweepSpec, toSvg } from "./plots.ts";

/** How close to float32's final validation loss the other exchanges must end. */
export const SWEEP_TOLERANCE = 0.02;

/** One run of the sweep, as it ended. */
export interface SweepRun extends SweepCurve {
  /** LionW's final validation loss. */
  readonly finalValLoss: number;
  /** Its difference from float32's over the same ranks, relative. */
  readonly fromFloat32: number;
}

/** What the sweep ran, and whether every exchange ended within the tolerance. */
export interface SweepResult {
  /** How the ranks reached each other. */
  readonly transport: string;
  readonly runs: readonly SweepRun[];
  readonly withinTolerance: boolean;
}

/**
 * Runs the sweep.
 *
 * @param rankCounts The rank counts.
 * @param demoArgs The demo's options, passed to every rank.
 * @param out The folder: each run in `out/<ranks>-<exchange>/`, then `sweep.json` and `curves.svg`.
 * @returns What it ran.
 */
export async function runSweep(
  rankCounts: readonly number[],
  demoArgs: readonly string[],
  out: string,
): Promise<SweepResult> {
  const main = new URL("./main.ts", import.meta.url).pathname;
  const overNet = (await netnsPermitted()) === true;
  const transport = overNet
    ? "one rank a network namespace, over TCP at 10 Gbit/s"
    : "plain ranks on this machine (no ip netns here)";
  console.log(`Sweep: ${transport}`);
  const curves: SweepCurve[] = [];
  for (const ranks of rankCounts) {
    for (const exchange of EXCHANGES) {
      const dir = `${out}/${ranks}-${exchange}`;
      const args = ["--mpi", "--out", dir, "--exchange", exchange, ...demoArgs];
      console.log(`\n== ${ranks} ranks, exchange ${exchange}`);
      let code: number;
      if (overNet) {
        const net = await netUp(ranks, { rate: "10gbit" });
        try {
          code =
            (await netJob(net, rankProgram(main, args, ["--allow-write"])).spawn().status).code;
        } finally {
          await netDown(net);
        }
      } else {
        code = (await mpiJob(ranks, main, args, ["--allow-write"]).spawn().status).code;
      }
      if (code !== 0) {
        throw new Error(`the run of ${ranks} ranks, ${exchange}, failed (exit ${code})`);
      }
      const run = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
      curves.push({ ranks, exchange, steps: run.evalSteps, valLoss: run.lionw.valLoss });
    }
  }
  const runs = curves.map((curve) => {
    const float32 = curves.find((c) => c.ranks === curve.ranks && c.exchange === "float32")!;
    const [finalValLoss, reference] = [curve.valLoss.at(-1)!, float32.valLoss.at(-1)!];
    return { ...curve, finalValLoss, fromFloat32: (finalValLoss - reference) / reference };
  });
  const result = {
    transport,
    runs,
    withinTolerance: runs.every((run) => Math.abs(run.fromFloat32) <= SWEEP_TOLERANCE),
  };
  await Deno.writeTextFile(`${out}/sweep.json`, JSON.stringify(result, null, 1));
  await Deno.writeTextFile(`${out}/curves.svg`, await toSvg(sweepSpec(curves)));
  return result;
}

/** The sweep's table: final validation loss per exchange and rank count, against float32's. */
export function sweepTable(result: SweepResult): string {
  const rows = result.runs.map((run) =>
    `| ${run.ranks} | ${run.exchange} | ${run.finalValLoss.toFixed(4)} | ${
      run.exchange === "float32" ? "" : `${(100 * run.fromFloat32).toFixed(2)} %`
    } |`
  );
  return [
    "| ranks | exchange | final validation loss (LionW) | vs float32 |",
    "|---|---|---:|---:|",
    ...rows,
  ].join("\n");
}
