/**
 * The local claim store: one JSON file per lease under
 * `$CRABBOX_HOME/claims/<lease-id>.json`, written atomically under a lock.
 *
 * @module
 */

import type { Labels } from "../core/mod.ts";
import type { SshTarget, TailnetFacts } from "../../providers/mod.ts";
import {
  CrabboxError,
  isLeaseId,
  joinPath,
  readJsonFile,
  removeFile,
  withLock,
  writeJsonAtomic,
} from "../core/mod.ts";

/** Lifecycle state of a lease as crabbox records it. */
export type LeaseState = "creating" | "active" | "releasing" | "failed";

/**
 * One leased box. This is also the claim record stored on disk.
 */
export interface Lease {
  /** Lease id, `cbx-<12 hex>`. */
  id: string;
  /** Provider name. */
  provider: string;
  /** The provider's id for the resource. */
  providerId: string;
  /** Normalized crew name, if the lease is in a crew. */
  crew?: string;
  /** Normalized slug. */
  slug: string;
  /** Role (slug without a trailing `-<digits>`). */
  role: string;
  /** Owner segment. */
  owner: string;
  /** Reserved labels. */
  labels: Labels;
  /** Exposed ports, sorted. */
  expose: number[];
  /** SSH endpoint, when known. */
  ssh?: SshTarget;
  /** Whether the lease was requested with `--tailscale`. */
  tailscale: boolean;
  /** Tailnet facts once known (never an auth key). */
  tailnet?: TailnetFacts;
  /** Creation time, ISO 8601. */
  createdAt: string;
  /** Lifecycle state. */
  state: LeaseState;
  /** Provider-specific facts (no secrets). */
  data?: Record<string, unknown>;
}

/** Path of the claims directory. */
export function claimsDir(home: string): string {
  return joinPath(home, "claims");
}

function claimPath(home: string, id: string): string {
  if (!isLeaseId(id)) {
    throw new CrabboxError("usage", "bad_lease_id", `${JSON.stringify(id)} is not a lease id`);
  }
  return joinPath(claimsDir(home), `${id}.json`);
}

function lockPath(home: string): string {
  return joinPath(claimsDir(home), ".lock");
}

/**
 * Save (create or replace) a claim, atomically and under the store lock.
 *
 * @example
 * ```ts
 * import { saveClaim, type Lease } from "./claims.ts";
 * declare const lease: Lease;
 * await saveClaim("/tmp/cbx", lease);
 * ```
 */
export function saveClaim(home: string, lease: Lease): Promise<void> {
  const path = claimPath(home, lease.id);
  return withLock(lockPath(home), () => writeJsonAtomic(path, lease));
}

/**
 * Read-modify-write one claim under the store lock. `update` returns the new
 * record, or `undefined` to delete the claim.
 */
export function updateClaim(
  home: string,
  id: string,
  update: (current: Lease | undefined) => Lease | undefined,
): Promise<Lease | undefined> {
  const path = claimPath(home, id);
  return withLock(lockPath(home), async () => {
    const next = update(await readJsonFile<Lease>(path));
    if (next) await writeJsonAtomic(path, next);
    else await removeFile(path);
    return next;
  });
}

/**
 * Save a new claim in state `creating`, refusing a slug that an unreleased
 * lease of the same crew already uses. Check and write happen under one
 * lock, so concurrent processes cannot both take a slug.
 */
export function reserveClaim(home: string, lease: Lease): Promise<void> {
  const path = claimPath(home, lease.id);
  return withLock(lockPath(home), async () => {
    if (lease.crew !== undefined) {
      const taken = (await listClaims(home)).find((c) =>
        c.crew === lease.crew && c.slug === lease.slug && c.state !== "failed"
      );
      if (taken) {
        throw new CrabboxError(
          "usage",
          "slug_taken",
          `crew ${lease.crew} already has a member ${lease.slug} (${taken.id})`,
          { hint: "pick another --slug or release that lease first" },
        );
      }
    }
    await writeJsonAtomic(path, lease);
  });
}

/** Load one claim; `undefined` when there is none. */
export async function loadClaim(home: string, id: string): Promise<Lease | undefined> {
  return await readJsonFile<Lease>(claimPath(home, id));
}

/** Remove a claim; a missing claim is not an error. */
export function removeClaim(home: string, id: string): Promise<void> {
  const path = claimPath(home, id);
  return withLock(lockPath(home), () => removeFile(path));
}

/**
 * Every claim in the store, sorted by crew, slug, then id. Unreadable files
 * are skipped and reported through `onCorrupt`.
 */
export async function listClaims(
  home: string,
  onCorrupt: (path: string) => void = () => {},
): Promise<Lease[]> {
  const dir = claimsDir(home);
  const out: Lease[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !/^cbx-[0-9a-f]{12}\.json$/.test(entry.name)) continue;
      const path = joinPath(dir, entry.name);
      try {
        const lease = await readJsonFile<Lease>(path);
        if (lease && typeof lease.id === "string") out.push(lease);
      } catch {
        onCorrupt(path);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort(compareLeases);
}

/** Order leases by crew, slug, then id. */
export function compareLeases(a: Lease, b: Lease): number {
  return (a.crew ?? "").localeCompare(b.crew ?? "") || a.slug.localeCompare(b.slug) ||
    a.id.localeCompare(b.id);
}
