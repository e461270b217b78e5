/**
 * The bench's peer rows, each in a process or runtime of its own: the
 * C/OpenMP roof, the npm package under Node, Lion in PyTorch and in
 * TensorFlow.js (wasm).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { buildNpm } from "../scripts/build_npm.ts";
import { buildRoof, findTorchPython, PeerProcess } from "./_peers.ts";
import { timeSteps, warmUp } from "./_timing.ts";
import { TFJS_VERSION, TfjsLion, useTfjsWasm } from "./tfjs_lion.ts";
import { type Row, type RowSettings, unavailableRow } from "./_rows.ts";
import { messageOf } from "./_report.ts";
import type { NodeRuntime } from "../scripts/node_runtimes.ts";

/**
 * Rows under Node (`node`: the one `--node` names, else the newest found):
 * the npm package, built into bench/.build/npm, stepping one tensor on the
 * same worker count, with the wasm build that Node validates (without
 * relaxed SIMD on Node 20).
 */
async function nodeRows(maxWorkers: number, node: NodeRuntime | undefined): Promise<Row[]> {
  const label = (policy: string, metrics: boolean) =>
    `node lionw wasm ×${maxWorkers} ${policy}${metrics ? " +metrics" : ""}`;
  const kinds = [["ignore", false], ["error", false], ["error", true]] as const;
  if (node === undefined) {
    return kinds.map(([policy, metrics]) =>
      unavailableRow(
        `node-${policy}${metrics ? "-metrics" : ""}`,
        label(policy, metrics),
        "no node",
      )
    );
  }
  const version = node.version;
  const dir = new URL("./.build/npm/", import.meta.url);
  await buildNpm(dir);
  const script = fileURLToPath(new URL("./node_peer.mjs", import.meta.url));
  return kinds.map(([policy, metrics]) => ({
    id: `node-${policy}${metrics ? "-metrics" : ""}`,
    label: `${label(policy, metrics)} (${version})`,
    async open(size) {
      const peer = await PeerProcess.start(node.path, [
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

/**
 * The peers asked for: the C/OpenMP roof (with metrics too), the npm
 * package under Node, Lion in PyTorch and in tfjs-wasm; each one that
 * cannot run here is a row saying why.
 *
 * @param peers The peers' names (`roof`, `node`, `torch`, `tfjs`).
 * @param settings The run's flags.
 * @param node The Node of the `node` rows, or `undefined` where none runs.
 * @returns The rows.
 */
export async function peerRows(
  peers: ReadonlySet<string>,
  settings: RowSettings,
  node: NodeRuntime | undefined,
): Promise<Row[]> {
  const { maxWorkers } = settings;
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
  if (peers.has("node")) rows.push(...await nodeRows(maxWorkers, node));
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
              await warmUp(() => lion.step(), 2, settings.warmUpMs);
              return await timeSteps(steps, () => lion.step(), settings.budgetMs);
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
