/**
 * The SSH-mesh forward table: which leases are members, what each is called,
 * and which local port each exposed port gets. Pure except for
 * {@link isLoopbackPortFree}, the default "is this port free" probe.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";
import { CrabboxError } from "../core/errors.ts";
import { normalizeName } from "../core/names.ts";
import { compareText } from "../core/order.ts";
import { envPeerName, type MeshForward } from "./files.ts";
import { sshForwardArgs } from "../ssh/args.ts";
import type { SshTarget } from "../../providers/types.ts";

export type { MeshForward } from "./files.ts";

/** The local ports the mesh uses (inclusive). */
export const MESH_PORT_RANGE: Readonly<{ first: number; last: number }> = {
  first: 51820,
  last: 52819,
};

/** A crew member in the mesh. */
export interface MeshMember {
  /** Peer name: the slug, disambiguated when env names would collide. */
  name: string;
  /** The lease. */
  lease: Lease;
  /** Exposed ports, ascending (may be empty: listed, never touched). */
  ports: number[];
}

/** A lease left out of the mesh, and why. */
export interface SkippedMember {
  /** The lease. */
  lease: Lease;
  /** Why it gets no forwards (shown as a warning). */
  reason: string;
}

/** Members and skipped leases of a crew. */
export interface MeshMembers {
  /** Members in name order. */
  members: MeshMember[];
  /** Leases that are not members (no `ssh` feature, no SSH endpoint). */
  skipped: SkippedMember[];
}

/** What name disambiguation needs to know about a lease. */
export interface NameInput {
  /** Slug. */
  slug: string;
  /** Provider name. */
  provider: string;
  /** Lease id. */
  id: string;
}

/**
 * The short form of a lease id used in names: without `cbx-`, last 6 characters.
 *
 * @example
 * ```ts
 * import { shortLeaseId } from "./forwards.ts";
 * shortLeaseId("cbx-3f9a0c1b7d2e"); // "1b7d2e"
 * ```
 */
export function shortLeaseId(id: string): string {
  return normalizeName(id).replace(/^cbx-/, "").slice(-6) || "peer";
}

/**
 * Peer names for members, in input order: the slug, unless its env name
 * ({@link envPeerName}) collides with another member's — then
 * `<slug>-<provider>`, and if that is taken too, `-<short lease id>` more.
 *
 * @example
 * ```ts
 * import { disambiguateNames } from "./forwards.ts";
 * disambiguateNames([
 *   { slug: "web", provider: "aws", id: "cbx-000000000001" },
 *   { slug: "web", provider: "gcp", id: "cbx-000000000002" },
 *   { slug: "web-aws", provider: "hetzner", id: "cbx-000000000003" },
 * ]); // ["web-aws", "web-gcp", "web-aws-hetzner"]
 * ```
 */
export function disambiguateNames(items: readonly NameInput[]): string[] {
  const counts = new Map<string, number>();
  for (const it of items) {
    const key = envPeerName(it.slug);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const used = new Set<string>();
  return items.map((it) => {
    let name = it.slug;
    if ((counts.get(envPeerName(name)) ?? 0) > 1 || used.has(envPeerName(name))) {
      const base = normalizeName(it.slug) || "peer";
      name = `${base}-${normalizeName(it.provider) || shortLeaseId(it.id)}`;
      if (used.has(envPeerName(name))) name = `${name}-${shortLeaseId(it.id)}`;
      for (let n = 2; used.has(envPeerName(name)); n++) {
        name = `${base}-${shortLeaseId(it.id)}-${n}`;
      }
    }
    used.add(envPeerName(name));
    return name;
  });
}

/**
 * Choose the mesh members among a crew's active leases. Leases whose provider
 * lacks the `ssh` feature, and leases with exposed ports but no SSH endpoint,
 * are skipped with a reason. Members are named ({@link disambiguateNames},
 * deciding in slug, provider, id order) and returned in name order.
 *
 * @example
 * ```ts
 * import { selectMembers } from "./forwards.ts";
 * import type { Lease } from "@crabbox/crabbox";
 * declare const leases: Lease[];
 * const { members, skipped } = selectMembers(leases, (p) => p !== "tailnet-only");
 * ```
 */
export function selectMembers(
  leases: readonly Lease[],
  hasSsh: (provider: string) => boolean,
  canForward: (provider: string) => boolean = () => true,
): MeshMembers {
  const skipped: SkippedMember[] = [];
  const kept: Lease[] = [];
  for (const lease of leases) {
    if (!hasSsh(lease.provider)) {
      skipped.push({ lease, reason: `provider ${lease.provider} has no SSH-mesh (ssh) feature` });
    } else if (lease.expose.length > 0 && !canForward(lease.provider)) {
      skipped.push({
        lease,
        reason:
          `provider ${lease.provider}'s SSH path cannot forward ports (no-port-forward); use crabbox run/ssh for this member`,
      });
    } else if (!lease.ssh && lease.expose.length > 0) {
      skipped.push({ lease, reason: "no SSH endpoint recorded yet" });
    } else {
      kept.push(lease);
    }
  }
  kept.sort((a, b) =>
    compareText(a.slug, b.slug) || compareText(a.provider, b.provider) || compareText(a.id, b.id)
  );
  const names = disambiguateNames(kept);
  const members = kept.map((lease, i) => ({
    name: names[i],
    lease,
    ports: [...new Set(lease.expose)].sort((a, b) => a - b),
  }));
  members.sort((a, b) => compareText(a.name, b.name));
  return { members, skipped };
}

/**
 * The first port in `range` that is not in `exclude` and that `isFree`
 * accepts; throws a `portsExhausted` error when there is none.
 *
 * @example
 * ```ts
 * import { nextFreePort } from "./forwards.ts";
 * nextFreePort((p) => p !== 51820, new Set()); // 51821
 * ```
 */
export function nextFreePort(
  isFree: (port: number) => boolean,
  exclude: ReadonlySet<number>,
  range: { first: number; last: number } = MESH_PORT_RANGE,
): number {
  for (let p = range.first; p <= range.last; p++) {
    if (!exclude.has(p) && isFree(p)) return p;
  }
  throw new CrabboxError(
    "portsExhausted",
    "ports_exhausted",
    `no free loopback ports between ${range.first} and ${range.last} for SSH-mesh forwards`,
    { hint: "stop other SSH-mesh connections (crabbox crew disconnect NAME) or free those ports" },
  );
}

/**
 * The forward table: members in name order, ports ascending, each given the
 * next local port that is free (`isFree`) and not yet assigned.
 *
 * @example
 * ```ts
 * import { allocateForwards } from "./forwards.ts";
 * import type { Lease } from "@crabbox/crabbox";
 * declare const api: Lease; // slug api, expose [8080]
 * allocateForwards([{ name: "api", lease: api, ports: [8080] }], () => true);
 * // [{ peer: "api", leaseId: api.id, remotePort: 8080, localPort: 51820 }]
 * ```
 */
export function allocateForwards(
  members: readonly MeshMember[],
  isFree: (port: number) => boolean,
  range: { first: number; last: number } = MESH_PORT_RANGE,
  exclude: ReadonlySet<number> = new Set(),
): MeshForward[] {
  const taken = new Set(exclude);
  const out: MeshForward[] = [];
  for (const m of members) {
    for (const remotePort of m.ports) {
      const localPort = nextFreePort(isFree, taken, range);
      taken.add(localPort);
      out.push({ peer: m.name, leaseId: m.lease.id, remotePort, localPort });
    }
  }
  return out;
}

/**
 * True when a TCP listener can be bound on `127.0.0.1:<port>` right now
 * (probe by binding, then close).
 *
 * @example
 * ```ts
 * import { isLoopbackPortFree } from "./forwards.ts";
 * isLoopbackPortFree(51820);
 * ```
 */
export function isLoopbackPortFree(port: number): boolean {
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port, transport: "tcp" });
    l.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The address of a forward, `127.0.0.1:<localPort>`; throws not-found for an
 * unknown peer or port.
 *
 * @example
 * ```ts
 * import { forwardAddress } from "./forwards.ts";
 * forwardAddress([{ peer: "api", leaseId: "cbx-000000000001", remotePort: 8080, localPort: 51820 }],
 *   "api", 8080); // "127.0.0.1:51820"
 * ```
 */
export function forwardAddress(
  forwards: readonly MeshForward[],
  peer: string,
  remotePort: number,
): string {
  const f = forwards.find((x) => x.peer === peer && x.remotePort === remotePort);
  if (!f) {
    throw new CrabboxError(
      "notFound",
      "no_forward",
      `no SSH-mesh forward for ${peer}:${remotePort}`,
      {
        hint: `forwards: ${forwards.map((x) => `${x.peer}:${x.remotePort}`).join(", ") || "none"}`,
      },
    );
  }
  return `127.0.0.1:${f.localPort}`;
}

/** Files and knobs of one member's tunnel process. */
export interface TunnelFiles {
  /** The crew's known_hosts. */
  knownHostsFile: string;
  /** ControlMaster socket (the tunnel is the master). */
  controlPath: string;
  /** ssh `-E` log (read for "open failed" and bind errors). */
  logFile: string;
  /** ServerAliveInterval seconds (default 5). */
  aliveInterval?: number;
  /** ServerAliveCountMax (default 3). */
  aliveCountMax?: number;
}

/**
 * argv (without the program) of one member's tunnel: all its forwards in one
 * `ssh -N`, `ExitOnForwardFailure=yes`, LogLevel INFO into `-E <log>`, and
 * `ControlMaster=yes` on the member's ControlPath.
 *
 * @example
 * ```ts
 * import { memberSshArgs } from "./forwards.ts";
 * memberSshArgs({ host: "127.77.0.2", port: 22, user: "root", keyPath: "/k" },
 *   [{ localPort: 51820, remotePort: 8080 }],
 *   { knownHostsFile: "/c/known_hosts", controlPath: "/c/cm/cbx-000000000001", logFile: "/c/log/x.log" });
 * ```
 */
export function memberSshArgs(
  target: SshTarget,
  forwards: readonly { localPort: number; remotePort: number }[],
  files: TunnelFiles,
): string[] {
  return sshForwardArgs(target, forwards, {
    knownHostsFile: files.knownHostsFile,
    control: { master: "yes", path: files.controlPath },
    logFile: files.logFile,
    logLevel: "INFO",
    aliveInterval: files.aliveInterval,
    aliveCountMax: files.aliveCountMax,
  });
}
