/**
 * Several "hosts" on one Linux machine, for running MPI jobs over TCP as
 * they run between machines: one network namespace per host, each joined to
 * a bridge by a veth link that `tc` shapes (rate, and delay where the kernel
 * has `netem`), and MPICH's launcher reaching the namespaces the way it
 * reaches machines over ssh (`-launcher ssh -launcher-exec` a script that
 * runs `ip netns exec`). Used by `deno task net`, the network tests and
 * `deno task bench:dist --net`. Needs root (`ip netns`).
 *
 * Everything a net makes carries its name's prefix and lives in namespaces
 * it made (the bridge too, in a switch namespace of its own), so removing
 * those namespaces removes everything, and no traffic leaves them.
 *
 * @module
 */

import { MPIEXEC } from "../mpi/_launch.ts";

/** The prefix of every namespace a net makes (`deno task net -- down` removes what is left). */
export const NET_PREFIX = "lionw-";

/** The interface each host sees its link as (MPICH's `-iface`). */
export const HOST_IFACE = "eth0";

/** How to shape each link. */
export interface LinkShape {
  /** `tc` rate, both ways (`"1gbit"`, `"10gbit"`, `"500mbit"`). */
  readonly rate: string;
  /** One-way delay (`"1ms"`), through `netem`: refused where the kernel has none. */
  readonly delay?: string;
}

/** A net of hosts, up. */
export interface Net {
  /** Its name: the prefix of its namespaces. */
  readonly name: string;
  /** The hosts' namespaces, host 0 first. */
  readonly namespaces: readonly string[];
  /** The hosts' addresses, as the launcher's `-hosts` takes them. */
  readonly addresses: readonly string[];
  /** The namespace holding the bridge and the hosts' far link ends. */
  readonly switchNamespace: string;
  /** The launcher-exec script. */
  readonly launcher: string;
}

/** Runs `ip` (or `tc`) and throws with its stderr on failure. */
async function sh(command: string, args: readonly string[]): Promise<string> {
  const out = await new Deno.Command(command, { args: [...args], stdout: "piped", stderr: "piped" })
    .output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  if (!out.success) throw new Error(`${command} ${args.join(" ")}: ${text(out.stderr)}`);
  return text(out.stdout);
}

/**
 * Whether this process may make network namespaces (root, `ip` installed,
 * not inside a container that forbids it): it makes one and removes it.
 *
 * @returns `true`, or why not.
 */
export async function netnsPermitted(): Promise<true | string> {
  const probe = `${NET_PREFIX}probe-${Deno.pid}`;
  try {
    await sh("ip", ["netns", "add", probe]);
    await sh("ip", ["netns", "del", probe]);
    return true;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A `tc` qdisc for `shape` on `dev` in `namespace`: `netem` where a delay is asked, else a token bucket. */
async function shapeLink(namespace: string, dev: string, shape: LinkShape): Promise<void> {
  const qdisc = (kind: string, ...params: string[]) =>
    sh("tc", ["-n", namespace, "qdisc", "add", "dev", dev, "root", kind, ...params]);
  if (shape.delay !== undefined) {
    await qdisc("netem", "delay", shape.delay, "rate", shape.rate).catch((error) => {
      throw new Error(
        `Cannot delay the links as this kernel has no netem qdisc (sch_netem): ${error.message}`,
      );
    });
    return;
  }
  // a token bucket as deep as 4 ms at the rate (at least 64 KiB): full speed on long transfers
  const burst = Math.max(65_536, Math.round(rateBytes(shape.rate) * 0.004));
  await qdisc("tbf", "rate", shape.rate, "burst", String(burst), "latency", "100ms");
}

/**
 * A `tc` rate in bytes per second.
 *
 * @param rate As `tc` takes it: a number with `kbit`, `mbit`, `gbit` (or `bit`).
 * @returns Bytes per second.
 */
export function rateBytes(rate: string): number {
  const match = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/.exec(rate);
  if (match === null) {
    throw new RangeError(
      `Cannot shape the links as the rate must be a number and bit, kbit, mbit or gbit: current value is "${rate}"`,
    );
  }
  const scale = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 }[match[2] as "bit"];
  return (Number(match[1]) * scale) / 8;
}

/**
 * Makes `hosts` namespaces on a bridge, each link shaped, and the
 * launcher script. On any failure it removes what it made before throwing.
 *
 * @param hosts How many hosts.
 * @param shape The links' rate (and delay).
 * @returns The net.
 */
export async function netUp(hosts: number, shape: LinkShape): Promise<Net> {
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 200) {
    throw new RangeError(
      `Cannot make the net as 'hosts' must be in [1, 200]: current value is ${hosts}`,
    );
  }
  rateBytes(shape.rate);
  const name = `${NET_PREFIX}${Deno.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  const switchNamespace = `${name}-sw`;
  const namespaces = Array.from({ length: hosts }, (_, i) => `${name}-h${i}`);
  const addresses = namespaces.map((_, i) => `10.97.${Math.floor((i + 1) / 250)}.${(i + 1) % 250}`);
  const launcher = await Deno.makeTempFile({ prefix: `${name}-launch-`, suffix: ".sh" });
  const net: Net = { name, namespaces, addresses, switchNamespace, launcher };
  try {
    await sh("ip", ["netns", "add", switchNamespace]);
    await sh("ip", ["-n", switchNamespace, "link", "add", "br0", "type", "bridge"]);
    await sh("ip", ["-n", switchNamespace, "link", "set", "br0", "up"]);
    for (const [i, namespace] of namespaces.entries()) {
      await sh("ip", ["netns", "add", namespace]);
      await sh("ip", [
        "link",
        "add",
        `${name.slice(-6)}h${i}`,
        "netns",
        switchNamespace,
        "type",
        "veth",
        "peer",
        "name",
        HOST_IFACE,
        "netns",
        namespace,
      ]);
      const far = `${name.slice(-6)}h${i}`;
      await sh("ip", ["-n", switchNamespace, "link", "set", far, "master", "br0", "up"]);
      await sh("ip", ["-n", namespace, "addr", "add", `${addresses[i]}/16`, "dev", HOST_IFACE]);
      await sh("ip", ["-n", namespace, "link", "set", HOST_IFACE, "up"]);
      await sh("ip", ["-n", namespace, "link", "set", "lo", "up"]);
      await shapeLink(namespace, HOST_IFACE, shape); // host → switch
      await shapeLink(switchNamespace, far, shape); // switch → host
    }
    await Deno.writeTextFile(launcher, launcherScript(net));
    await Deno.chmod(launcher, 0o700);
    return net;
  } catch (error) {
    await netDown(net);
    throw error;
  }
}

/**
 * The script MPICH's launcher runs as `ssh`: `[-x] HOST COMMAND…`, run in
 * HOST's namespace.
 */
function launcherScript(net: Net): string {
  const cases = net.addresses.map((address, i) => `  ${address}) ns=${net.namespaces[i]} ;;`);
  return [
    "#!/bin/sh",
    "# MPICH's launcher runs this as it would run ssh: [-x] HOST COMMAND...",
    '[ "$1" = "-x" ] && shift',
    'host="$1"; shift',
    'case "$host" in',
    ...cases,
    '  *) echo "no namespace for host $host" >&2; exit 1 ;;',
    "esac",
    'exec ip netns exec "$ns" sh -c "$*"',
    "",
  ].join("\n");
}

/**
 * Removes a net: its namespaces (and with them its links, bridge and
 * qdiscs) and its launcher script. Never throws for what is already gone.
 *
 * @param net The net.
 */
export async function netDown(net: Net): Promise<void> {
  for (const namespace of [...net.namespaces, net.switchNamespace]) {
    await removeNamespace(namespace);
  }
  await Deno.remove(net.launcher).catch(() => {});
}

/**
 * Ends every process still in `namespace` (a launcher's proxy cut off from
 * its job outlives it), then removes the namespace.
 */
async function removeNamespace(namespace: string): Promise<void> {
  const pids = await sh("ip", ["netns", "pids", namespace]).catch(() => "");
  for (const pid of pids.split("\n").filter((line) => line !== "")) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already
    }
  }
  await sh("ip", ["netns", "del", namespace]).catch(() => {});
}

/**
 * Removes every namespace a net made that is still there (a net whose
 * process was killed before it could remove its own).
 *
 * @returns The namespaces removed.
 */
export async function netSweep(): Promise<string[]> {
  const listed = await sh("ip", ["netns", "list"]).catch(() => "");
  const ours = listed.split("\n").map((line) => line.split(" ")[0]!).filter((ns) =>
    ns.startsWith(NET_PREFIX)
  );
  for (const namespace of ours) await removeNamespace(namespace);
  const temp = Deno.env.get("TMPDIR") ?? "/tmp";
  for await (const entry of Deno.readDir(temp)) {
    if (entry.name.startsWith(NET_PREFIX) && entry.name.includes("-launch-")) {
      await Deno.remove(`${temp}/${entry.name}`).catch(() => {});
    }
  }
  return ours;
}

/**
 * The bytes host `i` has sent on its link so far (its interface's counter).
 *
 * @param net The net.
 * @param i The host.
 * @returns Bytes.
 */
export async function sentBytes(net: Net, i: number): Promise<number> {
  const json = await sh("ip", ["-n", net.namespaces[i]!, "-j", "-s", "link", "show", HOST_IFACE]);
  return JSON.parse(json)[0].stats64.tx.bytes;
}

/**
 * Takes host `i`'s link down (at the switch), as a pulled cable would.
 *
 * @param net The net.
 * @param i The host.
 */
export async function cutLink(net: Net, i: number): Promise<void> {
  await sh("ip", ["-n", net.switchNamespace, "link", "set", `${net.name.slice(-6)}h${i}`, "down"]);
}

/**
 * An MPI job over the net: one rank per host, launched from host 0's
 * namespace by MPICH's launcher through the net's script, over TCP
 * (`UCX_TLS=tcp,self`: no shared memory between the "hosts").
 *
 * @param net The net.
 * @param program The rank's command (`deno run … module args`).
 * @param options Output and a signal that ends the job.
 * @returns The command.
 */
export function netJob(
  net: Net,
  program: readonly string[],
  options: Pick<Deno.CommandOptions, "stdout" | "stderr" | "signal"> = {},
): Deno.Command {
  return new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      net.namespaces[0]!,
      "env",
      "UCX_TLS=tcp,self",
      MPIEXEC,
      "-launcher",
      "ssh",
      "-launcher-exec",
      net.launcher,
      "-hosts",
      net.addresses.join(","),
      "-iface",
      HOST_IFACE,
      "-n",
      String(net.addresses.length),
      "-ppn",
      "1",
      ...program,
    ],
    stdin: "null",
    ...options,
  });
}
