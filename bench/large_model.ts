/**
 * One model of 2^28 parameters (or `--elements N`), stepped on the worker
 * pool: checks that a store that large works (one 3 GiB arena here; more
 * arenas past 4 GiB) and reports the step time.
 *
 * `deno task bench:large [--elements 268435456] [--tensors 256] [--workers 2] [--momentum bfloat16]`
 * (`bfloat16`: a store of half-size exp_avg slots, 10 instead of 12 bytes a parameter;
 * `uint8`: 8-bit exp_avg, 9.02 bytes a parameter)
 *
 * @module
 */

import { DecoupledLionW, type MomentumDtype, ParameterStore } from "../mod.ts";
import { MOMENTUM_DTYPES } from "../src/store/moment_dtype.ts";
import { parseCommandLine, usageError } from "../scripts/cli.ts";

const USAGE = `deno task bench:large [--elements N] [--tensors K] [--workers W] [--steps S]
                      [--momentum float32|bfloat16|uint8]

Steps one model of N parameters (default 2^28) in K tensors (default 256) on W
shard workers (default 2), S times (default 5), with and without metrics, and
reports the step time and the memory. --momentum bfloat16 stores exp_avg in
half-size slots, --momentum uint8 in 8 bits (and an absmax a block of 256).`;

const values = parseCommandLine("bench:large", USAGE, {
  elements: { type: "string", default: String(2 ** 28) },
  tensors: { type: "string", default: "256" },
  workers: { type: "string", default: "2" },
  steps: { type: "string", default: "5" },
  momentum: { type: "string", default: "float32" },
});
const momentumDtype = values.momentum as MomentumDtype;
if (!MOMENTUM_DTYPES.includes(momentumDtype)) {
  usageError(
    "bench:large",
    USAGE,
    `--momentum must be float32, bfloat16 or uint8: got "${values.momentum}"`,
  );
}
for (const flag of ["elements", "tensors", "workers", "steps"]) {
  if (!/^\d+$/.test(String(values[flag])) || (flag !== "workers" && Number(values[flag]) === 0)) {
    usageError(
      "bench:large",
      USAGE,
      `--${flag} must be an integer${flag === "workers" ? " >= 0" : " > 0"}: got "${values[flag]}"`,
    );
  }
}
const elements = Number(values.elements), tensors = Number(values.tensors);
const size = Math.ceil(elements / tensors);
const t0 = performance.now();
const store = new ParameterStore({ momentumDtype });
const params = Array.from({ length: tensors }, (_, i) => {
  const p = store.add(`layer${i}.weight`, [size]);
  p.ensureGrad().fill(i % 2 ? 0.5 : -0.25);
  return p;
});
console.error(
  `store: ${(store.size / 2 ** 20).toFixed(0)} Mi parameters in ${store.arenaCount} arena(s), ${
    (store.byteLength / 2 ** 30).toFixed(2)
  } GiB, built in ${((performance.now() - t0) / 1e3).toFixed(1)} s`,
);
const opt = new DecoupledLionW(params, { workers: Number(values.workers), logger: null });
const times: number[] = [];
for (let i = 0; i < Number(values.steps) + 1; i++) {
  const start = performance.now();
  await opt.step({ metrics: i === Number(values.steps) });
  if (i > 0 && i < Number(values.steps)) times.push(performance.now() - start);
  else if (i === Number(values.steps)) {
    console.error(`step with metrics: ${(performance.now() - start).toFixed(0)} ms`);
  }
}
times.sort((a, b) => a - b);
const median = times[times.length >> 1]!;
console.log(JSON.stringify({
  elements: store.size,
  momentumDtype,
  arenas: store.arenaCount,
  gib: store.byteLength / 2 ** 30,
  workers: opt.workers,
  medianMs: median,
  gElementsPerS: store.size / median / 1e6,
  metricsOf: Object.keys(opt.getMetrics()).length / 6,
}));
await opt.close();
