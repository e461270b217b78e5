/**
 * The demo's training: the same model, from the same initialisation, on the
 * same batches, trained twice side by side: DecoupledLionW through the tfjs
 * adapter (warmup + cosine, clipping, decay groups) and tfjs's own Adam with
 * a larger learning rate on the same schedule. No Deno API here: the page's
 * worker runs this file too, so a seed gives the same numbers in both.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import {
  type Collective,
  cosineAnnealingWithWarmupSchedule,
  decayGroups,
  decodeCheckpoint,
  encodeCheckpoint,
  type Exchange,
  LrScheduler,
  type Schedule,
} from "@decoupled/lionw";
import { DecoupledLionWOptimizer } from "@decoupled/lionw/tfjs";
import { type Examples, gather, type NameDataset, splitNames } from "./dataset.ts";
import { initialWeights, type ModelShape, NameModel } from "./model.ts";
import { seededRandom } from "./rng.ts";
import { type RunName, RUNS } from "./runs.ts";

/** Everything a run is made from. */
export interface DemoConfig {
  /** Optimizer steps of each optimizer. */
  readonly steps: number;
  /** Examples per batch. */
  readonly batch: number;
  /** The seed of the split, the initialisation, the batches and the samples. */
  readonly seed: number;
  /** LionW's shard workers (`"auto"`: the library's choice, none for a model this small). */
  readonly workers: number | "auto";
  /** LionW's kernel backend. */
  readonly backend: "auto" | "wasm" | "js";
  /** Evaluate (and take LionW's metrics) every this many steps. */
  readonly evalEvery: number;
  /** The model's sizes. */
  readonly model: ModelShape;
  /** LionW's peak learning rate. */
  readonly lionLr: number;
  /** Adam's peak learning rate (Lion's authors: 3–10× Lion's). */
  readonly adamLr: number;
  /** LionW's betas. */
  readonly betas: readonly [number, number];
  /** LionW's weight decay on the weight matrices (decay groups; none on embeddings and biases). */
  readonly weightDecay: number;
  /** LionW's gradient clipping norm (none with the sign-vote exchange, which cannot clip). */
  readonly maxGradNorm: number;
  /** What LionW's ranks exchange, data-parallel (`exchange`). */
  readonly exchange: Exchange;
  /** Warmup steps of the schedule (both optimizers). */
  readonly warmup: number;
  /** The schedule's final multiplier. */
  readonly alphaF: number;
  /** Share of the names held out for validation. */
  readonly valFraction: number;
  /** Training examples the train loss is measured on (a fixed sample). */
  readonly trainEvalSize: number;
}

/** The defaults of `deno task demo`. */
export const DEFAULT_CONFIG: DemoConfig = {
  steps: 3000,
  batch: 64,
  seed: 42,
  workers: "auto",
  backend: "auto",
  evalEvery: 150,
  model: { context: 3, embedding: 16, hidden: 200 },
  lionLr: 2e-3,
  adamLr: 1e-2,
  betas: [0.9, 0.99],
  weightDecay: 1e-4,
  maxGradNorm: 1,
  exchange: "float32",
  warmup: 100,
  alphaF: 0.1,
  valFraction: 0.1,
  trainEvalSize: 2048,
};

/**
 * The defaults with some values changed, the warmup shortened for short
 * runs (a tenth of the steps at most): what the command line and the page
 * both build, so that one seed gives one run.
 *
 * @param changes The values to change.
 * @returns The config.
 */
export function demoConfig(
  changes: Partial<
    Pick<
      DemoConfig,
      "steps" | "batch" | "seed" | "workers" | "backend" | "evalEvery" | "exchange"
    >
  >,
): DemoConfig {
  const config = { ...DEFAULT_CONFIG, ...changes };
  return { ...config, warmup: Math.min(DEFAULT_CONFIG.warmup, Math.floor(config.steps / 10)) };
}

/** One optimizer's curves, a point per evaluation. */
export interface RunHistory {
  /** Mean cross-entropy on a fixed sample of the training set, nats per character. */
  trainLoss: number[];
  /** Mean cross-entropy on the validation names, nats per character. */
  valLoss: number[];
  /** The learning rate at the evaluation's step. */
  lr: number[];
  /** Mean milliseconds of one optimizer step (`applyGradients`) since the last evaluation. */
  optimizerStepMs: number[];
}

/** Every number of a run so far. */
export interface DemoHistory {
  /** Steps done at each evaluation (0: before training). */
  evalSteps: number[];
  lionw: RunHistory & {
    /** The steps LionW's metrics were taken at (the evaluations after step 0). */
    metricSteps: number[];
    /** `getMetrics()` at those steps, a series per key (of the clipped gradients). */
    metrics: Record<string, number[]>;
    /** The global gradient norm before clipping at those steps (`lastStep.gradNorm`). */
    gradNorm: number[];
  };
  adam: RunHistory;
}

/** What one step did. */
export interface StepTimes {
  /** Milliseconds of each optimizer's `applyGradients`. */
  readonly lionw: number;
  readonly adam: number;
}

interface Run {
  readonly model: NameModel;
  readonly optimizer: tf.Optimizer;
  stepMs: number;
  stepsTimed: number;
}

/** What a checkpoint holds (bytes; the caller stores them). */
export interface DemoCheckpoint {
  /** Steps done. */
  readonly step: number;
  readonly history: DemoHistory;
  /** LionW's model and optimizer, in the library's safetensors checkpoint format. */
  readonly lionw: Uint8Array;
  /** Adam's model and optimizer weights, in tfjs's weights format. */
  readonly adam: { readonly data: Uint8Array; readonly specs: tf.io.WeightsManifestEntry[] };
}

/** Trains the model with both optimizers, step by step. */
export class DemoTrainer {
  readonly config: DemoConfig;
  readonly data: NameDataset;
  readonly history: DemoHistory;
  readonly #runs: Record<RunName, Run>;
  readonly #lionw: DecoupledLionWOptimizer;
  readonly #scheduler: LrScheduler;
  readonly #schedule: Schedule;
  readonly #trainSample: { x: tf.Tensor2D; y: tf.Tensor1D };
  readonly #val: { x: tf.Tensor2D; y: tf.Tensor1D };
  /** The ranks of a data-parallel run (each takes its share of every batch). */
  readonly #collective: Collective | undefined;
  #step = 0;

  private constructor(
    config: DemoConfig,
    data: NameDataset,
    runs: Record<RunName, Run>,
    lionw: DecoupledLionWOptimizer,
    schedule: Schedule,
    collective: Collective | undefined,
  ) {
    this.config = config;
    this.#collective = collective;
    this.data = data;
    this.#runs = runs;
    this.#lionw = lionw;
    this.#schedule = schedule;
    this.#scheduler = new LrScheduler(lionw.optimizer, schedule);
    this.#applyAdamSchedule();
    const sample = sampleRows(data.train, config.trainEvalSize, config.seed);
    this.#trainSample = tensorsOf(data.train.context, gather(data.train, sample));
    this.#val = tensorsOf(data.val.context, data.val);
    this.history = {
      evalSteps: [],
      lionw: { ...emptyHistory(), metricSteps: [], metrics: {}, gradNorm: [] },
      adam: emptyHistory(),
    };
  }

  /**
   * Builds both models from the seed's initialisation and both optimizers,
   * and waits until LionW's workers have started.
   *
   * @param names The names to learn.
   * @param config The run.
   * @param options `workerUrl`: the shard worker's module, for a bundled
   * page; `collective`: train data-parallel, each rank on its share of
   * every batch, both optimizers on the gradients averaged over the ranks
   * (the batch must split evenly).
   * @returns The trainer, before its first step.
   */
  static async create(
    names: readonly string[],
    config: DemoConfig,
    options: { workerUrl?: string | URL; collective?: Collective } = {},
  ): Promise<DemoTrainer> {
    const { collective } = options;
    if (collective !== undefined && config.batch % collective.worldSize !== 0) {
      throw new RangeError(
        `Cannot split a batch of ${config.batch} evenly over ${collective.worldSize} ranks: pass a batch that is a multiple of ${collective.worldSize}`,
      );
    }
    const data = splitNames(names, {
      context: config.model.context,
      valFraction: config.valFraction,
      random: seededRandom(config.seed, 1),
    });
    const initial = initialWeights(config.model, seededRandom(config.seed, 2));
    const lionModel = new NameModel("lionw", config.model, initial);
    const adamModel = new NameModel("adam", config.model, initial);
    const lionw = new DecoupledLionWOptimizer({
      lr: config.lionLr,
      betas: [...config.betas],
      weightDecay: config.weightDecay,
      // the vote's size is lr whatever the gradients' norm: sign-vote refuses clipping
      ...(config.exchange === "sign-vote" ? {} : { maxGradNorm: config.maxGradNorm }),
      workers: config.workers,
      backend: config.backend,
      groups: (params) => decayGroups(params, { weightDecay: config.weightDecay }).groups,
      ...(options.workerUrl === undefined ? {} : { workerUrl: options.workerUrl }),
      ...(collective === undefined ? {} : { collective, exchange: config.exchange }),
    });
    await lionw.prepare(lionModel.variables);
    const schedule = cosineAnnealingWithWarmupSchedule({
      tWarmup: config.warmup,
      tMax: config.steps,
      alphaF: config.alphaF,
    });
    const adam = tf.train.adam(config.adamLr);
    return new DemoTrainer(
      config,
      data,
      {
        lionw: { model: lionModel, optimizer: lionw, stepMs: 0, stepsTimed: 0 },
        adam: { model: adamModel, optimizer: adam, stepMs: 0, stepsTimed: 0 },
      },
      lionw,
      schedule,
      collective,
    );
  }

  /** Steps done. */
  get step(): number {
    return this.#step;
  }

  /** The LionW adapter (its `.optimizer` is the library's optimizer). */
  get lionw(): DecoupledLionWOptimizer {
    return this.#lionw;
  }

  /** The models, by run. */
  model(run: RunName): NameModel {
    return this.#runs[run].model;
  }

  /**
   * One step of each optimizer and, when the step ends at an evaluation
   * (every `evalEvery` steps, and at `stopAt`), the evaluation, with LionW's
   * metrics computed in that step: the rule the command line and the page
   * both follow, so that a seed gives one history.
   *
   * @param stopAt The step the run stops at.
   * @returns How long each optimizer step took, and whether it evaluated.
   */
  async advance(stopAt: number): Promise<{ times: StepTimes; evaluated: boolean }> {
    const next = this.#step + 1;
    const evaluated = next % this.config.evalEvery === 0 || next === stopAt;
    const times = this.#trainStep(evaluated);
    if (evaluated) await this.evaluate();
    return { times, evaluated };
  }

  /**
   * One step of each optimizer on the step's batch (drawn from the seed and
   * the step number alone, so a resumed run draws the same batches).
   */
  #trainStep(metrics: boolean): StepTimes {
    const { batch, seed } = this.config;
    const random = seededRandom(seed, 1_000_000 + this.#step);
    const rows = Int32Array.from(
      { length: batch },
      () => Math.floor(random() * this.data.train.count),
    );
    const { x, y } = tensorsOf(
      this.data.train.context,
      gather(this.data.train, this.#myShare(rows)),
    );
    this.#lionw.metrics = metrics;
    const times = {
      lionw: this.#optimizerStep(this.#runs.lionw, x, y),
      adam: this.#optimizerStep(this.#runs.adam, x, y),
    };
    tf.dispose([x, y]);
    this.#step++;
    this.#scheduler.step();
    this.#applyAdamSchedule();
    return times;
  }

  /**
   * Measures both models' losses now and appends them (and LionW's metrics)
   * to the history. Asynchronous: on a tfjs GPU backend, LionW's metrics are
   * read back from the device.
   */
  async evaluate(): Promise<void> {
    this.history.evalSteps.push(this.#step);
    for (const name of RUNS) {
      const run = this.#runs[name];
      const entry = this.history[name];
      entry.trainLoss.push(await meanLoss(run.model, this.#trainSample));
      entry.valLoss.push(await meanLoss(run.model, this.#val));
      entry.lr.push(this.#lr(name));
      entry.optimizerStepMs.push(run.stepsTimed === 0 ? 0 : run.stepMs / run.stepsTimed);
      run.stepMs = 0;
      run.stepsTimed = 0;
    }
    const metrics = this.#step === 0 ? {} : await this.#lionw.getMetrics();
    if (Object.keys(metrics).length > 0) {
      this.history.lionw.metricSteps.push(this.#step);
      // the norm the clipping used: the inner optimizer's report (a GPU backend reduces it on the device)
      const gradNorm = this.#lionw.onDevice ? NaN : this.#lionw.optimizer.lastStep.gradNorm;
      this.history.lionw.gradNorm.push(gradNorm ?? NaN);
    }
    for (const [key, value] of Object.entries(metrics)) {
      const series = (this.history.lionw.metrics[key] ??= []);
      series.push(value);
    }
  }

  /**
   * Names sampled from each model (the same draws for both).
   *
   * @param count How many of each.
   * @returns The names by run.
   */
  sampleNames(count: number): Record<RunName, string[]> {
    return {
      lionw: this.#runs.lionw.model.sample(count, seededRandom(this.config.seed, 3)),
      adam: this.#runs.adam.model.sample(count, seededRandom(this.config.seed, 3)),
    };
  }

  /** Both runs as bytes, to resume from. */
  async checkpoint(): Promise<DemoCheckpoint> {
    const lionw = await encodeCheckpoint(this.#lionw.optimizer, {
      scheduler: this.#scheduler,
      metadata: { step: String(this.#step) },
    });
    const adam = this.#runs.adam;
    const weights = [
      ...adam.model.variables.map((v) => ({ name: v.name, tensor: v as tf.Tensor })),
      ...(await adam.optimizer.getWeights()),
    ];
    const encoded = await tf.io.encodeWeights(weights);
    const data = new Uint8Array(encoded.data as ArrayBuffer);
    return {
      step: this.#step,
      history: structuredClone(this.history),
      lionw,
      adam: { data, specs: encoded.specs },
    };
  }

  /**
   * Goes on from a checkpoint of the same config: LionW's model, moments,
   * groups and schedule from its checkpoint; Adam's model and moments from
   * tfjs's weights; the history.
   *
   * @param saved What {@linkcode DemoTrainer.checkpoint} gave.
   */
  async restore(saved: DemoCheckpoint): Promise<void> {
    const inner = this.#lionw.optimizer;
    await decodeCheckpoint(inner, saved.lionw, { scheduler: this.#scheduler });
    const params = new Map(inner.paramGroups.flatMap((g) => g.params).map((p) => [p.name, p]));
    for (const variable of this.#runs.lionw.model.variables) {
      variable.assign(tf.tensor(params.get(variable.name)!.data.slice(), variable.shape));
    }
    const adam = this.#runs.adam;
    const decoded = tf.io.decodeWeights(saved.adam.data.slice().buffer, saved.adam.specs);
    for (const variable of adam.model.variables) variable.assign(decoded[variable.name]!);
    const moments = saved.adam.specs
      .filter((spec) => !adam.model.variables.some((v) => v.name === spec.name))
      .map((spec) => ({ name: spec.name, tensor: decoded[spec.name]! }));
    await adam.optimizer.setWeights(moments);
    this.#step = saved.step;
    this.#applyAdamSchedule();
    Object.assign(this.history, structuredClone(saved.history));
  }

  /** Ends LionW's workers and frees every tensor. */
  async close(): Promise<void> {
    await this.#lionw.close();
    this.#runs.adam.optimizer.dispose();
    for (const run of RUNS) this.#runs[run].model.dispose();
    tf.dispose([this.#trainSample.x, this.#trainSample.y, this.#val.x, this.#val.y]);
  }

  /** This rank's rows of a batch: all of them on one process. */
  #myShare(rows: Int32Array): Int32Array {
    if (this.#collective === undefined) return rows;
    const { rank, worldSize } = this.#collective;
    const share = rows.length / worldSize;
    return rows.subarray(rank * share, (rank + 1) * share);
  }

  #optimizerStep(run: Run, x: tf.Tensor2D, y: tf.Tensor1D): number {
    const { value, grads: mine } = tf.variableGrads(
      () => run.model.loss(x, y),
      run.model.variables,
    );
    const start = performance.now();
    // LionW averages its gradients over the ranks itself (its collective option); Adam's are averaged here
    const grads = run.optimizer === this.#lionw ? mine : this.#averaged(mine);
    run.optimizer.applyGradients(grads);
    const ms = performance.now() - start;
    run.stepMs += ms;
    run.stepsTimed++;
    tf.dispose([value, ...Object.values(grads), ...Object.values(mine)]);
    return ms;
  }

  /** Gradients summed over the ranks and divided by their number, in float32, as LionW does. */
  #averaged(grads: tf.NamedTensorMap): tf.NamedTensorMap {
    const collective = this.#collective;
    if (collective === undefined) return grads;
    return Object.fromEntries(
      Object.entries(grads).map(([name, grad]) => {
        const values = Float32Array.from(grad.dataSync());
        collective.blocking!.allReduceSum(values);
        for (let i = 0; i < values.length; i++) values[i] = values[i]! / collective.worldSize;
        return [name, tf.tensor(values, grad.shape)];
      }),
    );
  }

  /** Adam follows LionW's schedule: lr = adamLr × α(t), set before step t as `LrScheduler` does. */
  #applyAdamSchedule(): void {
    (this.#runs.adam.optimizer as unknown as { learningRate: number }).learningRate =
      this.config.adamLr * this.#schedule(this.#step);
  }

  #lr(run: RunName): number {
    return run === "lionw"
      ? this.#lionw.optimizer.paramGroups[0]!.lr
      : (this.#runs.adam.optimizer as unknown as { learningRate: number }).learningRate;
  }
}

function emptyHistory(): RunHistory {
  return { trainLoss: [], valLoss: [], lr: [], optimizerStepMs: [] };
}

/** `count` distinct rows of `examples`, drawn from the seed. */
function sampleRows(examples: Examples, count: number, seed: number): Int32Array {
  const random = seededRandom(seed, 4);
  const rows = Int32Array.from({ length: examples.count }, (_, i) => i);
  for (let i = 0; i < Math.min(count, rows.length); i++) {
    const j = i + Math.floor(random() * (rows.length - i));
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  return rows.slice(0, Math.min(count, rows.length));
}

function tensorsOf(context: number, { x, y }: { x: Int32Array; y: Int32Array }) {
  return {
    x: tf.tensor2d(x, [y.length, context], "int32"),
    y: tf.tensor1d(y, "int32"),
  };
}

/**
 * Mean loss over a set, in chunks (the whole validation set at once would be
 * one large matMul). Each chunk is read back asynchronously: a synchronous
 * read on a GPU backend stalls its queue (tfjs-webgpu's `dataSync` in a
 * worker fails outright).
 */
async function meanLoss(
  model: NameModel,
  { x, y }: { x: tf.Tensor2D; y: tf.Tensor1D },
): Promise<number> {
  const rows = y.shape[0];
  const chunk = 4096;
  let total = 0;
  for (let start = 0; start < rows; start += chunk) {
    const size = Math.min(chunk, rows - start);
    const loss = tf.tidy(() =>
      model.loss(tf.slice(x, [start, 0], [size, -1]), tf.slice(y, [start], [size]))
    );
    total += (await loss.data())[0]! * size;
    loss.dispose();
  }
  return total / rows;
}
