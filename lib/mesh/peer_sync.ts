/**
 * The `ssh-peer` plane of a running mesh (`crew connect --peers`): bring each
 * member's `-R` forwards and hosts block in line with the current members
 * (first connect, a member joining or leaving, a member's ssh restarting),
 * and remove every block again on disconnect.
 *
 * @module
 */

import type { Ctx, Tunnel } from "./tunnel.ts";
import {
  assignPeerOctets,
  type MemberPeers,
  memberPeers,
  type PeerEntry,
  peerEnvLines,
  peerHostsLines,
  peerTable,
  PROBE_OCTET,
  procNetAddress,
  remoteForwardSpec,
} from "./peer_table.ts";
import { applyInput, masterRemoteForward, type MemberLink, runBoxScript } from "./peer_box.ts";
import { sortForwards } from "./plan.ts";

/** The plane of one mesh: stable addresses and one sync at a time. */
export interface PeerPlane {
  /** `127.0.0.<n>` octet per lease id. */
  octets: Map<string, number>;
  /** The running sync (syncs are serialized). */
  queue: Promise<void>;
}

/** A new plane. */
export function newPeerPlane(): PeerPlane {
  return { octets: new Map(), queue: Promise.resolve() };
}

/** How to reach a tunnel's member: through its master, or (`fresh`) a new connection. */
export function memberLink(ctx: Ctx, t: Tunnel, fresh = false): MemberLink {
  return {
    target: t.member.lease.ssh!,
    controlPath: fresh ? undefined : t.controlPath,
    knownHostsFile: t.knownHostsFile,
    env: ctx.env,
    process: ctx.rt.process,
  };
}

function entryKey(e: PeerEntry): string {
  return `${e.leaseId}:${e.remotePort}:${e.operatorPort}:${e.mode}:${e.bindAddress}`;
}

/** Where a member's sshd binds a `-R` that names an address (see {@link probeGatewayPorts}). */
export type GatewayPortsMode = "clientspecified" | "loopback" | "wildcard";

/**
 * Where does the member's sshd bind a `-R` forward that names an address?
 * Ask for `127.0.0.254:0` (a port sshd picks, aimed at the operator's closed
 * port 9), look in the box's `/proc/net/tcp` whether it listens exactly there
 * (`GatewayPorts clientspecified`) or on every interface (`yes`; else the
 * default `no`: loopback), then cancel it.
 */
export async function probeGatewayPorts(link: MemberLink): Promise<GatewayPortsMode> {
  const spec = `127.0.0.${PROBE_OCTET}:0:127.0.0.1:9`;
  let port: number | undefined;
  try {
    [port] = await masterRemoteForward(link, "forward", [spec]);
  } catch {
    return "loopback";
  }
  try {
    if (!port) return "loopback";
    const at = async (address: string) =>
      (await runBoxScript(link, "listening", procNetAddress(address, port!) + "\n")).stdout
        .trim() === "yes";
    if (await at(`127.0.0.${PROBE_OCTET}`)) return "clientspecified";
    if (await at("0.0.0.0")) return "wildcard";
    return "loopback";
  } finally {
    await masterRemoteForward(link, "cancel", [spec]);
  }
}

/** Add `entries` on the master (one call; one by one if that fails), with their bind ports. */
async function addForwards(
  link: MemberLink,
  entries: PeerEntry[],
): Promise<{ added: PeerEntry[]; failed: { entry: PeerEntry; error: string }[] }> {
  const withPort = (e: PeerEntry, port?: number): PeerEntry =>
    e.mode === "fallback" ? { ...e, bindPort: port ?? 0 } : e;
  try {
    const ports = await masterRemoteForward(link, "forward", entries.map(remoteForwardSpec));
    let i = 0;
    return {
      added: entries.map((e) => withPort(e, e.mode === "fallback" ? ports[i++] : undefined)),
      failed: [],
    };
  } catch {
    const added: PeerEntry[] = [];
    const failed: { entry: PeerEntry; error: string }[] = [];
    for (const e of entries) {
      try {
        const [port] = await masterRemoteForward(link, "forward", [remoteForwardSpec(e)]);
        added.push(withPort(e, port));
      } catch (err) {
        failed.push({ entry: e, error: (err as Error).message });
      }
    }
    return { added, failed };
  }
}

/**
 * Bring one member in line: probe its sshd once per master, compute its peer
 * table, cancel forwards no longer wanted, add the missing ones (an address
 * taken on the box falls back to an allocated `127.0.0.1` port), then write
 * the hosts block and env file. Failures are recorded in the member's state
 * and logged, never thrown: the operator-side mesh stays up.
 */
export async function syncMemberPeers(
  ctx: Ctx,
  tunnels: readonly Tunnel[],
  plane: PeerPlane,
  t: Tunnel,
): Promise<void> {
  const state = t.peer;
  if (!state || t.stopping || t.state !== "up" || t.exitStatus || !t.member.lease.ssh) return;
  const link = memberLink(ctx, t);
  const log = (m: string) => ctx.options.log?.(`crew "${t.crew}": ${t.member.name}: ${m}`);
  try {
    if (!state.caps) {
      const mode = await probeGatewayPorts(link);
      state.caps = {
        clientSpecified: mode === "clientspecified",
        root: t.member.lease.ssh.user === "root",
        wildcard: mode === "wildcard",
      };
      if (state.caps.wildcard) {
        log(
          "sshd has GatewayPorts yes (a -R forward would listen on every interface): no ssh-peer forwards on this member",
        );
      } else if (!state.caps.clientSpecified) {
        log(
          "sshd lacks GatewayPorts clientspecified: peers are reachable only as 127.0.0.1:<port> (see CRABBOX_CREW_* in /run/crabbox/crew.env), not by <peer>.cbx",
        );
      }
    }
    const forwards = sortForwards(tunnels.flatMap((x) => x.forwards).map((f) => ({ ...f })));
    const { entries, skipped } = peerTable(
      t.member,
      tunnels.map((x) => x.member),
      forwards,
      plane.octets,
      state.caps,
    );
    state.skipped = skipped;
    const want = new Map(entries.map((e) => [entryKey(e), e]));
    const stale = [...state.applied].filter(([k]) => !want.has(k));
    await masterRemoteForward(link, "cancel", stale.map(([, e]) => remoteForwardSpec(e)));
    for (const [k] of stale) state.applied.delete(k);
    const missing = [...want].filter(([k]) => !state.applied.has(k));
    const { added, failed } = await addForwards(link, missing.map(([, e]) => e));
    for (const e of added) state.applied.set(entryKey(e), e);
    const errors: string[] = [];
    // An address taken on the member (a service of its own on 127.0.0.<n>:<port>): fall back.
    const fallbacks = failed.filter((f) => f.entry.mode === "address").map((f): PeerEntry => ({
      ...f.entry,
      mode: "fallback",
      bindAddress: "127.0.0.1",
      bindPort: 0,
      reason: `${f.entry.bindAddress}:${f.entry.remotePort} could not be bound on the member`,
    }));
    const second = await addForwards(link, fallbacks);
    for (const e of second.added) {
      state.applied.set(
        entryKey({ ...e, mode: "address", bindAddress: fallbackOrigin(e, entries) }),
        e,
      );
    }
    for (const f of [...failed.filter((x) => x.entry.mode === "fallback"), ...second.failed]) {
      errors.push(`${f.entry.peer}:${f.entry.remotePort}: ${f.error}`);
    }
    state.entries = [...want.keys()].map((k) => state.applied.get(k)).filter((e): e is PeerEntry =>
      e !== undefined
    );
    const r = await runBoxScript(
      link,
      "apply",
      applyInput(peerHostsLines(state.entries), peerEnvLines(state.entries)),
    );
    if (r.code !== 0) {
      errors.push(
        `hosts block and env not written: ${
          r.stderr.trim().split("\n").at(-1) || `exit ${r.code}`
        }${state.caps.root ? "" : " (the login is not root: it needs passwordless sudo)"}`,
      );
    } else {
      state.written = true;
    }
    state.error = errors.length ? errors.join("; ") : undefined;
    if (state.error) log(`ssh-peer: ${state.error}`);
  } catch (e) {
    state.error = (e as Error).message;
    log(`ssh-peer: ${state.error}`);
  }
}

/** The wanted address of an entry that fell back (its key stays the wanted one). */
function fallbackOrigin(e: PeerEntry, wanted: readonly PeerEntry[]): string {
  return wanted.find((w) =>
    w.leaseId === e.leaseId && w.remotePort === e.remotePort && w.mode === "address"
  )?.bindAddress ?? e.bindAddress;
}

/**
 * Sync every member (in parallel), after giving new members an address.
 * Serialized with earlier syncs of the same plane.
 */
export function syncAllPeers(
  ctx: Ctx,
  tunnels: readonly Tunnel[],
  plane: PeerPlane,
): Promise<void> {
  const run = async () => {
    for (const t of tunnels) {
      t.peer ??= { applied: new Map(), entries: [], skipped: [], written: false };
    }
    assignPeerOctets(plane.octets, tunnels.map((t) => t.member.lease.id));
    await Promise.all(tunnels.map((t) => syncMemberPeers(ctx, tunnels, plane, t)));
  };
  plane.queue = plane.queue.then(run, run);
  return plane.queue;
}

/** A member's ssh restarted: its master has no forwards any more; sync it again. */
export function resyncRestarted(
  ctx: Ctx,
  tunnels: readonly Tunnel[],
  plane: PeerPlane,
  t: Tunnel,
): Promise<void> {
  if (t.peer) {
    t.peer.applied = new Map();
    t.peer.caps = undefined;
  }
  const run = () => syncMemberPeers(ctx, tunnels, plane, t);
  plane.queue = plane.queue.then(run, run);
  return plane.queue;
}

/**
 * Remove the block and env file from every member that got one: through its
 * master when it is up, else over a fresh connection (short timeout).
 * Failures are logged; resolves when every member answered or gave up.
 */
export async function removePeerBlocks(ctx: Ctx, tunnels: readonly Tunnel[]): Promise<void> {
  await Promise.all(tunnels.map(async (t) => {
    if (!t.peer?.written || !t.member.lease.ssh) return;
    const up = t.state === "up" && !t.exitStatus;
    const r = await runBoxScript(memberLink(ctx, t, !up), "remove", "", { timeoutS: 5 })
      .catch((e) => ({ code: 255, stdout: "", stderr: (e as Error).message }));
    if (r.code === 0) {
      t.peer.written = false;
    } else {
      ctx.options.log?.(
        `crew "${t.crew}": ${t.member.name}: could not remove the ssh-peer hosts block: ${r.stderr.trim()}`,
      );
    }
  }));
}

/** The peer tables of a mesh's members. */
export function memberPeerTables(tunnels: readonly Tunnel[]): MemberPeers[] {
  return tunnels.filter((t) => t.peer).map((t) =>
    memberPeers(t.member, t.peer!.entries, t.peer!.skipped, t.peer!.error)
  );
}
