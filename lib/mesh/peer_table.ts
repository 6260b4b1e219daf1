/**
 * The `ssh-peer` plane as data (pure): which loopback address each peer gets
 * on the other members, the `-R` forwards a member's ControlMaster carries so
 * it reaches every other member through the operator, and the managed hosts
 * block and env file written on the member. Nothing here touches a box.
 *
 * The path of one connection from member M to peer P's port p:
 * M's `127.0.0.<n>:p` (sshd's `-R` listener on M) → M's ssh session → the
 * operator's `127.0.0.1:<local port of P:p>` (P's `-L` listener) → P's ssh
 * session → P's `127.0.0.1:p`.
 *
 * @module
 */

import { CrabboxError } from "../core/errors.ts";
import { roleOf } from "../core/names.ts";
import { compareText } from "../core/order.ts";
import { envVarName, type MeshForward } from "./files.ts";
import type { MeshMember } from "./forwards.ts";

/** First line of the `ssh-peer` block in a member's `/etc/hosts` and `/etc/hosts.cbx`. */
export const PEER_BLOCK_BEGIN = "# crabbox ssh-peer hosts begin";
/** Last line of the `ssh-peer` block. */
export const PEER_BLOCK_END = "# crabbox ssh-peer hosts end";

/** Loopback addresses never handed to a peer: `.1` (the box itself), systemd-resolved's `.53`/`.54`. */
const RESERVED = new Set([0, 1, 53, 54, 255]);
/** The address the GatewayPorts probe binds (never a peer's). */
export const PROBE_OCTET = 254;

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PEER_ADDRESS = /^127\.0\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-3])$/;

/** How one peer port reaches a member. */
export type PeerMode = "address" | "fallback";

/** One peer port as a member sees it. */
export interface PeerEntry {
  /** Peer name (`<peer>.cbx`). */
  peer: string;
  /** The peer's role alias (`<role>.cbx`), when it differs from the name and is first for it. */
  role?: string;
  /** Lease id of the peer. */
  leaseId: string;
  /** The peer's port (on its own 127.0.0.1). */
  remotePort: number;
  /** `address`: `127.0.0.<n>:<remotePort>` named in the hosts block; `fallback`: `127.0.0.1:<allocated>`. */
  mode: PeerMode;
  /** Where the member connects: `127.0.0.<n>` or `127.0.0.1`. */
  bindAddress: string;
  /** The port the member connects to (`remotePort`, or sshd's allocated port; 0 until known). */
  bindPort: number;
  /** The operator's local port of the peer's forward (the `-R` target). */
  operatorPort: number;
  /** Why the fallback (mode `fallback`). */
  reason?: string;
}

/** What a member's sshd and login allow. */
export interface MemberCaps {
  /** sshd binds the `-R` address the client asks for (`GatewayPorts clientspecified`). */
  clientSpecified: boolean;
  /** The login is root (may bind ports below 1024). */
  root: boolean;
  /**
   * sshd binds every `-R` on all interfaces (`GatewayPorts yes`): the plane
   * stays off on this member rather than expose peers' ports to its network.
   */
  wildcard?: boolean;
}

/**
 * A stable `127.0.0.<n>` octet per lease: keeps the ones already given,
 * hands new leases the lowest free octet (2..253 without 53 and 54).
 * Mutates and returns `octets`.
 *
 * @example
 * ```ts
 * import { assignPeerOctets } from "./peer_table.ts";
 * assignPeerOctets(new Map(), ["cbx-000000000001", "cbx-000000000002"]); // ids → 2, 3
 * ```
 */
export function assignPeerOctets(
  octets: Map<string, number>,
  leaseIds: readonly string[],
): Map<string, number> {
  const used = new Set(octets.values());
  let next = 2;
  for (const id of leaseIds) {
    if (octets.has(id)) continue;
    while (used.has(next) || RESERVED.has(next) || next === PROBE_OCTET) next++;
    if (next > 253) {
      throw new CrabboxError(
        "usage",
        "too_many_peers",
        "the ssh-peer plane gives each member one 127.0.0.<n> address: at most 250 members",
      );
    }
    octets.set(id, next);
    used.add(next);
  }
  return octets;
}

/**
 * The peer table of `self`: one entry per port of every *other* member, in
 * peer then port order. A port gets its own `127.0.0.<n>:<port>` when the
 * member's sshd honours the bind address and the port is allowed (>= 1024 or
 * a root login); else a `fallback` on `127.0.0.1` whose port sshd allocates.
 * The role alias goes to the first peer (in name order) with that role, and
 * only when it differs from every peer name. Peers whose name is not a DNS
 * label are left out (they are reported as `skipped`).
 *
 * @example
 * ```ts
 * import { peerTable } from "./peer_table.ts";
 * import type { MeshMember } from "./forwards.ts";
 * declare const members: MeshMember[];
 * peerTable(members[0], members, [], new Map(), { clientSpecified: true, root: true });
 * ```
 */
export function peerTable(
  self: MeshMember,
  members: readonly MeshMember[],
  forwards: readonly MeshForward[],
  octets: ReadonlyMap<string, number>,
  caps: MemberCaps,
): { entries: PeerEntry[]; skipped: { peer: string; reason: string }[] } {
  const names = new Set(members.map((m) => m.name));
  const roles = new Set<string>();
  const entries: PeerEntry[] = [];
  const skipped: { peer: string; reason: string }[] = [];
  const others = [...members].filter((m) => m.lease.id !== self.lease.id)
    .sort((a, b) => compareText(a.name, b.name));
  for (const m of others) {
    if (caps.wildcard) {
      skipped.push({
        peer: m.name,
        reason: "sshd has GatewayPorts yes: a -R forward would listen on every interface",
      });
      continue;
    }
    if (!DNS_LABEL.test(m.name)) {
      skipped.push({ peer: m.name, reason: "name is not a DNS label" });
      continue;
    }
    const n = octets.get(m.lease.id);
    const role = roleOf(m.name);
    const alias = role !== m.name && DNS_LABEL.test(role) && !names.has(role) && !roles.has(role)
      ? role
      : undefined;
    if (alias) roles.add(alias);
    for (const port of m.ports) {
      const fwd = forwards.find((f) => f.leaseId === m.lease.id && f.remotePort === port);
      if (!fwd) continue;
      const reason = !caps.clientSpecified
        ? "sshd on this member lacks GatewayPorts clientspecified"
        : port < 1024 && !caps.root
        ? `port ${port} < 1024 and the login is not root`
        : n === undefined
        ? "no loopback address left"
        : undefined;
      entries.push({
        peer: m.name,
        role: alias,
        leaseId: m.lease.id,
        remotePort: port,
        mode: reason ? "fallback" : "address",
        bindAddress: reason ? "127.0.0.1" : `127.0.0.${n}`,
        bindPort: reason ? 0 : port,
        operatorPort: fwd.localPort,
        reason,
      });
    }
  }
  return { entries, skipped };
}

/**
 * The `-R` spec of an entry as given to ssh: `<bind>:<port or 0>:127.0.0.1:<operator port>`
 * (a fallback asks for port 0: sshd allocates one and ssh prints it).
 *
 * @example
 * ```ts
 * import { remoteForwardSpec } from "./peer_table.ts";
 * remoteForwardSpec({ mode: "address", bindAddress: "127.0.0.2", remotePort: 8080, operatorPort: 51820 });
 * // "127.0.0.2:8080:127.0.0.1:51820"
 * ```
 */
export function remoteForwardSpec(
  e: Pick<PeerEntry, "mode" | "bindAddress" | "remotePort" | "operatorPort">,
): string {
  if (!PEER_ADDRESS.test(e.bindAddress) && e.bindAddress !== "127.0.0.1") {
    throw new CrabboxError("usage", "bad_peer_address", `bad peer address ${e.bindAddress}`);
  }
  for (const p of [e.remotePort, e.operatorPort]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      throw new CrabboxError("usage", "bad_port", `peer forward port ${p} must be 1..65535`);
    }
  }
  const port = e.mode === "address" ? e.remotePort : 0;
  return `${e.bindAddress}:${port}:127.0.0.1:${e.operatorPort}`;
}

/**
 * The lines between the markers of the hosts block: one line per peer with
 * its own address, `127.0.0.<n> <peer>.cbx [<role>.cbx]`. Fallback entries
 * have no address of their own and get no line. Every address and name is
 * validated (a bad one throws: nothing unchecked reaches a hosts file).
 *
 * @example
 * ```ts
 * import { peerHostsLines } from "./peer_table.ts";
 * peerHostsLines([{ peer: "db", role: undefined, leaseId: "cbx-000000000002", remotePort: 5432,
 *   mode: "address", bindAddress: "127.0.0.3", bindPort: 5432, operatorPort: 51821 }]);
 * // ["127.0.0.3 db.cbx"]
 * ```
 */
export function peerHostsLines(entries: readonly PeerEntry[]): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const e of entries) {
    if (e.mode !== "address" || seen.has(e.peer)) continue;
    seen.add(e.peer);
    if (!PEER_ADDRESS.test(e.bindAddress)) {
      throw new CrabboxError("usage", "bad_peer_address", `bad peer address ${e.bindAddress}`);
    }
    const names = [e.peer, ...(e.role ? [e.role] : [])];
    for (const n of names) {
      if (!DNS_LABEL.test(n)) {
        throw new CrabboxError(
          "usage",
          "bad_peer_name",
          `peer name ${JSON.stringify(n)} is not a DNS label`,
        );
      }
    }
    lines.push(`${e.bindAddress} ${names.map((n) => `${n}.cbx`).join(" ")}`);
  }
  return lines;
}

/**
 * The env file on a member: one `CRABBOX_CREW_<PEER>_<PORT>=<addr>:<port>`
 * line per entry whose port is known (shell-sourceable, also with `export`).
 *
 * @example
 * ```ts
 * import { peerEnvLines } from "./peer_table.ts";
 * peerEnvLines([{ peer: "db", leaseId: "cbx-000000000002", remotePort: 5432, mode: "fallback",
 *   bindAddress: "127.0.0.1", bindPort: 40001, operatorPort: 51821 }]);
 * // ["export CRABBOX_CREW_DB_5432=127.0.0.1:40001"]
 * ```
 */
export function peerEnvLines(entries: readonly PeerEntry[]): string[] {
  return entries.filter((e) => e.bindPort > 0).map((e) =>
    `export ${envVarName(e.peer, e.remotePort)}=${e.bindAddress}:${e.bindPort}`
  );
}

/**
 * The `/proc/net/tcp` local address of a listener, e.g. `0200007F:1F90`
 * for 127.0.0.2:8080 (what the box script looks for).
 *
 * @example
 * ```ts
 * import { procNetAddress } from "./peer_table.ts";
 * procNetAddress("127.0.0.2", 8080); // "0200007F:1F90"
 * ```
 */
export function procNetAddress(address: string, port: number): string {
  const octets = address.split(".").map(Number);
  const hex = (n: number, w: number) => n.toString(16).toUpperCase().padStart(w, "0");
  return octets.reverse().map((o) => hex(o, 2)).join("") + ":" + hex(port, 4);
}

/** One member's peer table as `--json`, `status()` and `peers.json` show it. */
export interface MemberPeers {
  /** The member. */
  peer: string;
  /** Its lease id. */
  leaseId: string;
  /** Peers it reaches: name, port, where it connects, and how. */
  peers: {
    peer: string;
    role?: string;
    remotePort: number;
    address: string;
    mode: PeerMode;
    reason?: string;
  }[];
  /** Peers left out. */
  skipped: { peer: string; reason: string }[];
  /** The last failure, if any. */
  error?: string;
}

/** The {@link MemberPeers} view of one member's entries. */
export function memberPeers(
  member: Pick<MeshMember, "name" | "lease">,
  entries: readonly PeerEntry[],
  skipped: readonly { peer: string; reason: string }[],
  error?: string,
): MemberPeers {
  return {
    peer: member.name,
    leaseId: member.lease.id,
    peers: entries.map((e) => ({
      peer: e.peer,
      ...(e.role ? { role: e.role } : {}),
      remotePort: e.remotePort,
      address: `${e.bindAddress}:${e.bindPort}`,
      mode: e.mode,
      ...(e.reason ? { reason: e.reason } : {}),
    })),
    skipped: [...skipped],
    ...(error ? { error } : {}),
  };
}

/**
 * The peer tables a `--peers` connect would set up, without touching a box:
 * addresses in member order, sshd assumed to allow client-specified binds
 * (the real answer comes from probing each master), root-ness from the
 * login. A fallback's port shows as `0` (sshd allocates it).
 *
 * @example
 * ```ts
 * import { plannedPeerTables } from "./peer_table.ts";
 * import type { MeshMember } from "./forwards.ts";
 * declare const members: MeshMember[];
 * plannedPeerTables(members, []);
 * ```
 */
export function plannedPeerTables(
  members: readonly MeshMember[],
  forwards: readonly MeshForward[],
): MemberPeers[] {
  const withSsh = members.filter((m) => m.lease.ssh !== undefined);
  const octets = assignPeerOctets(new Map(), withSsh.map((m) => m.lease.id));
  return withSsh.map((m) => {
    const { entries, skipped } = peerTable(m, withSsh, forwards, octets, {
      clientSpecified: true,
      root: m.lease.ssh?.user === "root",
    });
    return memberPeers(m, entries, skipped);
  });
}

/** The plane's state on one member (kept on its tunnel). */
export interface PeerState {
  /** What the member's sshd and login allow (probed once per master). */
  caps?: MemberCaps;
  /** Forwards live on the current master, by wanted-entry key. */
  applied: Map<string, PeerEntry>;
  /** The member's peer table as last written (bind ports final). */
  entries: PeerEntry[];
  /** Peers left out, with the reason. */
  skipped: { peer: string; reason: string }[];
  /** The last failure (forwards, or writing the block), if any. */
  error?: string;
  /** Whether the block is on the box (so disconnect removes it). */
  written: boolean;
}
