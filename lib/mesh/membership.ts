/**
 * A running mesh following its crew: members that join (a new `warmup
 * --crew`) get a tunnel, members that leave (a `release`) lose theirs, and
 * the caller is told so the ssh-peer plane can update every other member.
 *
 * @module
 */

import { sleep } from "../core/async.ts";
import { loadClaim } from "../lease/claims.ts";
import { allocateForwards, type MeshMember, selectMembers, shortLeaseId } from "./forwards.ts";
import { type ConnectOptions, crewLeases, hasSshFeature, type MeshPlan } from "./plan.ts";
import { type Ctx, firstConnect, makeTunnels, stopChild, type Tunnel } from "./tunnel.ts";

/** What {@link followMembers} works on. */
export interface Membership {
  /** The shared context of the mesh. */
  ctx: Ctx;
  /** The mesh's tunnels (changed in place). */
  tunnels: Tunnel[];
  /** The mesh's plan (crew, paths). */
  plan: Pick<MeshPlan, "crew" | "paths">;
  /** Start supervising a tunnel that just came up. */
  supervise: (t: Tunnel) => void;
  /** Called after members joined or left (rewrite files, resync peers). */
  changed: (joined: Tunnel[], left: Tunnel[]) => Promise<void>;
  /** Tunnels of joining members still coming up (close stops them too). */
  joining: Set<Tunnel>;
  /** When each member first went missing from the crew's list (by lease id). */
  missingSince: Map<string, number>;
}

/** A member missing from the list this long has left even if its claim is still here. */
export const LEFT_AFTER_MS = 60_000;

/** A name for a joining member that no running tunnel has. */
function freshName(m: MeshMember, tunnels: readonly Tunnel[]): string {
  const taken = new Set(tunnels.map((t) => t.member.name));
  if (!taken.has(m.name)) return m.name;
  const base = `${m.name}-${shortLeaseId(m.lease.id)}`;
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}

/**
 * One look at the crew: stop the tunnels of members that are gone, start
 * tunnels for new members with an SSH endpoint (their forwards get free
 * local ports; one that does not come up is tried again next time), then
 * report the change. Returns whether anything changed.
 */
export async function refreshMembers(m: Membership, options: ConnectOptions): Promise<boolean> {
  const { ctx, tunnels, plan } = m;
  const leases = await crewLeases(plan.crew, options);
  const { members } = selectMembers(leases, hasSshFeature(options));
  const present = new Set(members.map((x) => x.lease.id));
  // Missing from the list is not enough: a box whose sshd restarts is listed as not running for
  // a moment. A member has left once its claim is gone (a release), or after LEFT_AFTER_MS missing.
  const now = Date.now();
  const left: Tunnel[] = [];
  for (const t of tunnels) {
    const id = t.member.lease.id;
    if (present.has(id)) {
      m.missingSince.delete(id);
      continue;
    }
    const since = m.missingSince.get(id) ?? now;
    m.missingSince.set(id, since);
    if (!(await loadClaim(ctx.rt.home, id)) || now - since >= LEFT_AFTER_MS) left.push(t);
  }
  for (const t of left) {
    t.stopping = true;
    await stopChild(t);
    if (t.state !== "stopped") ctx.emit(t, "stopped", { reason: "left the crew" });
    tunnels.splice(tunnels.indexOf(t), 1);
    m.missingSince.delete(t.member.lease.id);
    for (const f of t.forwards) ctx.taken.delete(f.localPort);
  }
  const known = new Set(tunnels.map((t) => t.member.lease.id));
  const joined: Tunnel[] = [];
  for (const member of members) {
    if (known.has(member.lease.id) || !member.lease.ssh) continue;
    const named = { ...member, name: freshName(member, tunnels) };
    const forwards = allocateForwards([named], ctx.isFree, ctx.range, ctx.taken);
    for (const f of forwards) ctx.taken.add(f.localPort);
    const [t] = await makeTunnels(ctx.rt, { ...plan, members: [named], forwards }, true);
    m.joining.add(t);
    try {
      await firstConnect(ctx, t, Date.now() + (options.readyTimeoutMs ?? 60_000));
      if (t.stopping) throw new Error("the mesh is closing");
    } catch (e) {
      await stopChild(t);
      for (const f of forwards) ctx.taken.delete(f.localPort);
      if (t.stopping) return false;
      options.log?.(
        `crew "${plan.crew}": ${named.name} joined but cannot be reached yet: ${
          (e as Error).message
        }`,
      );
      continue;
    } finally {
      m.joining.delete(t);
    }
    tunnels.push(t);
    m.supervise(t);
    joined.push(t);
  }
  if (joined.length === 0 && left.length === 0) return false;
  await m.changed(joined, left);
  return true;
}

/**
 * Look at the crew every `everyMs` until `signal` aborts (see
 * {@link refreshMembers}); a failed look is logged and retried next time.
 */
export async function followMembers(
  m: Membership,
  options: ConnectOptions,
  everyMs: number,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    await sleep(everyMs, signal, { resolveOnAbort: true });
    if (signal.aborted) break;
    try {
      await refreshMembers(m, options);
    } catch (e) {
      if (!signal.aborted) {
        options.log?.(`crew "${m.plan.crew}": looking for members failed: ${(e as Error).message}`);
      }
    }
  }
}
