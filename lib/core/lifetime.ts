/**
 * A lease's lifetime as its labels record it: an absolute expiry, an idle
 * timeout and the last time it was used (unix seconds, plain digits, so valid
 * label values everywhere), and the pure decisions over them: expired or not,
 * what `list` shows, what a touch changes.
 *
 * @module
 */

import { formatDuration } from "./duration.ts";

/** Lifetime label keys. */
export const LifetimeLabel = {
  expiresAt: "crabbox-expires",
  idleTimeout: "crabbox-idle",
  touchedAt: "crabbox-touched",
} as const;

/** What the lifetime labels say; a missing field means "none". */
export interface Lifetime {
  /** Absolute expiry, unix seconds. */
  expiresAt?: number;
  /** Idle timeout in seconds. */
  idleTimeout?: number;
  /** Last time the lease was used (created, touched, run, ssh, connect), unix seconds. */
  touchedAt?: number;
}

/** Why a lease is expired. */
export type ExpiryReason = "ttl" | "idle";

/** The verdict of {@link expiryOf}. */
export interface Expiry {
  /** The earliest deadline (TTL or idle), unix seconds; undefined when neither is set. */
  deadline?: number;
  /** Which deadline that is. */
  reason?: ExpiryReason;
  /** True when `now` is at or past the deadline. */
  expired: boolean;
}

const DIGITS = /^[0-9]{1,12}$/;

function positive(n: number | undefined): number | undefined {
  return n !== undefined && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The lifetime labels for `l` (fields that are unset or 0 are left out).
 *
 * @example
 * ```ts
 * import { lifetimeLabels } from "./lifetime.ts";
 * lifetimeLabels({ expiresAt: 1767225600, idleTimeout: 1800, touchedAt: 1767220000 });
 * // { "crabbox-expires": "1767225600", "crabbox-idle": "1800", "crabbox-touched": "1767220000" }
 * ```
 */
export function lifetimeLabels(l: Lifetime): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["expiresAt", "idleTimeout", "touchedAt"] as const) {
    const v = positive(l[key]);
    if (v !== undefined) out[LifetimeLabel[key]] = String(v);
  }
  return out;
}

/**
 * Read the lifetime labels back; anything but plain digits is ignored.
 *
 * @example
 * ```ts
 * import { readLifetime } from "./lifetime.ts";
 * readLifetime({ "crabbox-idle": "1800", "crabbox-expires": "soon" }); // { idleTimeout: 1800 }
 * ```
 */
export function readLifetime(labels: Record<string, string> | undefined): Lifetime {
  const out: Lifetime = {};
  for (const key of ["expiresAt", "idleTimeout", "touchedAt"] as const) {
    const raw = labels?.[LifetimeLabel[key]];
    if (raw !== undefined && DIGITS.test(raw)) {
      const v = positive(Number(raw));
      if (v !== undefined) out[key] = v;
    }
  }
  return out;
}

/**
 * Is the lease expired at `now` (unix seconds)? Past its TTL, or idle for its
 * idle timeout since it was last touched (`createdAt` when never touched).
 *
 * @example
 * ```ts
 * import { expiryOf } from "./lifetime.ts";
 * expiryOf({ expiresAt: 1000, idleTimeout: 60, touchedAt: 900 }, 961);
 * // { deadline: 960, reason: "idle", expired: true }
 * ```
 */
export function expiryOf(l: Lifetime, now: number, createdAt?: number): Expiry {
  const ttl = positive(l.expiresAt);
  const idle = positive(l.idleTimeout);
  const since = positive(l.touchedAt) ?? positive(createdAt);
  const idleDeadline = idle !== undefined && since !== undefined ? since + idle : undefined;
  let deadline: number | undefined;
  let reason: ExpiryReason | undefined;
  if (ttl !== undefined) [deadline, reason] = [ttl, "ttl"];
  if (idleDeadline !== undefined && (deadline === undefined || idleDeadline < deadline)) {
    [deadline, reason] = [idleDeadline, "idle"];
  }
  return { deadline, reason, expired: deadline !== undefined && now >= deadline };
}

/**
 * One short phrase for `list`/`status`: `expires in 42m`, `idle in 12m`
 * (the idle deadline comes first), `expired 3m ago (ttl)`, or `-`.
 *
 * @example
 * ```ts
 * import { describeLifetime } from "./lifetime.ts";
 * describeLifetime({ expiresAt: 1000 + 42 * 60 }, 1000); // "expires in 42m"
 * ```
 */
export function describeLifetime(l: Lifetime, now: number, createdAt?: number): string {
  const e = expiryOf(l, now, createdAt);
  if (e.deadline === undefined) return "-";
  if (e.expired) return `expired ${formatDuration(now - e.deadline)} ago (${e.reason})`;
  return `${e.reason === "ttl" ? "expires" : "idle"} in ${formatDuration(e.deadline - now)}`;
}

/**
 * The lifetime after a touch at `now`: last-touched is `now`; with `ttl`
 * (seconds) the expiry becomes `now + ttl` (0 removes it).
 *
 * @example
 * ```ts
 * import { touchedLifetime } from "./lifetime.ts";
 * touchedLifetime({ expiresAt: 1100, idleTimeout: 60 }, 1000, 3600);
 * // { expiresAt: 4600, idleTimeout: 60, touchedAt: 1000 }
 * ```
 */
export function touchedLifetime(l: Lifetime, now: number, ttl?: number): Lifetime {
  const next: Lifetime = { ...l, touchedAt: now };
  if (ttl !== undefined) next.expiresAt = ttl > 0 ? now + ttl : undefined;
  if (next.expiresAt === undefined) delete next.expiresAt;
  return next;
}

/**
 * Replace the lifetime labels in `labels` with those of `l` (other labels kept).
 *
 * @example
 * ```ts
 * import { withLifetime } from "./lifetime.ts";
 * withLifetime({ crabbox: "true", "crabbox-expires": "5" }, { touchedAt: 9 });
 * // { crabbox: "true", "crabbox-touched": "9" }
 * ```
 */
export function withLifetime(
  labels: Record<string, string>,
  l: Lifetime,
): Record<string, string> {
  const out = { ...labels };
  for (const key of Object.values(LifetimeLabel)) delete out[key];
  return { ...out, ...lifetimeLabels(l) };
}

/** Unix seconds now (or of `date`). */
export function unixNow(date: Date = new Date()): number {
  return Math.floor(date.getTime() / 1000);
}

/**
 * `base` with the lifetime labels of whichever of `base` and `other` was
 * touched last (a claim and what the provider lists can disagree when the
 * lease was touched from another machine).
 *
 * @example
 * ```ts
 * import { latestLifetime } from "./lifetime.ts";
 * latestLifetime({ slug: "a", "crabbox-touched": "5" }, { "crabbox-touched": "9" });
 * // { slug: "a", "crabbox-touched": "9" }
 * ```
 */
export function latestLifetime(
  base: Record<string, string>,
  other: Record<string, string> | undefined,
): Record<string, string> {
  if (!other) return base;
  const a = readLifetime(base);
  const b = readLifetime(other);
  return (b.touchedAt ?? 0) > (a.touchedAt ?? 0) ? withLifetime(base, b) : base;
}
