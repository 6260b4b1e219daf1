/**
 * Looking at a crew without changing it: its members with transport,
 * endpoint and planes (`crew peers`), and its forward table
 * (`crew connect --json`).
 *
 * @module
 */

import { providerFeaturesOrNone, resolveRuntime, type Runtime } from "../runtime.ts";
import {
  memberTransport,
  providerPlanes,
  refreshPendingTailnet,
  sshEndpoint,
  type Transport,
} from "../lease/mod.ts";
import { selectMembers } from "./forwards.ts";
import { liveDaemonCount, readDaemonState } from "./daemon.ts";
import { daemonForwards, exportLines, type MeshForward, parseHostsFile } from "./files.ts";
import {
  type ConnectOptions,
  crewLeases,
  hasSshFeature,
  type MeshPlan,
  planCrew,
  sortForwards,
} from "./plan.ts";
import { type MeshPaths, meshPaths, normalizeCrewName, readJsonFile } from "../core/mod.ts";
import { type MemberPeers, plannedPeerTables } from "./peer_table.ts";
import { peersPath } from "./peer_sync.ts";
import { controlForLease } from "../ssh/mod.ts";

/** One member as `crew peers` shows it. */
export interface PeerInfo {
  /** Peer name (disambiguated slug; the slug for leases outside the mesh). */
  peer: string;
  /** Slug. */
  slug: string;
  /** Lease id. */
  leaseId: string;
  /** Provider name. */
  provider: string;
  /** Primary transport. */
  transport: Transport;
  /** `ssh://host:port` (IPv6 bracketed), the tailnet address, or `""`. */
  endpoint: string;
  /** Exposed ports. */
  expose: number[];
  /** Planes the provider supports (`ssh`, `tailnet`). */
  planes: string[];
}

/**
 * Every member of a crew with provider, transport, endpoint, exposed ports
 * and the planes its provider supports, in peer-name order.
 *
 * @example
 * ```ts
 * import { crewPeers } from "@crabbox/crabbox";
 * for (const p of await crewPeers("pr-42")) console.log(p.peer, p.transport, p.endpoint);
 * ```
 */
export async function crewPeers(name: string, options: ConnectOptions = {}): Promise<PeerInfo[]> {
  const crew = normalizeCrewName(name);
  const leases = await refreshPendingTailnet(await crewLeases(crew, options), options);
  const features = (p: string) => providerFeaturesOrNone(options, p);
  const { members } = selectMembers(leases, hasSshFeature(options));
  const names = new Map(members.map((m) => [m.lease.id, m.name]));
  return leases.map((l) => {
    const f = features(l.provider);
    const transport = memberTransport(l, f);
    const endpoint = transport === "tailnet"
      ? (l.tailnet?.ipv4 ?? l.tailnet?.fqdn ?? "")
      : transport === "ssh"
      ? sshEndpoint(l) ?? ""
      : "";
    return {
      peer: names.get(l.id) ?? l.slug,
      slug: l.slug,
      leaseId: l.id,
      provider: l.provider,
      transport,
      endpoint,
      expose: [...l.expose],
      planes: providerPlanes(f),
    };
  }).sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0);
}

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
  const v = await readJsonFile<{ members?: MemberPeers[] }>(peersPath(paths)).catch(() =>
    undefined
  );
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
