/**
 * The tfjs adapter's checks on a GPU backend, written once for every runtime:
 * Deno runs them on `webgpu` (tests/tfjs_device_test.ts), a page runs them in
 * Chromium on `webgl` and `webgpu` (tests/tfjs_device_page_test.ts). Each
 * check trains on the GPU backend and, where it compares, the same run on
 * tfjs's `cpu` backend (the CPU engines, which are bit-exact with torch);
 * both backends must be registered. No Deno API here.
 *
 * The bound: relative L2 ≤ 1e-3 between the two runs. A GPU may contract
 * `a·b + c` into one fused multiply-add and sums in another order, so an
 * update direction `c` within a rounding of 0 can take the other sign: that
 * element moves by 2·lr once. Over a few epochs such flips stay rare, far
 * below 1e-3 of the weights' norm; a wrong rule (a missing decay, a lerp
 * weight swapped, a clip not applied) is off by far more.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { decayGroups, decodeCheckpoint, encodeCheckpoint, LrScheduler } from "../mod.ts";
import type { MetricRecord } from "../mod.ts";
import { DecoupledLionWOptimizer, type DecoupledLionWOptimizerOptions } from "../tfjs/mod.ts";
import { programsOfBackend } from "../tfjs/_device_programs.ts";

/** The largest relative L2 difference allowed between a GPU run and the cpu run. */
export const TOLERANCE = 1e-3;

/** One check: its name and what it runs on the GPU backend `backend`. */
export interface DeviceCheck {
  readonly name: string;
  readonly run: (backend: string) => Promise<void>;
}

function expect(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

/** ‖a − b‖ / ‖b‖ over several arrays together. */
export function relativeL2(
  a: readonly ArrayLike<number>[],
  b: readonly ArrayLike<number>[],
): number {
  let difference = 0;
  let norm = 0;
  b.forEach((values, i) => {
    for (let j = 0; j < values.length; j++) {
      difference += (a[i]![j]! - values[j]!) ** 2;
      norm += values[j]! ** 2;
    }
  });
  return norm === 0 ? Math.sqrt(difference) : Math.sqrt(difference / norm);
}

function expectClose(
  a: readonly ArrayLike<number>[],
  b: readonly ArrayLike<number>[],
  what: string,
): void {
  const error = relativeL2(a, b);
  expect(error <= TOLERANCE, `${what}: relative L2 ${error} > ${TOLERANCE}`);
}

function model(seed: number): tfl.Sequential {
  const glorot = (s: number) => tfl.initializers.glorotUniform({ seed: s });
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        units: 32,
        inputShape: [8],
        activation: "tanh",
        kernelInitializer: glorot(seed),
      }),
      tfl.layers.dense({ units: 1, kernelInitializer: glorot(seed + 1) }),
    ],
  });
}

function data(): { x: tf.Tensor2D; y: tf.Tensor2D } {
  return {
    x: tf.tensor2d(Array.from({ length: 64 * 8 }, (_, i) => Math.sin(i)), [64, 8]),
    y: tf.tensor2d(Array.from({ length: 64 }, (_, i) => Math.cos(i / 3)), [64, 1]),
  };
}

/** What a run leaves to compare. */
interface Run {
  weights: Float32Array[];
  moments: Float32Array[];
  losses: number[];
  metrics: MetricRecord;
  iterations: number;
  readsInStep: number;
}

/** Counts the backend's reads (async and sync), and those made inside `applyGradients`. */
interface ReadSpy {
  readonly inStep: number;
  readonly all: number;
  /** Puts the backend's methods back. */
  restore(): void;
}

function spyOnReads(optimizer: DecoupledLionWOptimizer): ReadSpy {
  const counts = { inStep: 0, all: 0, restore: () => {} };
  const backend = tf.backend() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const originals = new Map<string, (...args: unknown[]) => unknown>();
  // webgpu keeps a tensor's data in tensorMap, webgl in texData: `values` while on the CPU
  const storage = (backend.tensorMap ?? backend.texData) as unknown as
    | { get(dataId: object): { values?: unknown } | undefined }
    | undefined;
  const onDevice = (dataId: object) => storage !== undefined && storage.get(dataId)?.values == null;
  let inStep = false;
  for (const method of ["read", "readSync", "readToGPU"]) {
    const original = backend[method];
    if (typeof original !== "function") continue;
    originals.set(method, original);
    backend[method] = (...args: unknown[]) => {
      // tfjs runs small ops on values still on the CPU by reading them there: not a device read
      if (onDevice(args[0] as object)) {
        counts.all++;
        if (inStep) counts.inStep++;
      }
      return original.apply(backend, args);
    };
  }
  counts.restore = () => originals.forEach((original, method) => (backend[method] = original));
  const apply = optimizer.applyGradients.bind(optimizer);
  optimizer.applyGradients = (gradients) => {
    inStep = true;
    try {
      apply(gradients);
    } finally {
      inStep = false;
    }
  };
  return counts;
}

async function valuesOf(tensors: readonly tf.Tensor[]): Promise<Float32Array[]> {
  return await Promise.all(tensors.map(async (t) => Float32Array.from(await t.data())));
}

/** Trains the model on `backend` with `model.fit`, and returns what to compare. */
async function fitOn(
  backend: string,
  options: DecoupledLionWOptimizerOptions,
  epochs = 4,
): Promise<Run> {
  await tf.setBackend(backend);
  const net = model(3);
  const optimizer = new DecoupledLionWOptimizer({ metrics: true, ...options });
  const reads = spyOnReads(optimizer);
  net.compile({ optimizer, loss: "meanSquaredError" });
  const { x, y } = data();
  const history = await net.fit(x, y, { epochs, batchSize: 16, shuffle: false, verbose: 0 });
  expect(optimizer.onDevice === (backend !== "cpu"), `on the device: ${optimizer.onDevice}`);
  const run: Run = {
    weights: await valuesOf(net.getWeights()),
    moments: await valuesOf((await optimizer.getWeights()).slice(1).map(({ tensor }) => tensor)),
    losses: history.history.loss as number[],
    metrics: byPosition(
      await optimizer.getMetrics(),
      net.trainableWeights.map((w) => (w.read() as tf.Variable).name),
    ),
    iterations: optimizer.iterations,
    readsInStep: reads.inStep,
  };
  reads.restore();
  await optimizer.close();
  tf.dispose([x, y]);
  net.dispose();
  return run;
}

/** The record with each variable's name replaced by its position (names differ from run to run). */
function byPosition(record: MetricRecord, names: readonly string[]): MetricRecord {
  const position = new Map(names.map((name, i) => [name, `v${i}`]));
  return Object.fromEntries(
    Object.entries(record).map(([key, value]) => {
      const slash = key.indexOf("/", key.indexOf("/") + 1);
      const name = key.slice(slash + 1);
      return [`${key.slice(0, slash)}/${position.get(name) ?? name}`, value];
    }),
  );
}

function metricValues(record: MetricRecord): number[] {
  return Object.keys(record).sort().map((key) => record[key]!);
}

function compareRuns(device: Run, cpu: Run, what: string): void {
  expect(device.readsInStep === 0, `${what}: ${device.readsInStep} reads inside applyGradients`);
  expect(
    device.iterations === cpu.iterations,
    `${what}: ${device.iterations} steps, not ${cpu.iterations}`,
  );
  expectClose(device.weights, cpu.weights, `${what}: weights`);
  expectClose(device.moments, cpu.moments, `${what}: exp_avg`);
  expectClose([device.losses], [cpu.losses], `${what}: losses`);
  const keys = Object.keys(cpu.metrics).sort().join();
  expect(Object.keys(device.metrics).sort().join() === keys, `${what}: metric keys differ`);
  expectClose([metricValues(device.metrics)], [metricValues(cpu.metrics)], `${what}: metrics`);
}

/**
 * Manual steps on two variables with `tf.variableGrads`; at the `poison`
 * steps the weight's gradient is finite but for its last value, `bad`.
 */
async function stepsOn(
  backend: string,
  options: DecoupledLionWOptimizerOptions,
  { steps, poison = [], bad = NaN, schedule = false, pause = true }: {
    steps: number;
    poison?: readonly number[];
    bad?: number;
    schedule?: boolean;
    pause?: boolean;
  },
): Promise<{ optimizer: DecoupledLionWOptimizer; variables: tf.Variable[]; errors: string[] }> {
  await tf.setBackend(backend);
  const w = tf.variable(tf.tensor2d(Array.from({ length: 48 }, (_, i) => Math.cos(i)), [8, 6]));
  const b = tf.variable(tf.tensor1d(Array.from({ length: 6 }, (_, i) => i / 10 - 0.2)));
  const x = tf.tensor2d(Array.from({ length: 32 }, (_, i) => Math.sin(i / 2)), [4, 8]);
  const optimizer = new DecoupledLionWOptimizer(options);
  await optimizer.prepare([w, b]);
  const scheduler = schedule ? new LrScheduler(optimizer.optimizer, (t) => 1 / (1 + t)) : null;
  const errors: string[] = [];
  for (let step = 1; step <= steps; step++) {
    const { grads } = tf.variableGrads(() =>
      tf.sum(tf.square(tf.tanh(tf.add(tf.matMul(x, w), b))))
    );
    if (poison.includes(step)) {
      grads[w.name]!.dispose();
      const values = Float32Array.from({ length: w.size }, (_, i) => Math.sin(i));
      values[w.size - 1] = bad; // the last value only: the verdict must see every one
      grads[w.name] = tf.tensor(values, w.shape);
    }
    try {
      optimizer.applyGradients(grads);
      scheduler?.step();
    } catch (error) {
      errors.push(`${step}: ${(error as Error).message}`);
    }
    tf.dispose(grads);
    if (pause) await new Promise((resolve) => setTimeout(resolve, 5));
  }
  x.dispose();
  return { optimizer, variables: [w, b], errors };
}

/** Whether `run` throws (its message to `seen`). */
function throws(run: () => unknown, seen: (message: string) => void = () => {}): boolean {
  try {
    run();
    return false;
  } catch (error) {
    seen((error as Error).message);
    return true;
  }
}

/** The checks, in order. */
export const DEVICE_CHECKS: readonly DeviceCheck[] = [
  {
    name:
      "model.fit trains with nothing read inside applyGradients, as the cpu backend does (fused)",
    async run(backend) {
      const options = { lr: 3e-3, weightDecay: 0.1, betas: [0.9, 0.99] as [number, number] };
      const device = await fitOn(backend, options);
      expect(device.losses.at(-1)! < device.losses[0]!, `loss ${device.losses} does not fall`);
      compareRuns(device, await fitOn("cpu", options), "fused");
    },
  },
  {
    name: "the fused programs are registered as tfjs kernels for this backend, and run",
    async run(backend) {
      await tf.setBackend(backend);
      for (const kernel of ["DecoupledLionWUpdate", "DecoupledLionWAllFinite"]) {
        expect(tf.getKernel(kernel, backend) !== undefined, `${kernel} is not registered`);
      }
      const programs = programsOfBackend();
      expect(programs !== undefined, "the step would run as tfjs ops");
      const grad = tf.tensor1d([1, NaN, 2]);
      const verdict = programs!.allFinite(grad);
      expect((await verdict.data())[0] === 0, "a NaN was not seen");
      tf.dispose([grad, verdict]);
    },
  },
  {
    name: "maximize alone climbs the gradient, by hand, fused and as ops",
    async run(backend) {
      // maximize steps with −g: c = lerp(0, −g, 1 − β1) = −0.1·g, so p − lr·sign(c) = p + lr·sign(g):
      // p = [1, −1] + 0.1·[1, −1] = [1.1, −1.1]; m = lerp(0, −g, 1 − β2) = −0.01·g = [−0.005, 0.02]
      await tf.setBackend(backend);
      for (const deviceUpdate of ["fused", "ops"] as const) {
        const w = tf.variable(tf.tensor1d([1, -1]));
        const optimizer = new DecoupledLionWOptimizer({
          lr: 0.1,
          weightDecay: 0,
          maximize: true,
          deviceUpdate,
        });
        optimizer.applyGradients({ [w.name]: tf.tensor1d([0.5, -2]) });
        const [values] = await valuesOf([w]);
        const [moment] = await valuesOf([(await optimizer.getWeights())[1]!.tensor]);
        const want = [Math.fround(1.1), Math.fround(-1.1)];
        expect(relativeL2([values!], [want]) <= TOLERANCE, `${deviceUpdate}: p = ${values}`);
        expect(
          relativeL2([moment!], [[Math.fround(-0.005), Math.fround(0.02)]]) <= TOLERANCE,
          `${deviceUpdate}: exp_avg = ${moment}`,
        );
        await optimizer.close();
        w.dispose();
      }
    },
  },
  {
    name: "the update as tfjs ops agrees too",
    async run(backend) {
      const options = { lr: 3e-3, weightDecay: 0.1, deviceUpdate: "ops" as const };
      compareRuns(await fitOn(backend, options), await fitOn("cpu", options), "ops");
    },
  },
  {
    name: "groups, decay groups, maximize, cautious, clipping and an LrScheduler agree",
    async run(backend) {
      const options: DecoupledLionWOptimizerOptions = {
        lr: 1e-2,
        maxGradNorm: 0.5,
        groups: (params) => {
          const [decay, noDecay] = decayGroups(params, { weightDecay: 0.2 }).groups;
          return [{ ...decay!, cautious: true }, { ...noDecay!, lr: 3e-2, maximize: true }];
        },
      };
      const runs = [];
      for (const on of [backend, "cpu"]) {
        const { optimizer, variables } = await stepsOn(on, options, { steps: 12, schedule: true });
        runs.push({
          values: await valuesOf(variables),
          moments: await valuesOf(
            (await optimizer.getWeights()).slice(1).map(({ tensor }) => tensor),
          ),
          lr: optimizer.optimizer.paramGroups.map((group) => group.lr),
        });
        await optimizer.close();
        tf.dispose(variables);
      }
      expectClose(runs[0]!.values, runs[1]!.values, "values");
      expectClose(runs[0]!.moments, runs[1]!.moments, "exp_avg");
      expect(runs[0]!.lr.join() === runs[1]!.lr.join(), "the scheduled lrs differ");
    },
  },
  {
    name:
      'at most one read per step with metrics (verdict and sums together), none without metrics under "ignore"',
    async run(backend) {
      for (
        const [options, perStep] of [[{ metrics: true }, 1], [
          { nonFinite: "ignore" as const },
          0,
        ]] as const
      ) {
        await tf.setBackend(backend);
        const w = tf.variable(tf.ones([64]));
        const optimizer = new DecoupledLionWOptimizer({ lr: 1e-3, ...options });
        const reads = spyOnReads(optimizer);
        for (let i = 0; i < 5; i++) {
          const g = tf.fill([64], i + 1);
          optimizer.applyGradients({ [w.name]: g });
          g.dispose();
        }
        const metrics = await optimizer.getMetrics();
        reads.restore();
        expect(reads.inStep === 0, `${reads.inStep} reads inside applyGradients`);
        expect(
          reads.all <= 5 * perStep,
          `${reads.all} reads for 5 steps, at most ${5 * perStep} allowed`,
        );
        if (perStep === 1) {
          expect(metrics[`l2_norm/grad/${w.name}`] === 40, "Σg² of the last step is not 5² · 64");
        }
        await optimizer.close();
        w.dispose();
      }
    },
  },
  {
    name:
      'a non-finite gradient under "error" changes nothing and is raised by a later step, naming it',
    async run(backend) {
      // 80 steps, NaN at step 4: its verdict comes back a few steps later (each pauses 5 ms;
      // 76 of them leave a loaded machine 380 ms for one small read),
      // and the step that finds it throws; the steps between changed nothing either
      const { optimizer, variables, errors } = await stepsOn(backend, { lr: 1e-2 }, {
        steps: 80,
        poison: [4],
      });
      expect(errors.length === 1, `one error expected, got ${errors.length}: ${errors}`);
      expect(
        /Cannot apply step 4 as the gradient of "[^"]+" is not finite/.test(errors[0]!),
        errors[0]!,
      );
      const raisedAt = Number(errors[0]!.split(":")[0]);
      expect(raisedAt > 4, `raised at step ${raisedAt}`);
      // so the run applied steps 1-3 and raisedAt+1…40: as many clean steps from the start
      const applied = 3 + (80 - raisedAt);
      const { optimizer: clean, variables: expected } = await stepsOn(backend, { lr: 1e-2 }, {
        steps: applied,
      });
      expect(
        relativeL2(await valuesOf(variables), await valuesOf(expected)) === 0,
        "values differ",
      );
      expect(
        optimizer.iterations === applied,
        `${optimizer.iterations} steps counted, not ${applied}`,
      );
      await optimizer.close();
      await clean.close();
      tf.dispose([...variables, ...expected]);
    },
  },
  {
    name: "getWeights() raises a non-finite step's error too, and the values are those before it",
    async run(backend) {
      const { optimizer, variables } = await stepsOn(backend, { lr: 1e-2 }, {
        steps: 2,
        pause: false,
      });
      const before = await valuesOf(variables);
      const g = tf.fill([6], NaN);
      optimizer.applyGradients({ [variables[1]!.name]: g });
      optimizer.applyGradients({ [variables[1]!.name]: tf.onesLike(g) }); // held back by the verdict
      let message = "";
      await optimizer.getWeights().catch((error: Error) => (message = error.message));
      expect(/step 3 .* or the 1 after it/.test(message), `getWeights(): ${message}`);
      expectClose(await valuesOf(variables), before, "values");
      expect(optimizer.iterations === 2, `${optimizer.iterations} steps counted, not 2`);
      await optimizer.close();
      tf.dispose([...variables, g]);
    },
  },
  {
    name: 'a non-finite step under "skip" is skipped and not counted',
    async run(backend) {
      const options = { lr: 1e-2, nonFinite: "skip" as const };
      const poisoned = { steps: 6, poison: [3], bad: -Infinity };
      const { optimizer, variables } = await stepsOn(backend, options, poisoned);
      await optimizer.getWeights(); // settles the count (on its backend: before the cpu run)
      const { optimizer: cpu, variables: expected } = await stepsOn("cpu", options, poisoned);
      expect(optimizer.iterations === 5 && cpu.iterations === 5, `${optimizer.iterations} steps`);
      expectClose(await valuesOf(variables), await valuesOf(expected), "values");
      await optimizer.close();
      await cpu.close();
      tf.dispose([...variables, ...expected]);
    },
  },
  {
    name: "one non-finite value anywhere in a large gradient is seen (every thread's stride)",
    async run(backend) {
      await tf.setBackend(backend);
      const size = 50_000; // more values than the verdict has threads
      const w = tf.variable(tf.zeros([size]));
      for (const at of [0, 16_383, 16_384, 32_773, size - 1]) {
        const optimizer = new DecoupledLionWOptimizer({ lr: 1e-2 });
        const values = new Float32Array(size).fill(1);
        values[at] = at % 2 === 0 ? Infinity : NaN;
        const g = tf.tensor(values);
        optimizer.applyGradients({ [w.name]: g });
        let message = "";
        await optimizer.getWeights().catch((error: Error) => (message = error.message));
        expect(message.startsWith("Cannot apply step 1"), `value ${at}: ${message}`);
        await optimizer.close();
        g.dispose();
      }
      expect((await w.data()).every((x) => x === 0), "the variable changed");
      w.dispose();
    },
  },
  {
    name: "model.save with the optimizer and a reload train on bit for bit on the same backend",
    async run(backend) {
      await tf.setBackend(backend);
      const net = model(5);
      const optimizer = new DecoupledLionWOptimizer({ lr: 3e-3, weightDecay: 1e-2 });
      net.compile({ optimizer, loss: "meanSquaredError" });
      const { x, y } = data();
      await net.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
      let artifacts: tf.io.ModelArtifacts | undefined;
      await net.save(
        tf.io.withSaveHandler((saved) => {
          artifacts = saved;
          return Promise.resolve({
            modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
          });
        }),
        { includeOptimizer: true },
      );
      const reloaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
      const restored = reloaded.optimizer as DecoupledLionWOptimizer;
      expect(restored.iterations === 8, `reloaded at step ${restored.iterations}`);
      await net.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
      await reloaded.fit(x, y, { epochs: 2, batchSize: 16, shuffle: false, verbose: 0 });
      expect(restored.onDevice, "the reloaded optimizer steps on the device");
      const [a, b] = [await valuesOf(net.getWeights()), await valuesOf(reloaded.getWeights())];
      expect(relativeL2(b, a) === 0, "the reloaded model drifted from the original");
      await optimizer.close();
      await restored.close();
      net.dispose();
      reloaded.dispose();
      tf.dispose([x, y]);
    },
  },
  {
    name:
      "a checkpoint of the inner optimizer holds the device's state, and loading it sends it back",
    async run(backend) {
      const { optimizer, variables } = await stepsOn(backend, { lr: 1e-2 }, { steps: 3 });
      const saved = await encodeCheckpoint(optimizer.optimizer);
      const values = await valuesOf(variables);
      const moments = await valuesOf(
        (await optimizer.getWeights()).slice(1).map(({ tensor }) => tensor),
      );
      const w = optimizer.optimizer.paramGroups[0]!.params[0]!;
      expectClose([w.data], [values[0]!], "the store after the pull");
      // three more steps, then back to the checkpoint
      for (let i = 0; i < 3; i++) {
        const g = tf.onesLike(variables[0]!);
        optimizer.applyGradients({ [variables[0]!.name]: g });
        g.dispose();
      }
      await decodeCheckpoint(optimizer.optimizer, saved);
      await Promise.resolve(); // the push is queued after the loader's own writes
      expect(relativeL2(await valuesOf(variables), values) === 0, "values not restored");
      const restored = await valuesOf(
        (await optimizer.getWeights()).slice(1).map(({ tensor }) => tensor),
      );
      expect(relativeL2(restored, moments) === 0, "exp_avg not restored");
      expect(optimizer.iterations === 3, `${optimizer.iterations} steps after the load, not 3`);
      await optimizer.close();
      tf.dispose(variables);
    },
  },
  {
    name:
      "the inner optimizer keeps the book: it starts no engine, refuses to step, and reads the device's state only once pulled",
    async run(backend) {
      const { optimizer, variables } = await stepsOn(backend, { lr: 1e-2 }, { steps: 2 });
      const inner = optimizer.optimizer;
      const { reason } = inner.backendChoice;
      expect(reason.includes(`tfjs ${backend} backend's tensors`) && inner.workers === 0, reason);
      let message = "";
      await inner.step().catch((error: Error) => (message = error.message));
      expect(message.includes("applyGradients()"), `step() on the inner optimizer: ${message}`);
      message = "";
      expect(throws(() => inner.stateDict(), (m) => (message = m)), "stateDict() before a pull");
      expect(message.includes("await opt.pullState() first"), `stateDict() unpulled: ${message}`);
      await optimizer.pullState(); // a refused step() left no fault behind
      const moments = await valuesOf(
        (await optimizer.getWeights()).slice(1).map(({ tensor }) => tensor),
      );
      const state = inner.stateDict().state;
      expectClose(variables.map((v) => state[v.name]!.expAvg), moments, "the pulled state");
      expect(inner.iterations === 2, `the book counts ${inner.iterations} steps`);
      const g = tf.onesLike(variables[1]!);
      optimizer.applyGradients({ [variables[1]!.name]: g }); // the device's copy is newer again
      g.dispose();
      expect(throws(() => inner.state(inner.paramGroups[0]!.params[1]!)), "state() after a step");
      await optimizer.pullState();
      // a fresh optimizer over the same variables takes a checkpoint's values before any step
      const saved = await encodeCheckpoint(inner);
      const values = await valuesOf(variables);
      await optimizer.close();
      const fresh = new DecoupledLionWOptimizer({ lr: 1e-2 });
      await fresh.prepare(variables);
      for (const v of variables) v.assign(tf.zerosLike(v));
      await decodeCheckpoint(fresh.optimizer, saved);
      await Promise.resolve(); // the push is queued after the loader's own writes
      expect(relativeL2(await valuesOf(variables), values) === 0, "values not restored");
      expect(fresh.iterations === 3, `${fresh.iterations} steps after the load, not 3`);
      // the device took the load once: a later write to the variables stays
      for (const v of variables) v.assign(tf.zerosLike(v));
      tf.dispose((await fresh.getWeights()).map(({ tensor }) => tensor));
      expect((await valuesOf(variables)).every((v) => v.every((x) => x === 0)), "pushed twice");
      // a non-finite step is raised as the state is pulled, and leaves no fault behind
      const bad = tf.fill(variables[1]!.shape, NaN);
      fresh.applyGradients({ [variables[1]!.name]: bad });
      bad.dispose();
      message = "";
      await fresh.pullState().catch((error: Error) => (message = error.message));
      expect(message.startsWith("Cannot apply step 4"), `pullState() after a NaN: ${message}`);
      await fresh.pullState();
      expect(fresh.optimizer.iterations === 3, `${fresh.optimizer.iterations} steps pulled`);
      await fresh.close();
      tf.dispose(variables);
    },
  },
  {
    name: "bfloat16 moments are refused on a GPU backend, naming the backend",
    async run(backend) {
      await tf.setBackend(backend);
      const w = tf.variable(tf.ones([4]));
      const optimizer = new DecoupledLionWOptimizer({ momentumDtype: "bfloat16" });
      let message = "";
      await optimizer.prepare([w]).catch((error: Error) => (message = error.message));
      expect(message.includes(`momentumDtype "bfloat16"`) && message.includes(backend), message);
      w.dispose();
    },
  },
];
