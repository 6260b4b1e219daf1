/**
 * Transport planes: how a crew member can be reached, and what reaches what.
 * Pure decisions used by `crew peers` and `doctor`.
 *
 * @module
 */

import type { Lease } from "./claims.ts";
import type { Feature } from "../../providers/types.ts";

/** How a member is reached. */
export type Transport = "tailnet" | "ssh" | "pending" | "none";

/**
 * The primary transport of a member: `tailnet` once it joined (has a tailnet
 * IPv4), `pending` while a requested join has not reported yet, `ssh` when
 * the provider has the `ssh` feature and the lease an endpoint, else `none`.
 *
 * @example
 * ```ts
 * import { memberTransport } from "./transport.ts";
 * declare const lease: import("./claims.ts").Lease;
 * memberTransport(lease, new Set(["ssh"])); // "ssh" when lease.ssh is set
 * ```
 */
export function memberTransport(lease: Lease, features: ReadonlySet<Feature>): Transport {
  if (lease.tailscale && features.has("tailscale")) {
    return lease.tailnet?.ipv4 ? "tailnet" : "pending";
  }
  if (features.has("ssh") && lease.ssh) return "ssh";
  if (features.has("ssh")) return "pending";
  return "none";
}

/**
 * The planes a provider supports, for display: `ssh` (operator → member
 * forwards), `ssh-peer` (member → member through the operator, `crew connect
 * --peers`), `tailnet`.
 */
export function providerPlanes(features: ReadonlySet<Feature>): string[] {
  const planes: string[] = [];
  if (features.has("ssh")) planes.push("ssh", "ssh-peer");
  if (features.has("tailscale")) planes.push("tailnet");
  return planes;
}

/** The `ssh://host:port` endpoint of a member (IPv6 bracketed), if any. */
export function sshEndpoint(lease: Lease): string | undefined {
  if (!lease.ssh) return undefined;
  const host = lease.ssh.host.includes(":") ? `[${lease.ssh.host}]` : lease.ssh.host;
  return `ssh://${host}:${lease.ssh.port}`;
}

/** One cell of the reachability matrix. */
export interface Reachability {
  /** Source member slug. */
  from: string;
  /** Destination member slug. */
  to: string;
  /** `ok`: directly over the tailnet; `via-operator`: only through the operator's SSH-mesh; `no`. */
  verdict: "ok" | "via-operator" | "no";
  /** How, or why not. */
  reason: string;
}

/**
 * Who reaches whom: tailnet→tailnet directly; any pair where both ends have
 * an SSH or tailnet transport "via operator SSH-mesh"; a `none`/`pending`
 * end → NO with the reason.
 *
 * @example
 * ```ts
 * import { reachabilityMatrix } from "./transport.ts";
 * reachabilityMatrix([{ slug: "a", transport: "tailnet" }, { slug: "b", transport: "ssh" }]);
 * ```
 */
export function reachabilityMatrix(
  members: readonly { slug: string; transport: Transport }[],
): Reachability[] {
  const cells: Reachability[] = [];
  for (const a of members) {
    for (const b of members) {
      if (a === b) continue;
      cells.push({ from: a.slug, to: b.slug, ...cell(a.transport, b.transport) });
    }
  }
  return cells;
}

function cell(a: Transport, b: Transport): Pick<Reachability, "verdict" | "reason"> {
  for (const [end, t] of [["source", a], ["destination", b]] as const) {
    if (t === "none") return { verdict: "no", reason: `${end} has no transport` };
    if (t === "pending") return { verdict: "no", reason: `${end} has not joined yet (pending)` };
  }
  if (a === "tailnet" && b === "tailnet") return { verdict: "ok", reason: "tailnet" };
  return { verdict: "via-operator", reason: "via operator SSH-mesh" };
}
