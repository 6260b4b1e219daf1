/**
 * `crew connect --json`: a crew's forward table without starting or
 * changing anything — the live one of running `--export` daemons or of a
 * foreground `crew connect`, else a fresh plan.
 *
 * @module
 */

import { resolveRuntime, type Runtime } from "../runtime.ts";
import { liveDaemonCount, readDaemonState } from "./daemon_state.ts";
import { daemonForwards, exportLines, type MeshForward, parseHostsFile } from "./files.ts";
import { type ConnectOptions, type MeshPlan, planCrew, sortForwards } from "./plan.ts";
import { readJsonFile } from "../core/fs.ts";
import { type MeshPaths, meshPaths } from "../core/home.ts";
import { normalizeCrewName } from "../core/names.ts";
import { type MemberPeers, plannedPeerTables } from "./peer_table.ts";
import { controlForLease } from "../ssh/control.ts";

/**
 * The forward table of a foreground `crew connect` running elsewhere: the
 * hosts file it wrote, when every member with ports has a live master.
 */
async function liveForegroundForwards(
  rt: Runtime,
  plan: MeshPlan,
  options: ConnectOptions,
): Promise<MeshForward[] | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(plan.paths.hosts);
  } catch {
    return undefined;
  }
  const withPorts = plan.members.filter((m) => m.ports.length > 0);
  if (withPorts.length === 0) return undefined;
  for (const m of withPorts) {
    const control = await controlForLease(rt.home, m.lease, { env: options.env ?? rt.env });
    if (control.master !== "no") return undefined;
  }
  const ids = new Map(plan.members.map((m) => [m.name, m.lease.id]));
  return sortForwards(parseHostsFile(text).map((e) => ({ ...e, leaseId: ids.get(e.peer) ?? "" })));
}

/** What `crew connect --json` prints. */
export interface CrewDescription {
  /** Where the hosts file is (or would be) written. */
  hostsPath: string;
  /** Where the env file is (or would be) written. */
  envPath: string;
  /** `export …` lines. */
  exports: string[];
  /** The forward table. */
  forwards: { peer: string; remotePort: number; localPort: number; leaseId: string }[];
  /**
   * With `peers`: each member's peer table (the ssh-peer plane) — the live
   * one of a running `connect --peers`, else the planned one.
   */
  peers?: MemberPeers[];
  /** With `peers`: whether {@link CrewDescription.peers} is planned (nothing runs). */
  peersPlanned?: boolean;
}

async function readLivePeers(paths: MeshPaths): Promise<MemberPeers[] | undefined> {
  const v = await readJsonFile<{ members?: MemberPeers[] }>(paths.peers).catch(() => undefined);
  return Array.isArray(v?.members) ? v.members : undefined;
}

/**
 * The forward table of a crew without starting or changing anything: the
 * live table when `--export` daemons run (from `daemon.json`), else a fresh
 * plan. Writes no file and touches no box.
 *
 * @example
 * ```ts
 * import { describeCrew } from "@crabbox/crabbox";
 * console.log(JSON.stringify(await describeCrew("pr-42")));
 * ```
 */
export async function describeCrew(
  name: string,
  options: ConnectOptions = {},
): Promise<CrewDescription> {
  const rt = await resolveRuntime(options);
  const paths = meshPaths(rt.home, normalizeCrewName(name));
  let forwards: MeshForward[];
  let live = false;
  let plan: MeshPlan | undefined;
  const state = await readDaemonState(paths).catch(() => undefined);
  if (state && await liveDaemonCount(paths) > 0) {
    forwards = sortForwards(daemonForwards(state));
    live = true;
  } else {
    plan = await planCrew(name, options);
    const running = await liveForegroundForwards(rt, plan, options);
    live = running !== undefined;
    forwards = running ?? plan.forwards;
  }
  let peers: MemberPeers[] | undefined;
  let peersPlanned: boolean | undefined;
  if (options.peers) {
    peers = live ? await readLivePeers(paths) : undefined;
    peersPlanned = peers === undefined;
    peers ??= plannedPeerTables((plan ?? await planCrew(name, options)).members, forwards);
  }
  return {
    ...(peers ? { peers, peersPlanned } : {}),
    hostsPath: paths.hosts,
    envPath: paths.env,
    exports: exportLines(forwards),
    forwards: forwards.map((f) => ({
      peer: f.peer,
      remotePort: f.remotePort,
      localPort: f.localPort,
      leaseId: f.leaseId,
    })),
  };
}
