/**
 * The sweep: leases of this operator that are past their TTL, or idle past
 * their idle timeout, by their labels — found across providers and released.
 * Another owner's leases are never touched.
 *
 * @module
 */

import { LabelKey } from "../core/labels.ts";
import { expiryOf, type ExpiryReason, readLifetime, unixNow } from "../core/lifetime.ts";
import { ownerFor } from "../core/names.ts";
import type { Lease } from "./claims.ts";
import { listLeases } from "./leases.ts";
import { releaseLeases } from "./release.ts";
import { type CrabboxOptions, resolveRuntime } from "../runtime.ts";

/** One expired lease. */
export interface ExpiredLease {
  /** The lease. */
  lease: Lease;
  /** Past its TTL, or idle past its timeout. */
  reason: ExpiryReason;
  /** When it expired (unix seconds). */
  deadline: number;
}

/** Options of {@link cleanupExpired}. */
export interface CleanupOptions extends CrabboxOptions {
  /** Only this provider (default: every provider with credentials, `local`, and those of claims). */
  provider?: string;
  /** Find and report only; release nothing. */
  dryRun?: boolean;
  /** The time to judge by (default: now). */
  now?: Date;
}

/** What {@link cleanupExpired} found and did. */
export interface CleanupResult {
  /** The owner whose leases were considered. */
  owner: string;
  /** True when nothing was released on purpose. */
  dryRun: boolean;
  /** Expired leases of this owner. */
  expired: ExpiredLease[];
  /** Lease ids released. */
  released: string[];
  /** Leases that could not be released. */
  failed: { id: string; error: string }[];
}

/**
 * Expired leases of this owner, by their labels at `now`.
 *
 * @example
 * ```ts
 * import { findExpiredLeases } from "@crabbox/crabbox";
 * for (const e of await findExpiredLeases()) console.log(e.lease.id, e.reason);
 * ```
 */
export async function findExpiredLeases(options: CleanupOptions = {}): Promise<ExpiredLease[]> {
  const rt = await resolveRuntime(options);
  const owner = await ownerFor({ env: rt.env });
  const now = unixNow(options.now);
  const leases = await listLeases({ provider: options.provider }, options);
  const out: ExpiredLease[] = [];
  for (const lease of leases) {
    // The owner label decides: a lease without one is nobody's to sweep.
    if (lease.labels[LabelKey.owner] !== owner) continue;
    // Being created or released right now: not the sweep's to take.
    if (lease.state === "creating" || lease.state === "releasing") continue;
    const created = Math.floor(Date.parse(lease.createdAt) / 1000);
    const e = expiryOf(readLifetime(lease.labels), now, Number.isFinite(created) ? created : 0);
    if (e.expired && e.deadline !== undefined && e.reason) {
      out.push({ lease, reason: e.reason, deadline: e.deadline });
    }
  }
  return out;
}

/**
 * Release this owner's expired leases (or only report them with `dryRun`).
 *
 * @example
 * ```ts
 * import { cleanupExpired } from "@crabbox/crabbox";
 * const { expired, released } = await cleanupExpired({ dryRun: true });
 * ```
 */
export async function cleanupExpired(options: CleanupOptions = {}): Promise<CleanupResult> {
  const rt = await resolveRuntime(options);
  const owner = await ownerFor({ env: rt.env });
  const expired = await findExpiredLeases(options);
  const dryRun = options.dryRun ?? false;
  if (dryRun || expired.length === 0) {
    return { owner, dryRun, expired, released: [], failed: [] };
  }
  const r = await releaseLeases(rt, expired.map((e) => e.lease));
  return { owner, dryRun, expired, ...r };
}
