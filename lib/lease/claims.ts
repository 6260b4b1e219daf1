/**
 * The local claim store: one JSON file per lease under
 * `$CRABBOX_HOME/claims/<lease-id>.json`, written atomically under a lock.
 *
 * @module
 */

import type { Labels } from "../core/labels.ts";
import type { SshTarget, TailnetFacts } from "../../providers/types.ts";
import { CrabboxError } from "../core/errors.ts";
import { joinPath, readJsonFile, removeFile, withLock, writeJsonAtomic } from "../core/fs.ts";
import { isLeaseId } from "../core/names.ts";
import { compareText } from "../core/order.ts";

/**
 * Lifecycle state of a lease. A claim records `creating`, `active` or
 * `releasing`; listing judges the true state against the provider and the
 * creating process: `failed` (its create died half-way: the creator is gone),
 * `unreachable` (the provider has the box but it is not running, e.g. its
 * sshd died) and `orphaned` (only one side is left: a claim whose box the
 * provider no longer lists, or a box that is not running and that no claim
 * here describes). Every state stays listed and releasable.
 */
export type LeaseState =
  | "creating"
  | "active"
  | "releasing"
  | "failed"
  | "unreachable"
  | "orphaned";

const LEASE_STATES: readonly LeaseState[] = [
  "creating",
  "active",
  "releasing",
  "failed",
  "unreachable",
  "orphaned",
];

/** The process that creates a lease: pid plus kernel start time. */
export interface CreatorRef {
  /** Process id. */
  pid: number;
  /** Start time as recorded by `lib/process` (empty when unknown). */
  startTime: string;
}

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
  /** The process creating the lease (recorded while `creating`). */
  creator?: CreatorRef;
  /** Provider-specific facts (no secrets). */
  data?: Record<string, unknown>;
}

/** A claim file that could not be used, and why. */
export interface BadClaim {
  /** Path of the claim file. */
  path: string;
  /** Lease id from the file name. */
  id: string;
  /** Crew from the file, when it could be read. */
  crew?: string;
  /** Provider from the file, when it could be read. */
  provider?: string;
  /** What is wrong with it (one line). */
  reason: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Check a parsed claim record field by field; returns the lease, or the first
 * problem as one line. Pure.
 *
 * @example
 * ```ts
 * import { validateClaim } from "./claims.ts";
 * validateClaim({ id: "cbx-0123456789ab", expose: "80" }, "cbx-0123456789ab"); // "…"
 * ```
 */
export function validateClaim(value: unknown, id: string): Lease | string {
  if (!isObject(value)) return "not a JSON object";
  const str = (k: string) => typeof value[k] === "string";
  if (value.id !== id) return `id ${JSON.stringify(value.id)} does not match the file name`;
  for (const k of ["provider", "providerId", "slug", "owner", "createdAt"]) {
    if (!str(k)) return `${k} is not a string`;
  }
  if (value.role !== undefined && !str("role")) return "role is not a string";
  if (value.crew !== undefined && value.crew !== null && !str("crew")) {
    return "crew is not a string";
  }
  if (!isObject(value.labels) || Object.values(value.labels).some((v) => typeof v !== "string")) {
    return "labels is not an object of strings";
  }
  if (
    !Array.isArray(value.expose) ||
    value.expose.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)
  ) return "expose is not a list of ports";
  if (typeof value.tailscale !== "boolean") return "tailscale is not true/false";
  if (!LEASE_STATES.includes(value.state as LeaseState)) {
    return `state ${JSON.stringify(value.state)} is unknown`;
  }
  if (value.ssh !== undefined) {
    const ssh = value.ssh;
    if (
      !isObject(ssh) || typeof ssh.host !== "string" || typeof ssh.user !== "string" ||
      !Number.isInteger(ssh.port)
    ) return "ssh is not {host, port, user}";
  }
  if (value.creator !== undefined) {
    const c = value.creator;
    if (!isObject(c) || !Number.isInteger(c.pid) || typeof c.startTime !== "string") {
      return "creator is not {pid, startTime}";
    }
  }
  if (value.data !== undefined && !isObject(value.data)) return "data is not an object";
  const lease = value as unknown as Lease;
  return {
    ...lease,
    crew: lease.crew ?? undefined,
    role: lease.role ?? lease.slug,
  };
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
export async function reserveClaim(home: string, lease: Lease): Promise<void> {
  await reserveClaims(home, lease.crew, (taken, holders) => {
    const holder = holders.get(lease.slug);
    if (taken.has(lease.slug)) {
      throw new CrabboxError(
        "usage",
        "slug_taken",
        `crew ${lease.crew} already has a member ${lease.slug} (${holder})`,
        { hint: "pick another --slug or release that lease first" },
      );
    }
    return [lease];
  });
}

/**
 * Save new claims for one crew under the store lock: `build` receives the
 * slugs unreleased leases of `crew` already use (and slug → lease id), and
 * returns the claims to write. Slugs chosen there (next free `worker-<n>`,
 * generated names) cannot be taken by a concurrent process.
 */
export function reserveClaims(
  home: string,
  crew: string | undefined,
  build: (taken: ReadonlySet<string>, holders: ReadonlyMap<string, string>) => Lease[],
): Promise<Lease[]> {
  return withLock(lockPath(home), async () => {
    const holders = new Map<string, string>();
    if (crew !== undefined) {
      for (const c of await listClaims(home)) {
        if (c.crew === crew && c.state !== "failed") holders.set(c.slug, c.id);
      }
    }
    const leases = build(new Set(holders.keys()), holders);
    for (const l of leases) await writeJsonAtomic(claimPath(home, l.id), l);
    return leases;
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
 * Every claim in the store, sorted by crew, slug, then id. Each file is
 * validated on read ({@link validateClaim}); a truncated, unreadable or
 * wrong-typed one is skipped and reported through `onBad` with its path and
 * reason, and the others are still returned.
 */
// deno-lint-ignore require-await -- async so that a failing read rejects, as callers expect
export async function listClaims(
  home: string,
  onBad: (bad: BadClaim) => void = () => {},
): Promise<Lease[]> {
  const dir = claimsDir(home);
  // Synchronous on purpose: a claim is a few hundred bytes, and a sync read
  // costs a fraction of an async read's thread-pool round trip (a home with
  // ~180 claims: ~0.6 ms against ~2 ms in parallel, ~12 ms one after another).
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)].filter((e) => /^cbx-[0-9a-f]{12}\.json$/.test(e.name));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    entries = [];
  }
  const out: Lease[] = [];
  for (const entry of entries) {
    const path = joinPath(dir, entry.name);
    const id = entry.name.slice(0, -".json".length);
    let raw: unknown;
    try {
      if (!entry.isFile) throw new Error("not a regular file");
      raw = JSON.parse(Deno.readTextFileSync(path));
    } catch (e) {
      onBad({
        path,
        id,
        reason: e instanceof SyntaxError
          ? "not valid JSON (truncated?)"
          : (e as Error).message.split("\n")[0],
      });
      continue;
    }
    const lease = validateClaim(raw, id);
    if (typeof lease === "string") {
      const field = (k: string) =>
        isObject(raw) && typeof raw[k] === "string" ? raw[k] as string : undefined;
      onBad({ path, id, crew: field("crew"), provider: field("provider"), reason: lease });
    } else out.push(lease);
  }
  return out.sort(compareLeases);
}

/** Order leases by crew, slug, then id (code units: {@link compareText}). */
export function compareLeases(a: Lease, b: Lease): number {
  return compareText(a.crew ?? "", b.crew ?? "") || compareText(a.slug, b.slug) ||
    compareText(a.id, b.id);
}
