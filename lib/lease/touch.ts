/**
 * Extending a lease by use: `crabbox touch`, and what `run`, `ssh` and
 * `crew connect` do on their own. Last-touched moves to now; with a TTL the
 * expiry moves to now + TTL. The labels change at the provider when it can
 * update them, and in the local claim; with a TTL, a cloud-init box's own
 * timer is told over ssh.
 *
 * @module
 */

import { parseSeconds } from "../core/duration.ts";
import type { Labels } from "../core/labels.ts";
import { readLifetime, touchedLifetime, unixNow, withLifetime } from "../core/lifetime.ts";
import { type Lease, updateClaim } from "./claims.ts";
import { listLeases, toProviderLease } from "./leases.ts";
import { runOnLease } from "./exec.ts";
import { LIFETIME_SCRIPT_PATH } from "./cloud_init_lifetime.ts";
import { type CrabboxOptions, providerFeaturesOrNone, resolveRuntime } from "../runtime.ts";

/** Options of {@link touchLease}. */
export interface TouchOptions extends CrabboxOptions {
  /** New TTL from now: a duration (`"2h"`) or seconds; 0 removes the expiry. */
  ttl?: string | number;
  /** The time of the touch (default: now). */
  now?: Date;
}

/** What a touch changed. */
export interface TouchResult {
  /** The lease with its new labels. */
  lease: Lease;
  /** Where the new labels were written: `provider` (its API) and/or `claim`. */
  updated: ("provider" | "claim")[];
  /** Whether the box's own timer got the new expiry (cloud-init boxes, with a TTL). */
  box: boolean;
}

function ttlSeconds(ttl: string | number | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  return typeof ttl === "number" ? Math.max(0, Math.floor(ttl)) : parseSeconds(ttl, "--ttl");
}

/**
 * Touch one lease: last-touched = now; with `ttl`, expiry = now + ttl.
 *
 * @example
 * ```ts
 * import { findLease, touchLease } from "@crabbox/crabbox";
 * const { lease } = await touchLease(await findLease("pr-42/api"), { ttl: "2h" });
 * ```
 */
export async function touchLease(lease: Lease, options: TouchOptions = {}): Promise<TouchResult> {
  const ttl = ttlSeconds(options.ttl);
  const rt = await resolveRuntime(options);
  const now = unixNow(options.now);
  const next = touchedLifetime(readLifetime(lease.labels), now, ttl);
  const labels: Labels = withLifetime(lease.labels, next);
  const updated: TouchResult["updated"] = [];
  const provider = await rt.provider(lease.provider);
  if (provider.updateLabels) {
    await provider.updateLabels(toProviderLease(lease), labels, rt.signal);
    updated.push("provider");
  }
  const claim = await updateClaim(rt.home, lease.id, (c) => c ? { ...c, labels } : c);
  if (claim) updated.push("claim");
  let box = false;
  if (
    ttl !== undefined && lease.ssh &&
    providerFeaturesOrNone(options, lease.provider).has("cloud-init")
  ) {
    const r = await runOnLease(
      lease,
      [LIFETIME_SCRIPT_PATH, "extend", String(next.expiresAt ?? 0)],
      options,
    ).catch((e) => ({ code: 255, stdout: "", stderr: (e as Error).message }));
    box = r.code === 0;
    if (!box) {
      rt.log(
        `${lease.id}: the box's lifetime timer was not updated (${
          r.stderr.trim() || `exit ${r.code}`
        })`,
      );
    }
  }
  return { lease: { ...lease, labels }, updated, box };
}

/**
 * Touch every active lease of a crew (their labels say `crew=<name>`).
 *
 * @example
 * ```ts
 * import { touchCrew } from "@crabbox/crabbox";
 * await touchCrew("pr-42", { ttl: "1h" });
 * ```
 */
export async function touchCrew(name: string, options: TouchOptions = {}): Promise<TouchResult[]> {
  const leases = await listLeases({ crew: name }, options);
  const out: TouchResult[] = [];
  for (const l of leases) out.push(await touchLease(l, options));
  return out;
}
