/**
 * Leases after creation: list (claims merged with providers) and find.
 * Creating them is `create.ts`, releasing them `release.ts`; exposing one
 * more port of a live member is `lib/mesh/expose.ts`.
 *
 * @module
 */

import { CrabboxError, usageError } from "../core/errors.ts";
import { decodeLabels } from "../core/labels.ts";
import { latestLifetime } from "../core/lifetime.ts";
import { isLeaseId, normalizeCrewName, normalizeSlug, ownerFor, roleOf } from "../core/names.ts";
import {
  type BadClaim,
  compareLeases,
  type CreatorRef,
  type Lease,
  type LeaseState,
  listClaims,
} from "./claims.ts";
import { type CrabboxOptions, providerFeatures, resolveRuntime, type Runtime } from "../runtime.ts";
import { procAlive } from "../process/identity.ts";
import { providerEntry, providerNames } from "../../providers/registry.ts";
import type { ProviderLease } from "../../providers/types.ts";

export type { Lease } from "./claims.ts";

/** Turn what a provider reports into a {@link Lease} (labels decide crew, slug, ports). */
export function leaseFromProvider(provider: string, pl: ProviderLease): Lease | undefined {
  const facts = decodeLabels(pl.labels);
  if (!facts) return undefined;
  return {
    id: facts.leaseId,
    provider,
    providerId: pl.providerId,
    crew: facts.crew,
    slug: facts.slug,
    role: roleOf(facts.slug),
    owner: facts.owner ?? "user",
    labels: pl.labels,
    expose: [...(facts.expose ?? [])],
    ssh: pl.ssh,
    tailscale: facts.tailscale ?? false,
    tailnet: pl.tailnet ?? (facts.tailnetIpv4 ? { ipv4: facts.tailnetIpv4 } : undefined),
    createdAt: pl.createdAt ?? new Date(0).toISOString(),
    state: pl.state === "running" ? "active" : pl.state === "creating" ? "creating" : "orphaned",
    data: pl.data,
  };
}

/** The {@link ProviderLease} a provider's `delete`/`updateLabels` receive for a lease. */
export function toProviderLease(lease: Lease): ProviderLease {
  return {
    providerId: lease.providerId,
    leaseId: lease.id,
    labels: lease.labels,
    state: "unknown",
    ssh: lease.ssh,
    tailnet: lease.tailnet,
    createdAt: lease.createdAt,
    data: lease.data,
  };
}

/** Which leases {@link listLeases} returns. */
export interface ListSelector {
  /** Only this crew (normalized). */
  crew?: string;
  /** Only this provider. */
  provider?: string;
  /**
   * Include other owners' leases (default false: only leases whose
   * `crabbox-owner` is this operator's, see `ownerFor`).
   */
  allOwners?: boolean;
}

/** True when `name` is an injected or registered provider. */
function isKnownProvider(options: CrabboxOptions, name: string): boolean {
  try {
    providerFeatures(options, name);
    return true;
  } catch {
    return false;
  }
}

/** A provider a listing did not ask, and why (its credentials are missing). */
export interface UnqueriedProvider {
  /** Provider name. */
  provider: string;
  /** What is missing, e.g. `HCLOUD_TOKEN is not set`. */
  reason: string;
}

/**
 * Which providers a listing asks beyond those of this home's claims: every
 * injected provider, and every registered one whose credentials are present
 * (`local` has none to miss), so a box whose claim this home lost, or that
 * another machine of the same owner created, is still found. A registered
 * provider without credentials is not asked and comes back in `unqueried`.
 */
function credentialedProviders(
  rt: Runtime,
  options: CrabboxOptions,
): { names: string[]; unqueried: UnqueriedProvider[] } {
  const names = new Set(Object.keys(options.providers ?? {}));
  const unqueried: UnqueriedProvider[] = [];
  for (const name of providerNames()) {
    const missing = providerEntry(name).credentials?.(rt.env, rt.config.providers[name] ?? {});
    if (missing === undefined) names.add(name);
    else {
      names.delete(name);
      unqueried.push({ provider: name, reason: missing });
    }
  }
  return { names: [...names], unqueried };
}

/**
 * The not-found hint naming the providers not asked for lack of credentials
 * (`undefined` when every provider was asked).
 *
 * @example
 * ```ts
 * import { unqueriedHint } from "./leases.ts";
 * unqueriedHint([{ provider: "hetzner", reason: "HCLOUD_TOKEN is not set" }]);
 * // "not queried for lack of credentials: hetzner (crabbox doctor shows what each needs)"
 * ```
 */
export function unqueriedHint(unqueried: readonly UnqueriedProvider[]): string | undefined {
  if (unqueried.length === 0) return undefined;
  return `not queried for lack of credentials: ${
    unqueried.map((u) => u.provider).join(", ")
  } (crabbox doctor shows what each needs)`;
}

/** Liveness of a recorded creator process (injected by tests). */
export type CreatorAlive = (creator: CreatorRef | undefined) => boolean;

const creatorAlive: CreatorAlive = (c) => c !== undefined && procAlive(c);

/**
 * The true state of a lease from its claim (if any), what its provider lists
 * (if it lists it) and whether the creating process still runs. Pure.
 *
 * @example
 * ```ts
 * import { judgeState } from "./leases.ts";
 * judgeState("creating", undefined, false); // "failed": its create died
 * judgeState("active", "stopped", false); // "unreachable"
 * judgeState("active", undefined, false); // "orphaned": the provider has no such box
 * ```
 */
export function judgeState(
  claimed: LeaseState | undefined,
  listed: ProviderLease["state"] | undefined,
  creatorRuns: boolean,
): LeaseState {
  if (claimed === "creating") return creatorRuns ? "creating" : "failed";
  if (claimed === undefined) {
    if (listed === "running") return "active";
    return listed === "creating" ? "creating" : "orphaned";
  }
  if (listed === undefined) return claimed === "releasing" ? "releasing" : "orphaned";
  if (listed === "running") return claimed === "releasing" ? "releasing" : "active";
  if (listed === "creating") return "creating";
  return claimed === "releasing" ? "releasing" : "unreachable";
}

/** {@link listLeasesReport}'s answer: the leases and the claim files that could not be used. */
export interface LeaseReport {
  /** Every lease, whatever its state, sorted by crew, slug, id. */
  leases: Lease[];
  /** Claim files that failed validation (named; the rest were still read). */
  badClaims: BadClaim[];
  /** Providers not asked because their credentials are missing (their boxes may exist). */
  unqueried: UnqueriedProvider[];
}

/**
 * Every lease crabbox knows of, whatever its health: local claims merged with
 * what each involved provider lists (the provider's list is the truth for
 * whether a box exists). Nothing is dropped: a dead create is `failed`, a box
 * that does not run is `unreachable`, a claim without a box (or a box without
 * a claim that does not run) is `orphaned` — all of them releasable. Claim
 * files that fail validation are returned in `badClaims` (those of another
 * crew than the selector's are left out).
 *
 * @example
 * ```ts
 * import { listLeasesReport } from "./leases.ts";
 * const { leases, badClaims } = await listLeasesReport({ crew: "pr-42" });
 * ```
 */
export async function listLeasesReport(
  selector: ListSelector = {},
  options: CrabboxOptions & { creatorAlive?: CreatorAlive } = {},
): Promise<LeaseReport> {
  const rt = await resolveRuntime(options);
  const alive = options.creatorAlive ?? creatorAlive;
  const crew = selector.crew === undefined ? undefined : normalizeCrewName(selector.crew);
  if (selector.provider !== undefined) providerFeatures(options, selector.provider);
  // The owner may take a `git config` spawn: it runs while the claims are
  // read and the providers load; each provider's list waits for it.
  const ownerLookup = selector.allOwners ? Promise.resolve(undefined) : ownerFor({ env: rt.env });
  ownerLookup.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
  const badClaims: BadClaim[] = [];
  const claims = (await listClaims(rt.home, (b) => {
    if (crew === undefined || b.crew === undefined || b.crew === crew) badClaims.push(b);
  })).filter((c) =>
    (crew === undefined || c.crew === crew) &&
    (selector.provider === undefined || c.provider === selector.provider)
  );
  const providers = new Set(claims.map((c) => c.provider));
  // A bad claim's box is still found through its provider's list (the truth).
  for (const b of badClaims) {
    if (b.provider && (selector.provider === undefined || b.provider === selector.provider)) {
      if (isKnownProvider(options, b.provider)) providers.add(b.provider);
    }
  }
  let unqueried: UnqueriedProvider[] = [];
  if (selector.provider) providers.add(selector.provider);
  else {
    // Boxes without a claim here (lost, or made by another machine of this
    // owner) are found through every provider that can be asked.
    const asked = credentialedProviders(rt, options);
    for (const name of asked.names) providers.add(name);
    unqueried = asked.unqueried.filter((u) => !providers.has(u.provider));
  }
  const byId = new Map<string, Lease>();
  await Promise.all([...providers].map(async (name) => {
    const mine = claims.filter((c) => c.provider === name);
    const loading = rt.provider(name);
    loading.catch(() => {}); // awaited in the try below, after the owner
    const owner = await ownerLookup;
    let listed: ProviderLease[];
    try {
      const provider = await loading;
      listed = await provider.list({ crew, owner }, rt.signal);
    } catch (e) {
      rt.log(`provider ${name}: list failed (${(e as Error).message}); showing local claims`);
      for (const c of mine) {
        byId.set(c.id, c.state === "creating" && !alive(c.creator) ? { ...c, state: "failed" } : c);
      }
      return;
    }
    const claimById = new Map(mine.map((c) => [c.id, c]));
    const seen = new Set<string>();
    for (const pl of listed) {
      const fromProvider = leaseFromProvider(name, pl);
      if (!fromProvider) continue;
      const claim = claimById.get(fromProvider.id);
      if (!claim && crew !== undefined && fromProvider.crew !== crew) continue;
      seen.add(fromProvider.id);
      const state = judgeState(claim?.state, pl.state, alive(claim?.creator));
      byId.set(
        fromProvider.id,
        claim
          ? {
            ...claim,
            providerId: pl.providerId || claim.providerId,
            labels: latestLifetime(claim.labels, pl.labels),
            ssh: pl.ssh ?? claim.ssh,
            tailnet: pl.tailnet ?? claim.tailnet,
            state,
          }
          : { ...fromProvider, state },
      );
    }
    for (const c of mine) {
      if (!seen.has(c.id)) {
        byId.set(c.id, { ...c, state: judgeState(c.state, undefined, alive(c.creator)) });
      }
    }
  }));
  const owner = await ownerLookup;
  const leases = [...byId.values()].filter((l) => owner === undefined || l.owner === owner);
  return { leases: leases.sort(compareLeases), badClaims, unqueried };
}

/**
 * Every lease of the selector whatever its state (see {@link listLeasesReport};
 * unusable claim files are only logged). Use `state === "active"` for the
 * healthy ones.
 *
 * @example
 * ```ts
 * import { listLeases } from "./leases.ts";
 * for (const l of await listLeases({ crew: "pr-42" })) console.log(l.slug, l.state, l.expose);
 * ```
 */
export async function listLeases(
  selector: ListSelector = {},
  options: CrabboxOptions = {},
): Promise<Lease[]> {
  const { leases, badClaims } = await listLeasesReport(selector, options);
  if (badClaims.length > 0) (await resolveRuntime(options)).log(badClaimsError(badClaims).message);
  return leases;
}

/**
 * The error for unusable claim files: exit 7 (state), one line naming each file.
 *
 * @example
 * ```ts
 * import { badClaimsError } from "./leases.ts";
 * badClaimsError([{ path: "/h/claims/cbx-0123456789ab.json", id: "cbx-0123456789ab", reason: "not valid JSON (truncated?)" }]);
 * ```
 */
export function badClaimsError(bad: readonly BadClaim[]): CrabboxError {
  return new CrabboxError(
    "state",
    "bad_claim",
    `unusable claim file${bad.length > 1 ? "s" : ""}: ${
      bad.map((b) => `${b.path} (${b.reason})`).join("; ")
    }`,
    {
      hint: "fix or move the file away; the provider's own list still shows its box",
      details: { files: bad.map((b) => b.path) },
    },
  );
}

/**
 * Find one lease by id (`cbx-…`) or by `crew/slug`. Throws not-found.
 *
 * @example
 * ```ts
 * import { findLease } from "@crabbox/crabbox";
 * const api = await findLease("pr-42/api");
 * ```
 */
export async function findLease(
  ref: string,
  options: CrabboxOptions & { allOwners?: boolean } = {},
): Promise<Lease> {
  const trimmed = ref.trim();
  let selector: ListSelector;
  let match: (l: Lease) => boolean;
  if (isLeaseId(trimmed)) {
    selector = { allOwners: true };
    match = (l) => l.id === trimmed;
  } else {
    const slash = trimmed.indexOf("/");
    if (slash <= 0) {
      throw usageError(
        "bad_id",
        `--id ${JSON.stringify(ref)} must be a lease id (cbx-…) or crew/slug`,
      );
    }
    const crew = normalizeCrewName(trimmed.slice(0, slash));
    const slug = normalizeSlug(trimmed.slice(slash + 1));
    selector = { crew, allOwners: options.allOwners };
    match = (l) => l.slug === slug;
  }
  const report = await listLeasesReport(selector, options);
  if (report.badClaims.length > 0) {
    (await resolveRuntime(options)).log(badClaimsError(report.badClaims).message);
  }
  const found = report.leases.find(match);
  if (!found) {
    throw new CrabboxError("notFound", "no_lease", `no active lease ${JSON.stringify(ref)}`, {
      hint: unqueriedHint(report.unqueried),
    });
  }
  if (!options.allOwners) {
    const me = await ownerFor({ env: (await resolveRuntime(options)).env });
    if (found.owner !== me) {
      throw usageError(
        "other_owner",
        `lease ${found.id} belongs to owner ${found.owner}, not ${me}`,
        "pass --all-owners to act on another owner's lease",
      );
    }
  }
  return found;
}
