// A bench peer under Node: the npm package (built by `deno task build:npm`)
// stepping one tensor, speaking the peers' protocol ("K" → {"ms": [...]}).
// Usage: node bench/node_peer.mjs PACKAGE_DIR ELEMENTS WORKERS NONFINITE METRICS
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const [dir, elements, workers, nonFinite, metrics] = process.argv.slice(2);
const { DecoupledLionW, ParameterStore } = await import(pathToFileURL(`${dir}/esm/mod.js`).href);
const store = new ParameterStore();
const w = store.add("w", [Number(elements)]);
w.data.forEach((_, i, p) => (p[i] = Math.sin(i)));
w.ensureGrad().forEach((_, i, g) => (g[i] = Math.cos(i)));
const opt = new DecoupledLionW([w], {
  workers: Number(workers),
  nonFinite,
  lr: 1e-4,
  weightDecay: 1e-4,
  logger: null,
});
const step = () => opt.step({ metrics: metrics === "metrics" });
for (let i = 0; i < 5; i++) await step(); // warm-up
console.log("ready");
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "quit") break;
  const ms = [];
  for (let s = 0; s < Number(line); s++) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ ms }));
}
await opt.close();
