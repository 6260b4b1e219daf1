/**
 * Expiring SSH targets: a provider whose target carries a short-lived
 * credential (e.g. a gateway token in its user file) renews it through
 * `Provider.refreshSsh` shortly before `expiresAt`; the claim keeps the new
 * target (which names files, never the credential itself).
 *
 * @module
 */

import { type Lease, updateClaim } from "./claims.ts";
import type { Runtime } from "../runtime.ts";
import type { SshTarget } from "../ssh/args.ts";

/** Renew this long before a target expires. */
export const SSH_REFRESH_MARGIN_MS = 60_000;

/**
 * Whether a target must be renewed now.
 *
 * @example
 * ```ts
 * import { sshTargetExpired } from "./refresh.ts";
 * sshTargetExpired({ host: "h", port: 22, user: "", expiresAt: "2000-01-01T00:00:00Z" }, Date.now()); // true
 * ```
 */
export function sshTargetExpired(target: SshTarget | undefined, nowMs: number): boolean {
  if (!target?.expiresAt) return false;
  const at = Date.parse(target.expiresAt);
  return Number.isNaN(at) || at - nowMs <= SSH_REFRESH_MARGIN_MS;
}

/**
 * The lease with a usable SSH target: unchanged unless its target expired
 * and the provider can renew it; then the renewed target is saved in the
 * claim and returned on a copy of the lease.
 */
export async function withFreshSsh(lease: Lease, rt: Runtime, nowMs = Date.now()): Promise<Lease> {
  if (!sshTargetExpired(lease.ssh, nowMs)) return lease;
  const provider = await rt.provider(lease.provider);
  if (!provider.refreshSsh) return lease;
  const ssh = await provider.refreshSsh({
    providerId: lease.providerId,
    leaseId: lease.id,
    labels: lease.labels,
    state: "running",
    ssh: lease.ssh,
    data: lease.data,
  }, rt.signal);
  const fresh = { ...lease, ssh };
  await updateClaim(rt.home, lease.id, (l) => l ? { ...l, ssh } : l);
  return fresh;
}
