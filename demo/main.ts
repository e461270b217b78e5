/**
 * `deno task demo`: trains a character-level name model with DecoupledLionW
 * (through the tfjs adapter) and with tfjs's Adam, side by side, and writes
 * the curves, LionW's metrics, every number, sampled names and a checkpoint
 * to resume from. `--help` lists the options.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { parseArgs } from "node:util";
import { explain } from "../scripts/cli.ts";
import { DEMO_FLAGS, DEMO_OPTIONS } from "./flags.ts";
import cliProgress from "cli-progress";
import { loadNames } from "./names_data.ts";
import { lossSpec, metricsSpec, toSvg } from "./plots.ts";
import {
  DEFAULT_CONFIG,
  type DemoCheckpoint,
  type DemoConfig,
  demoConfig,
  DemoTrainer,
} from "./trainer.ts";
import { RUN_LABELS, RUNS } from "./runs.ts";
import { MpiCollective } from "@decoupled/lionw/mpi";
import { type Exchange, EXCHANGES } from "@decoupled/lionw";

const USAGE = `deno task demo [options]

Trains a character-level name model (a makemore-style MLP) on ${"~"}8,400 English
first names twice, from the same initialisation on the same batches:
DecoupledLionW (warmup + cosine, clipping, decay groups) and tfjs's Adam
(learning rate 5x LionW's, same schedule). Writes loss.svg, metrics.svg,
run.json, names.txt and checkpoint/ to the output folder.

Options:
  --steps N        optimizer steps of each run (default ${DEFAULT_CONFIG.steps})
  --batch N        examples per batch (default ${DEFAULT_CONFIG.batch})
  --workers N|auto LionW's shard workers (default auto: none for a model this small;
                   every count gives the same numbers, bit for bit)
  --backend NAME   LionW's kernel: auto, wasm or js (default auto)
  --seed N         seed of the split, initialisation, batches and samples (default ${DEFAULT_CONFIG.seed})
  --eval-every N   evaluate (and take LionW's metrics) every N steps (default ${DEFAULT_CONFIG.evalEvery})
  --out DIR        output folder (default demo/out)
  --resume         go on from DIR/checkpoint to --steps (the schedule stays the saved run's)
  --stop-at N      stop after step N of the run, as an interrupted run would
                   (the checkpoint lets --resume finish it)
  --mpi            run as one rank of an mpiexec job: each rank trains on its share
                   of every batch, both optimizers on the gradients averaged over
                   the ranks; rank 0 reports and writes (deno task demo:dist
                   launches it; needs --allow-ffi)
  --exchange X     with --mpi, what LionW's ranks exchange: float32 (default),
                   bfloat16 or sign-vote (each rank its own momentum; no clipping)
  -h, --help       this text`;

/** A bad command line: the message is printed with the usage hint and the exit code is 2. */
class UsageError extends Error {}

/** What the command line asks for. */
interface Command {
  readonly config: DemoConfig;
  readonly out: string;
  readonly resume: boolean;
  readonly stopAt: number;
  readonly mpi: boolean;
}

function positiveInteger(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`--${name} must be a positive integer: got "${text}"`);
  }
  return value;
}

function parseCommand(args: string[]): Command | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: DEMO_OPTIONS,
    });
  } catch (error) {
    throw new UsageError(explain(error, DEMO_FLAGS));
  }
  const { values } = parsed;
  if (values.help) return "help";
  const steps = positiveInteger("steps", values.steps, DEFAULT_CONFIG.steps);
  const workers = values.workers === undefined || values.workers === "auto"
    ? "auto"
    : /^\d+$/.test(values.workers)
    ? Number(values.workers)
    : (() => {
      throw new UsageError(`--workers must be "auto" or an integer >= 0: got "${values.workers}"`);
    })();
  const backend = values.backend ?? "auto";
  if (backend !== "auto" && backend !== "wasm" && backend !== "js") {
    throw new UsageError(`--backend must be auto, wasm or js: got "${backend}"`);
  }
  const seedText = values.seed ?? String(DEFAULT_CONFIG.seed);
  if (!/^\d+$/.test(seedText) || Number(seedText) > 2 ** 31) {
    throw new UsageError(`--seed must be an integer in [0, 2^31]: got "${seedText}"`);
  }
  const evalEvery = positiveInteger("eval-every", values["eval-every"], DEFAULT_CONFIG.evalEvery);
  const exchange = values.exchange ?? DEFAULT_CONFIG.exchange;
  if (!(EXCHANGES as readonly string[]).includes(exchange)) {
    throw new UsageError(
      `--exchange must be ${EXCHANGES.join(", ")}: got "${exchange}"`,
    );
  }
  if (exchange !== "float32" && !values.mpi) {
    throw new UsageError(`--exchange ${exchange} is what the ranks of --mpi exchange`);
  }
  const stopAt = positiveInteger("stop-at", values["stop-at"], steps);
  if (stopAt > steps) throw new UsageError(`--stop-at ${stopAt} is past --steps ${steps}`);
  const config = demoConfig({
    steps,
    batch: positiveInteger("batch", values.batch, DEFAULT_CONFIG.batch),
    workers,
    backend,
    seed: Number(seedText),
    evalEvery,
    exchange: exchange as Exchange,
  });
  return {
    config,
    out: values.out ?? "demo/out",
    resume: values.resume ?? false,
    stopAt,
    mpi: values.mpi ?? false,
  };
}

/** The saved run, checked against what the command line asks. */
async function readCheckpoint(
  out: string,
  asked: DemoConfig,
): Promise<{ config: DemoConfig; saved: DemoCheckpoint }> {
  const dir = `${out}/checkpoint`;
  let state;
  try {
    state = JSON.parse(await Deno.readTextFile(`${dir}/state.json`));
  } catch (error) {
    throw new UsageError(`--resume found no checkpoint in ${dir}: ${(error as Error).message}`);
  }
  const savedConfig = state.config as DemoConfig;
  for (const key of ["batch", "seed"] as const) {
    if (savedConfig[key] !== asked[key]) {
      throw new UsageError(
        `--resume: the checkpoint's run has --${key} ${savedConfig[key]}, not ${
          asked[key]
        }: drop --${key} or pass the saved value`,
      );
    }
  }
  if (state.step >= asked.steps) {
    throw new UsageError(
      `--resume: the checkpoint is at step ${state.step} already; pass --steps above it to train on`,
    );
  }
  const read = async (file: string) => {
    try {
      return await Deno.readFile(`${dir}/${file}`);
    } catch (error) {
      throw new UsageError(
        `--resume: the checkpoint in ${dir} lacks ${file}: ${(error as Error).message}`,
      );
    }
  };
  const saved: DemoCheckpoint = {
    step: state.step,
    history: state.history,
    lionw: await read("lionw.safetensors"),
    adam: { data: await read("adam.bin"), specs: state.adamSpecs },
  };
  // the run is the saved one (its schedule ends where it did); only how it runs may change
  const config = {
    ...savedConfig,
    workers: asked.workers,
    backend: asked.backend,
    evalEvery: asked.evalEvery,
  };
  return { config, saved };
}

/** Writes the trainer's checkpoint; its config's `steps` is the schedule's length, which a resumed run keeps. */
async function writeCheckpoint(out: string, trainer: DemoTrainer): Promise<void> {
  const dir = `${out}/checkpoint`;
  await Deno.mkdir(dir, { recursive: true });
  const saved = await trainer.checkpoint();
  await Deno.writeFile(`${dir}/lionw.safetensors`, saved.lionw);
  await Deno.writeFile(`${dir}/adam.bin`, saved.adam.data);
  // written last: a checkpoint is whole once state.json names its step
  await Deno.writeTextFile(
    `${dir}/state.json`,
    JSON.stringify({
      step: saved.step,
      config: trainer.config,
      history: saved.history,
      adamSpecs: saved.adam.specs,
    }),
  );
}

/** Progress: a bar on a terminal, a line per evaluation elsewhere (CI logs), or `silent`. */
function progress(total: number, start: number, silent = false) {
  if (silent) return { tick: () => {}, evaluated: () => {}, stop: () => {} };
  if (Deno.stdout.isTerminal()) {
    const bar = new cliProgress.SingleBar({
      format:
        " {bar} {value}/{total} steps | {rate} steps/s | val loss LionW {lionw} · Adam {adam} | ETA {eta_formatted}",
      hideCursor: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, start, { rate: "-", lionw: "-", adam: "-" });
    return {
      tick: (step: number, rate: string) => bar.update(step, { rate }),
      evaluated: (step: number, rate: string, lionw: string, adam: string) =>
        bar.update(step, { rate, lionw, adam }),
      stop: () => bar.stop(),
    };
  }
  return {
    tick: () => {},
    evaluated: (step: number, rate: string, lionw: string, adam: string) =>
      console.log(
        `step ${step}/${total} | ${rate} steps/s | val loss LionW ${lionw} · Adam ${adam}`,
      ),
    stop: () => {},
  };
}

const format = (x: number | undefined, digits = 3) => x === undefined ? "-" : x.toFixed(digits);

async function run(command: Command): Promise<void> {
  tf.env().set("PROD", true); // no "install tfjs-node" advice: the cpu backend is the point here
  await tf.setBackend("cpu");
  const names = loadNames();
  const { out } = command;
  const { config, saved } = command.resume
    ? await readCheckpoint(out, command.config)
    : { config: command.config, saved: undefined };
  if (saved !== undefined && command.stopAt <= saved.step) {
    throw new UsageError(
      `--stop-at ${command.stopAt} is not past the checkpoint's step ${saved.step}`,
    );
  }
  const collective = command.mpi ? await MpiCollective.init() : undefined;
  if (collective !== undefined && config.batch % collective.worldSize !== 0) {
    throw new UsageError(
      `--batch ${config.batch} does not split evenly over ${collective.worldSize} ranks: pass a multiple of ${collective.worldSize}`,
    );
  }
  // with several ranks, rank 0 speaks and writes; the others train in step with it
  const lead = (collective?.rank ?? 0) === 0;
  const console = lead ? globalThis.console : { log: () => {} };
  const trainer = await DemoTrainer.create(
    names,
    config,
    collective === undefined ? {} : { collective },
  );
  try {
    if (saved !== undefined) await trainer.restore(saved);
    else await trainer.evaluate();
    const inner = trainer.lionw.optimizer;
    const params = trainer.model("lionw").size;
    console.log(
      `DecoupledLionW vs Adam: a makemore-style MLP on ${names.length} English first names`,
    );
    console.log(
      `  model: context ${config.model.context}, embedding ${config.model.embedding}, hidden ${config.model.hidden} → ${params} parameters; ${trainer.data.train.count} training / ${trainer.data.val.count} validation examples`,
    );
    console.log(
      `  LionW: lr ${config.lionLr}, betas ${
        config.betas.join("/")
      }, weight decay ${config.weightDecay} on weight matrices, clip ${config.maxGradNorm}, warmup ${config.warmup} + cosine to ${config.alphaF}× over ${config.steps} steps; backend ${inner.backend}, ${inner.workers} workers`,
    );
    console.log(
      `  Adam:  lr ${config.adamLr} (${
        config.adamLr / config.lionLr
      }× LionW's), the same schedule; tfjs ${tf.version_core}, cpu backend`,
    );
    if (collective !== undefined) {
      console.log(
        `  data-parallel over ${collective.worldSize} ranks (${collective.library}): ${
          config.batch / collective.worldSize
        } examples of each batch of ${config.batch} per rank, ${
          config.exchange === "sign-vote"
            ? "LionW by sign vote (each rank its own momentum; no clipping)"
            : `gradients averaged (LionW's sent as ${config.exchange})`
        }`,
      );
    }
    if (saved !== undefined) console.log(`  resumed from step ${saved.step} (${out}/checkpoint)`);

    const started = trainer.step;
    const bar = lead ? progress(command.stopAt, started) : progress(0, 0, true);
    const t0 = performance.now();
    let stepTimes = { lionw: 0, adam: 0 };
    while (trainer.step < command.stopAt) {
      const { times, evaluated } = await trainer.advance(command.stopAt);
      stepTimes = { lionw: stepTimes.lionw + times.lionw, adam: stepTimes.adam + times.adam };
      const rate = ((trainer.step - started) / ((performance.now() - t0) / 1000)).toFixed(1);
      if (evaluated) {
        const { lionw, adam } = trainer.history;
        bar.evaluated(
          trainer.step,
          rate,
          format(lionw.valLoss.at(-1)),
          format(adam.valLoss.at(-1)),
        );
        if (lead) await writeCheckpoint(out, trainer);
      } else if (trainer.step % 10 === 0) {
        bar.tick(trainer.step, rate);
      }
    }
    bar.stop();
    const seconds = (performance.now() - t0) / 1000;
    const stepsRun = trainer.step - started;
    if (!lead) return;
    await writeOutputs(out, trainer, {
      wallSeconds: seconds,
      stepsPerSecond: stepsRun / seconds,
      optimizerStepMs: { lionw: stepTimes.lionw / stepsRun, adam: stepTimes.adam / stepsRun },
    });
  } finally {
    await trainer.close();
    await collective?.close();
  }
}

interface Timing {
  wallSeconds: number;
  stepsPerSecond: number;
  optimizerStepMs: { lionw: number; adam: number };
}

async function writeOutputs(out: string, trainer: DemoTrainer, timing: Timing): Promise<void> {
  const { history } = trainer;
  const names = trainer.sampleNames(10);
  const inner = trainer.lionw.optimizer;
  console.log(
    `\nAfter ${trainer.step} steps (${timing.wallSeconds.toFixed(1)} s here, ${
      timing.stepsPerSecond.toFixed(1)
    } steps/s with both models):`,
  );
  console.log("                   train loss  val loss  optimizer step");
  for (const run of RUNS) {
    console.log(
      `  ${RUN_LABELS[run].padEnd(14)}     ${format(history[run].trainLoss.at(-1))}     ${
        format(history[run].valLoss.at(-1))
      }    ${timing.optimizerStepMs[run].toFixed(3)} ms`,
    );
  }
  console.log(
    `  (losses in nats per character; ln 27 = ${Math.log(27).toFixed(3)} is a uniform guess)`,
  );
  console.log(
    `\nNames sampled from each model:\n  DecoupledLionW: ${
      names.lionw.join(", ")
    }\n  Adam:           ${names.adam.join(", ")}`,
  );

  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(`${out}/loss.svg`, await toSvg(lossSpec(history)));
  await Deno.writeTextFile(`${out}/metrics.svg`, await toSvg(metricsSpec(history)));
  await Deno.writeTextFile(
    `${out}/names.txt`,
    RUNS.map((run) => `# ${run}\n${names[run].join("\n")}\n`).join("\n"),
  );
  // the trainer's steps are the schedule's length (the saved run's, when resumed)
  const scheduleSteps = trainer.config.steps;
  const report = {
    config: { ...trainer.config, steps: trainer.step, scheduleSteps },
    lionwBackend: { backend: inner.backend, workers: inner.workers },
    evalSteps: history.evalSteps,
    lionw: history.lionw,
    adam: history.adam,
    timing: { ...timing, scheduleSteps },
    names,
  };
  await Deno.writeTextFile(`${out}/run.json`, JSON.stringify(report, null, 1));
  console.log(
    `\nWrote ${out}/: loss.svg, metrics.svg, run.json, names.txt, checkpoint/ (--resume goes on from it)`,
  );
}

if (import.meta.main) {
  let command;
  try {
    command = parseCommand(Deno.args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`error: ${error.message}\n\nRun with --help for the options.`);
    Deno.exit(2);
  }
  if (command === "help") {
    console.log(USAGE);
  } else {
    try {
      await run(command);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      console.error(`error: ${error.message}`);
      Deno.exit(2);
    }
  }
}
