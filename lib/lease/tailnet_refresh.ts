/**
 * A tailnet member leased with `--no-wait` (or whose warmup was cut short)
 * has no recorded address yet: `pending`. Looking at it again reads
 * `tailscale status --json` on the box over ssh (bounded) and records the
 * facts once the join is done, so `pending` lasts only while a join is
 * genuinely under way.
 *
 * @module
 */

import { type Lease, updateClaim } from "./claims.ts";
import { parseTailscaleSelf } from "./readiness.ts";
import { runOnLease } from "./exec.ts";
import { type CrabboxOptions, resolveRuntime } from "../runtime.ts";

/** How long one refresh may take. */
export const REFRESH_TIMEOUT_MS = 10_000;

/** Whether a lease is a tailnet member without a recorded address. */
export function tailnetPending(lease: Lease): boolean {
  return lease.tailscale && !lease.tailnet?.ipv4 && lease.ssh !== undefined;
}

/**
 * Read the tailnet facts of pending members (concurrently, bounded) and
 * record them in their claims. Members that are not pending, or whose box
 * is not joined yet or cannot be reached, come back unchanged.
 *
 * @example
 * ```ts
 * import { refreshPendingTailnet } from "./tailnet_refresh.ts";
 * // const leases = await refreshPendingTailnet(await listLeases({ crew: "pr-42" }));
 * ```
 */
export async function refreshPendingTailnet(
  leases: readonly Lease[],
  options: CrabboxOptions = {},
): Promise<Lease[]> {
  if (!leases.some(tailnetPending)) return [...leases];
  const rt = await resolveRuntime(options);
  return await Promise.all(leases.map(async (lease) => {
    if (!tailnetPending(lease)) return lease;
    try {
      const r = await runOnLease(lease, ["tailscale", "status", "--json"], {
        ...options,
        network: "public",
        signal: rt.signal
          ? AbortSignal.any([rt.signal, AbortSignal.timeout(REFRESH_TIMEOUT_MS)])
          : AbortSignal.timeout(REFRESH_TIMEOUT_MS),
      });
      if (r.code !== 0) return lease;
      const facts = parseTailscaleSelf(r.stdout).facts;
      if (!facts) return lease;
      const tailnet = { ...lease.tailnet, ...facts };
      await updateClaim(rt.home, lease.id, (c) => c ? { ...c, tailnet } : c);
      return { ...lease, tailnet };
    } catch {
      return lease;
    }
  }));
}
