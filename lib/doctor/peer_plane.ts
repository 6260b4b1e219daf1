/**
 * The ssh-peer cells of doctor's member→member matrix, measured from inside
 * each member: for a crew with a live `connect --peers` (its `peers.json`),
 * every member tries a TCP connect to each peer port it was given, through
 * its own live ControlMaster. Changes nothing on the boxes.
 *
 * @module
 */

import type { Lease } from "../lease/leases.ts";
import type { Reachability } from "../lease/transport.ts";
import type { Runtime } from "../runtime.ts";
import { readJsonFile } from "../core/fs.ts";
import { meshPaths } from "../core/home.ts";
import { runBoxScript } from "../mesh/peer_box.ts";
import type { MemberPeers } from "../mesh/peer_table.ts";
import { controlForLease } from "../ssh/control.ts";

/** Where member M connects for a peer entry: `<peer>.cbx:<port>` or the fallback address. */
function targetOf(p: MemberPeers["peers"][number]): { host: string; port: number } {
  if (p.mode === "address") return { host: `${p.peer}.cbx`, port: p.remotePort };
  const i = p.address.lastIndexOf(":");
  return { host: p.address.slice(0, i), port: Number(p.address.slice(i + 1)) };
}

/**
 * The measured ssh-peer cells (`from`/`to` are slugs), or `undefined` when the
 * crew has no live ssh-peer plane. A member whose master is not up gets `no`
 * cells saying so; a box without bash or nc gets `no` with "cannot measure".
 */
export async function measurePeerPlane(
  rt: Runtime,
  crew: string,
  members: readonly Lease[],
): Promise<Reachability[] | undefined> {
  const paths = meshPaths(rt.home, crew);
  const live = await readJsonFile<{ members?: MemberPeers[] }>(paths.peers).catch(() => undefined);
  if (!Array.isArray(live?.members) || live.members.length === 0) return undefined;
  const byId = new Map(members.map((l) => [l.id, l]));
  const slugOfPeer = new Map(
    live.members.map((m) => [m.peer, byId.get(m.leaseId)?.slug ?? m.peer]),
  );
  const cells: Reachability[] = [];
  await Promise.all(live.members.map(async (m) => {
    const from = byId.get(m.leaseId);
    if (!from?.ssh) return;
    const peers = [...new Set(m.peers.map((p) => p.peer))];
    const cell = (peer: string, ok: boolean, reason: string) =>
      cells.push({
        from: from.slug,
        to: slugOfPeer.get(peer) ?? peer,
        verdict: ok ? "ok" : "no",
        reason: `ssh-peer (measured inside ${from.slug}): ${reason}`,
      });
    const control = await controlForLease(rt.home, from, { env: rt.env, process: rt.process });
    if (control.master !== "no") {
      for (const p of peers) cell(p, false, "its crew connect master is not up");
      return;
    }
    const targets = m.peers.map((p) => ({ peer: p.peer, ...targetOf(p) }));
    const r = await runBoxScript(
      {
        target: from.ssh,
        controlPath: control.path,
        knownHostsFile: paths.knownHosts,
        env: rt.env,
        process: rt.process,
      },
      "reach",
      targets.map((t) => `${t.host} ${t.port}\n`).join(""),
      { timeoutS: 10 },
    ).catch((e) => ({ code: 255, stdout: "", stderr: (e as Error).message }));
    const seen = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
      const [host, port, verdict] = line.trim().split(" ");
      if (host && port && verdict) seen.set(`${host}:${port}`, verdict);
    }
    for (const peer of peers) {
      const mine = targets.filter((t) => t.peer === peer);
      const results = mine.map((t) =>
        `${t.host}:${t.port} ${seen.get(`${t.host}:${t.port}`) ?? "?"}`
      );
      const ok = r.code === 0 && mine.every((t) => seen.get(`${t.host}:${t.port}`) === "ok");
      cell(peer, ok, r.code === 0 ? results.join(", ") : `cannot measure: ${r.stderr.trim()}`);
    }
  }));
  return cells;
}
