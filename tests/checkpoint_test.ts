import assert from "node:assert/strict";
import {
  CHECKPOINT_FORMAT,
  cosineAnnealingWithWarmupSchedule,
  decodeCheckpoint,
  DecoupledLionW,
  type DecoupledLionWOptions,
  encodeCheckpoint,
  loadCheckpoint,
  LrScheduler,
  type Parameter,
  ParameterStore,
  saveCheckpoint,
} from "../mod.ts";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.ts";
import { encodeWithChecksums } from "../src/io/_verification.ts";
import { runChild, seededValues } from "./_util.ts";

/** Two groups over three parameters (one never stepped), on `options`' engine. */
function model(options: DecoupledLionWOptions = {}, seed = 1) {
  const store = new ParameterStore();
  const w = store.add("fc.weight", [3, 5], seededValues(15, seed));
  const b = store.add("fc.bias", [5], seededValues(5, seed + 1));
  const idle = store.add("idle", [2], [7, 8]);
  const opt = new DecoupledLionW(
    [{ params: [w], weightDecay: 0.1 }, { params: [b, idle], lr: 3e-3, maximize: true }],
    { lr: 1e-2, maxGradNorm: 2, logger: null, ...options },
  );
  return { opt, w, b, idle, params: [w, b, idle] };
}

/** The js model after one step, with a warmup-cosine scheduler at t = 0. */
async function stepped(seed = 1) {
  const run = model({ backend: "js", workers: 0 }, seed);
  feed(run.w, run.b, 0);
  await run.opt.step();
  const scheduler = new LrScheduler(
    run.opt,
    cosineAnnealingWithWarmupSchedule({ tWarmup: 2, tMax: 8 }),
  );
  return { ...run, scheduler };
}

function feed(w: Parameter, b: Parameter, step: number): void {
  w.grad = seededValues(15, 100 + step, 0.5);
  b.grad = seededValues(5, 200 + step, 0.5);
}

/** The header's JSON of a checkpoint, parsed. */
function headerOf(bytes: Uint8Array): Record<string, unknown> {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
}

/** A checkpoint with its header replaced by `header` (the data kept). */
function withHeader(bytes: Uint8Array, header: unknown): Uint8Array {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + bytes.length - 8 - length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes.subarray(8 + length), 8 + json.length);
  return out;
}

Deno.test("encodeCheckpoint() writes safetensors: parameters by name, moments, metadata, 8-byte padding", async () => {
  const { opt, w, scheduler } = await stepped();
  scheduler.step();
  const bytes = await encodeCheckpoint(opt, { metadata: { run: "a" }, scheduler });
  const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(length % 8, 0);
  const header = headerOf(bytes);
  assert.deepEqual(Object.keys(header).sort(), [
    "__metadata__",
    "exp_avg/fc.bias",
    "exp_avg/fc.weight",
    "fc.bias",
    "fc.weight",
    "idle",
  ]);
  assert.deepEqual(header["fc.weight"], { dtype: "F32", shape: [3, 5], data_offsets: [0, 60] });
  assert.deepEqual(header["exp_avg/fc.bias"], {
    dtype: "F32",
    shape: [5],
    data_offsets: [60 + 20 + 8 + 60, 60 + 20 + 8 + 60 + 20],
  });
  const metadata = header.__metadata__ as Record<string, string>;
  assert.equal(metadata.format, CHECKPOINT_FORMAT);
  assert.equal(metadata.format_version, "1");
  assert.equal(metadata.run, "a");
  // each tensor's SHA-256, of its bytes in the file
  const checksums = JSON.parse(metadata.lionw_sha256!);
  assert.deepEqual(Object.keys(checksums).sort(), Object.keys(header).sort().slice(1));
  const { tensors } = decodeSafetensors(bytes);
  for (const [name, tensor] of tensors) {
    const digest = await crypto.subtle.digest("SHA-256", tensor.bytes.slice());
    const hex = Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, "0"));
    assert.equal(checksums[name], hex.join(""), name);
  }
  assert.deepEqual(JSON.parse(metadata.lionw_state!), {
    paramGroups: opt.stateDict().paramGroups,
    iterations: 1,
    scheduler: { t: 1 },
  });
  // the data: parameters, then moments, as float32 little-endian
  const data = new Float32Array(bytes.slice(8 + length).buffer);
  assert.deepEqual(data.subarray(0, 15), w.data);
  assert.deepEqual(data.subarray(22, 37), opt.state(w)!.expAvg);
  await opt.close();
});

for (
  const [from, to] of [
    [{ backend: "js", workers: 0 }, { backend: "wasm", workers: 2 }],
    [{ backend: "wasm", workers: 3 }, { backend: "js", workers: 1 }],
    [{ backend: "wasm", workers: 1 }, { backend: "gpujs", gpuMode: "cpu", workers: 0 }],
    [{ backend: "gpujs", gpuMode: "cpu", workers: 0 }, {
      backend: "gpujs",
      gpuMode: "cpu",
      workers: 2,
    }],
  ] as DecoupledLionWOptions[][]
) {
  Deno.test(`a run resumed from a checkpoint on another engine equals the uninterrupted one (${from!.backend} ×${from!.workers} → ${to!.backend} ×${to!.workers})`, async () => {
    const whole = model(from);
    const first = model(from);
    const second = model(to, 99); // other initial values: the checkpoint replaces them
    const schedule = () => cosineAnnealingWithWarmupSchedule({ tWarmup: 2, tMax: 8 });
    const wholeScheduler = new LrScheduler(whole.opt, schedule());
    const firstScheduler = new LrScheduler(first.opt, schedule());
    for (let step = 0; step < 3; step++) {
      for (const run of [whole, first]) feed(run.w, run.b, step);
      await whole.opt.step();
      await first.opt.step();
      wholeScheduler.step();
      firstScheduler.step();
    }
    const bytes = await encodeCheckpoint(first.opt, { scheduler: firstScheduler });
    const secondScheduler = new LrScheduler(second.opt, schedule());
    await decodeCheckpoint(second.opt, bytes, { scheduler: secondScheduler });
    assert.equal(secondScheduler.t, 3);
    assert.equal(second.opt.iterations, 3);
    for (let step = 3; step < 6; step++) {
      for (const run of [whole, second]) feed(run.w, run.b, step);
      await whole.opt.step();
      await second.opt.step();
      wholeScheduler.step();
      secondScheduler.step();
    }
    await Promise.all([second.opt.pullState(), whole.opt.pullState()]);
    for (const [i, param] of whole.params.entries()) {
      const resumed = second.params[i]!;
      if (to!.backend !== from!.backend) {
        // gpu.js's cpu mode rounds once where torch rounds twice: within 1e-6
        param.data.forEach((v, j) => assert.ok(Math.abs(v - resumed.data[j]!) <= 1e-6));
      } else {
        assert.deepEqual(resumed.data, param.data, param.name);
        assert.deepEqual(second.opt.state(resumed)?.expAvg, whole.opt.state(param)?.expAvg);
      }
    }
    await Promise.all([whole.opt.close(), first.opt.close(), second.opt.close()]);
  });
}

Deno.test("saveCheckpoint() writes atomically and leaves no temporary file; loadCheckpoint() reads it", async () => {
  const folder = await Deno.makeTempDir();
  const path = `${folder}/run.safetensors`;
  const { opt, w, b } = model({ backend: "js", workers: 0 });
  feed(w, b, 0);
  await opt.step();
  await saveCheckpoint(opt, path, { metadata: { note: "first" } });
  const first = await Deno.readFile(path);
  feed(w, b, 1);
  await opt.step();
  // a failed save (a reserved metadata key) leaves the previous file as it was
  await assert.rejects(saveCheckpoint(opt, path, { metadata: { format: "x" } }), {
    name: "RangeError",
    message:
      'Cannot save checkpoint as metadata key "format" is reserved by the format (format, format_version, lionw_state, lionw_sha256)',
  });
  assert.deepEqual(await Deno.readFile(path), first);
  await saveCheckpoint(opt, path);
  assert.deepEqual([...Deno.readDirSync(folder)].map((e) => e.name), ["run.safetensors"]);
  // a folder that does not exist: the I/O error, and nothing left behind
  await assert.rejects(
    saveCheckpoint(opt, `${folder}/missing/run.safetensors`),
    Deno.errors.NotFound,
  );
  const other = model({ backend: "js", workers: 0 }, 5);
  const metadata = await loadCheckpoint(other.opt, path);
  assert.equal(metadata.note, undefined);
  assert.deepEqual(other.w.data, w.data);
  assert.equal(other.opt.iterations, 2);
  await Promise.all([opt.close(), other.opt.close(), Deno.remove(folder, { recursive: true })]);
});

Deno.test("saveCheckpoint() needs write access to the checkpoint's folder alone (its temporary file is there)", async () => {
  const folder = await Deno.makeTempDir();
  await Deno.mkdir(`${folder}/run`);
  const path = `${folder}/run/last.safetensors`;
  await runChild(new URL("./_checkpoint_child.ts", import.meta.url), [path], {
    flags: [`--allow-write=${folder}/run`],
  });
  assert.deepEqual([...Deno.readDirSync(`${folder}/run`)].map((e) => e.name), ["last.safetensors"]);
  assert.deepEqual([...Deno.readDirSync(folder)].map((e) => e.name), ["run"]);
  await Deno.remove(folder, { recursive: true });
});

/** A well-formed file with every tensor of `bytes` but `name`, and no checksums. */
function without(bytes: Uint8Array, name: string): Uint8Array {
  const { tensors, metadata: { lionw_sha256: _, ...metadata } } = decodeSafetensors(bytes);
  const kept = [...tensors].filter(([key]) => key !== name).map(([key, tensor]) => ({
    name: key,
    shape: tensor.shape,
    data: new Float32Array(tensor.bytes.slice().buffer),
  }));
  return encodeSafetensors(kept, metadata);
}

/** `bytes` with one bit of a tensor's byte `at` flipped (its header, and so its checksum, kept). */
function flipped(bytes: Uint8Array, name: string, at: number): Uint8Array {
  const { tensors } = decodeSafetensors(bytes);
  const tensor = tensors.get(name)!;
  const out = bytes.slice();
  out[tensor.bytes.byteOffset - bytes.byteOffset + at]! ^= 0x10;
  return out;
}

/** Loading `bytes` must fail naming `message` and change nothing. */
async function assertRefused(bytes: Uint8Array, message: RegExp, what: string): Promise<void> {
  const { opt, w, b, idle, scheduler } = await stepped(7);
  const data = [w, b, idle].map((p) => p.data.slice());
  const dict = opt.stateDict();
  await assert.rejects(decodeCheckpoint(opt, bytes, { scheduler }), message, what);
  assert.deepEqual([w, b, idle].map((p) => p.data.slice()), data, `${what}: data`);
  assert.deepEqual(opt.stateDict(), dict, `${what}: state, groups, iterations`);
  assert.equal(scheduler.t, 0);
  await opt.close();
}

Deno.test("decodeCheckpoint() treats the file as untrusted: each defect is named and changes nothing", async () => {
  const { opt, scheduler } = await stepped();
  const good = await encodeCheckpoint(opt, { scheduler });
  await opt.close();
  const header = headerOf(good);
  const metadata = header.__metadata__ as Record<string, string>;
  const state = JSON.parse(metadata.lionw_state!);
  const checksums = JSON.parse(metadata.lionw_sha256!);
  const { lionw_sha256: _, ...unchecked } = metadata; // as a file another program wrote
  const length = Number(new DataView(good.buffer).getBigUint64(0, true));
  const big = good.slice();
  new DataView(big.buffer).setBigUint64(0, 100_000_001n, true);
  const past = good.slice();
  new DataView(past.buffer).setBigUint64(0, BigInt(good.length), true);
  const cases: [Uint8Array, RegExp, string][] = [
    [good.subarray(0, 5), /fewer than a header length/, "too short"],
    [big, /header length 100000001 is over the limit of 100000000 bytes/, "header too long"],
    [past, /runs past the end/, "header past the end"],
    [
      good.subarray(0, good.length - 4),
      /tensor "exp_avg\/fc.bias" has data offsets outside/,
      "truncated",
    ],
    [
      withHeader(good, {
        ...header,
        "fc.weight": { ...header["fc.weight"] as object, dtype: "F16" },
      }),
      /dtype "F16": only "F32"/,
      "dtype",
    ],
    [
      withHeader(good, {
        ...header,
        "fc.weight": { dtype: "F32", shape: [3, -5], data_offsets: [0, 60] },
      }),
      /shape that is not a list of integers >= 0/,
      "negative shape",
    ],
    [
      withHeader(good, {
        ...header,
        "fc.weight": { dtype: "F32", shape: [3, 4], data_offsets: [0, 60] },
      }),
      /needs 48 bytes but its offsets hold 60/,
      "shape × 4",
    ],
    [
      withHeader(good, {
        ...header,
        "fc.bias": { dtype: "F32", shape: [5], data_offsets: [56, 76] },
      }),
      /overlaps the one before it/,
      "overlap",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: unchecked,
        extra: { dtype: "F32", shape: [0], data_offsets: [0, 0] },
      }),
      /holds tensor "extra", which is no parameter/,
      "unknown tensor",
    ],
    [
      withHeader(good, { ...header, extra: { dtype: "F32", shape: [0], data_offsets: [0, 0] } }),
      /its lionw_sha256 has no SHA-256 for tensor "extra"/,
      "a tensor without a checksum",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: {
          ...metadata,
          lionw_sha256: JSON.stringify({ ...checksums, "exp_avg/idle": checksums["fc.bias"] }),
        },
      }),
      /its lionw_sha256 lists "exp_avg\/idle", which it does not hold/,
      "a checksum without a tensor",
    ],
    [flipped(good, "fc.bias", 3), /tensor "fc.bias" does not match its SHA-256/, "a flipped bit"],
    [
      flipped(good, "exp_avg/fc.weight", 59),
      /tensor "exp_avg\/fc.weight" does not match its SHA-256/,
      "a flipped bit in a moment",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: {
          ...metadata,
          lionw_sha256: JSON.stringify({ ...checksums, "fc.bias": "a1b2" }),
        },
      }),
      /its lionw_sha256 has no SHA-256 for tensor "fc.bias": "a1b2"/,
      "a checksum that is no SHA-256",
    ],
    [
      withHeader(good, { ...header, __metadata__: { ...metadata, lionw_sha256: "[1]" } }),
      /its lionw_sha256 is not a JSON object/,
      "checksums not an object",
    ],
    [
      withHeader(good, { ...header, "fc.weight": undefined }),
      /the data has a gap before tensor "fc.bias" \(bytes 0 to 60\)/,
      "gap",
    ],
    [
      without(good, "fc.weight"),
      /parameter 'fc.weight' is missing/,
      "missing parameter",
    ],
    [
      withHeader(good, {
        ...header,
        "exp_avg/fc.bias": {
          dtype: "F32",
          shape: [1, 5],
          data_offsets: header["exp_avg/fc.bias"] &&
            (header["exp_avg/fc.bias"] as { data_offsets: number[] }).data_offsets,
        },
      }),
      /"exp_avg\/fc.bias" has shape \[1, 5\] where parameter 'fc.bias' has \[5\]/,
      "moment shape",
    ],
    [
      withHeader(good, { ...header, __metadata__: { ...metadata, format: "other" } }),
      /format is "other", not "lionw-checkpoint"/,
      "format",
    ],
    [
      withHeader(good, { ...header, __metadata__: { ...metadata, format_version: "2" } }),
      /format version "2" is not one this library reads/,
      "version",
    ],
    [
      withHeader(good, { ...header, __metadata__: { ...metadata, note: 3 } }),
      /__metadata__ value "note" is not a string/,
      "metadata string",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: { ...metadata, lionw_state: JSON.stringify({ ...state, iterations: -1 }) },
      }),
      /iterations -1 is not an integer >= 0/,
      "iterations",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: {
          ...metadata,
          lionw_state: JSON.stringify({ ...state, scheduler: undefined }),
        },
      }),
      /no scheduler step/,
      "scheduler missing",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: {
          ...metadata,
          lionw_state: JSON.stringify({
            ...state,
            paramGroups: [{ ...state.paramGroups[0], lr: -1 }, state.paramGroups[1]],
          }),
        },
      }),
      /'paramGroups\[0\]\.lr' must be a finite number >= 0/,
      "hyperparameter",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: { ...metadata, lionw_state: '{"iterations":1,"iterations":2}' },
      }),
      /the key "iterations" twice/,
      "duplicate key",
    ],
    [
      withHeader(good, {
        ...header,
        __metadata__: { ...metadata, lionw_state: '{"__proto__":{}}' },
      }),
      /forbidden key "__proto__"/,
      "proto",
    ],
  ];
  // a duplicate key in the header itself
  const text = new TextDecoder().decode(good.subarray(8, 8 + length));
  const doubled = new TextEncoder().encode(text.replace('"fc.bias":', '"fc.weight":'));
  const duplicate = good.slice();
  duplicate.set(doubled, 8);
  cases.push([duplicate, /the header has the key "fc.weight" twice/, "duplicate tensor"]);
  for (const [bytes, message, what] of cases) await assertRefused(bytes, message, what);
});

Deno.test("the safetensors writer pads the header to 8 bytes with spaces and lays tensors out contiguously", () => {
  const bytes = encodeSafetensors(
    [{ name: "a", shape: [], data: new Float32Array([1]) }, {
      name: "b",
      shape: [2],
      data: new Float32Array([2, 3]),
    }],
    {},
  );
  const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + length));
  assert.equal(length % 8, 0);
  assert.match(text, /^\{.*\} *$/);
  assert.deepEqual(JSON.parse(text).b, { dtype: "F32", shape: [2], data_offsets: [4, 12] });
  assert.deepEqual([...new Float32Array(bytes.slice(8 + length).buffer)], [1, 2, 3]);
});

Deno.test("decodeCheckpoint() refuses a non-finite parameter or moment, naming the tensor and element, with or without checksums", async () => {
  const { opt, scheduler } = await stepped();
  const good = await encodeCheckpoint(opt, { scheduler });
  await opt.close();
  const { tensors, metadata } = decodeSafetensors(good);
  const { lionw_sha256: _, ...unchecked } = metadata;
  const withValue = async (name: string, index: number, value: number, checksums: boolean) => {
    const written = [...tensors].map(([key, tensor]) => {
      const data = new Float32Array(tensor.bytes.slice().buffer);
      if (key === name) data[index] = value;
      return { name: key, shape: tensor.shape, data };
    });
    // a writer that computes the checksums of what it writes (the value is "intended")
    return checksums
      ? await encodeWithChecksums(
        written.map((t) => t.name),
        (sums) => encodeSafetensors(written, { ...unchecked, lionw_sha256: sums }),
      )
      : encodeSafetensors(written, unchecked);
  };
  for (const checksums of [true, false]) {
    for (
      const [name, index, value] of [
        ["fc.weight", 7, NaN],
        ["fc.bias", 0, Infinity],
        ["exp_avg/fc.weight", 14, -Infinity],
        ["exp_avg/fc.bias", 2, NaN],
      ] as const
    ) {
      await assertRefused(
        await withValue(name, index, value, checksums),
        new RegExp(
          `^RangeError: Cannot read checkpoint as tensor "${
            name.replace("/", "\\/")
          }" must be finite: element ${index} is ${value}$`,
        ),
        `${name}[${index}] = ${value}, checksums ${checksums}`,
      );
    }
  }
  // a file without checksums (one another program wrote) still loads, with every other check
  const { opt: other } = await stepped(7);
  await decodeCheckpoint(other, await withValue("fc.bias", 0, 0.5, false));
  await other.close();
});
