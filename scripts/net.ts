/**
 * `deno task net -- up|down|run`: several "hosts" on this machine (network
 * namespaces on a bridge, each link shaped by `tc`), and MPI jobs across
 * them over TCP, as between machines (scripts/netns.ts). Needs root.
 *
 * - `up` makes a net and leaves it up, printing its hosts and the launcher;
 * - `down` removes every net this script made that is still up;
 * - `run [flags] -- MODULE ARGS…` makes a net, runs MODULE on every host as
 *   one rank of an MPI job (this Deno, bounded by `--timeout`), prints each
 *   host's bytes sent, and removes the net, whatever happened.
 *
 * @module
 */

import { rankProgram } from "../mpi/_launch.ts";
import { parseCommandLine } from "./cli.ts";
import { type Net, netDown, netJob, netSweep, netUp, sentBytes } from "./netns.ts";

const USAGE = `deno task net -- up|down|run [options] [-- MODULE ARGS...]

  up                 make a net and leave it up
  down               remove every net this script made that is still up
  run -- MODULE ...  make a net, run MODULE on every host as an MPI rank over TCP,
                     print each host's bytes sent, remove the net

  --hosts N          hosts (network namespaces), one rank each (default 2)
  --rate R           each link's rate, both ways, as tc takes it (default 1gbit)
  --delay D          each link's one-way delay (needs the kernel's netem qdisc)
  --timeout S        run: end the job after S seconds (default 600)
  --allow-write DIR  run: let the ranks write DIR`;

// `deno task net -- up` passes the "--" on; a first argument that is a flag means no command yet
const given = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
const [command = "", ...rest] = given[0]?.startsWith("-") ? ["", ...given] : given;
const split = rest.indexOf("--");
const flags = split < 0 ? rest : rest.slice(0, split);
const program = split < 0 ? [] : rest.slice(split + 1);
const values = parseCommandLine("net", USAGE, {
  hosts: { type: "string", default: "2" },
  rate: { type: "string", default: "1gbit" },
  delay: { type: "string" },
  timeout: { type: "string", default: "600" },
  "allow-write": { type: "string" },
}, flags);
const shape = {
  rate: values.rate as string,
  ...(values.delay === undefined ? {} : { delay: values.delay as string }),
};

function describe(net: Net): string {
  return [
    `net ${net.name}: ${net.namespaces.length} hosts at ${shape.rate}${
      shape.delay ? `, ${shape.delay} delay` : ""
    }`,
    ...net.namespaces.map((ns, i) => `  host ${i}: ${net.addresses[i]} in namespace ${ns}`),
    `  launcher: mpiexec.mpich -launcher ssh -launcher-exec ${net.launcher} -hosts ${
      net.addresses.join(",")
    } -iface eth0 (run it inside ${net.namespaces[0]}, with UCX_TLS=tcp,self)`,
  ].join("\n");
}

async function run(): Promise<number> {
  if (program.length === 0) {
    console.error(`net: run needs a module after --\n\n${USAGE}`);
    return 2;
  }
  const net = await netUp(Number(values.hosts), shape);
  const removeOnSignal = () => netDown(net).then(() => Deno.exit(130));
  Deno.addSignalListener("SIGINT", removeOnSignal);
  Deno.addSignalListener("SIGTERM", removeOnSignal);
  try {
    console.log(describe(net));
    const writes = values["allow-write"] ? [`--allow-write=${values["allow-write"]}`] : [];
    const before = await Promise.all(net.namespaces.map((_, i) => sentBytes(net, i)));
    const out = await netJob(net, rankProgram(program[0]!, program.slice(1), writes), {
      stdout: "inherit",
      stderr: "inherit",
      signal: AbortSignal.timeout(Number(values.timeout) * 1000),
    }).output();
    for (const [i, sent] of before.entries()) {
      console.log(`host ${i} sent ${((await sentBytes(net, i)) - sent).toLocaleString()} bytes`);
    }
    return out.code;
  } finally {
    await netDown(net);
  }
}

async function main(): Promise<number> {
  if (command === "up") {
    console.log(describe(await netUp(Number(values.hosts), shape)));
    console.log("remove it with: deno task net -- down");
    return 0;
  }
  if (command === "down") {
    const removed = await netSweep();
    console.log(removed.length === 0 ? "no net is up" : `removed ${removed.join(", ")}`);
    return 0;
  }
  if (command === "run") return await run();
  console.error(
    `net: the command must be up, down or run: current value is "${command}"\n\n${USAGE}`,
  );
  return 2;
}

try {
  Deno.exit(await main());
} catch (error) {
  console.error(`net: ${(error as Error).message}`);
  Deno.exit(1);
}
