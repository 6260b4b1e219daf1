/**
 * Leases after creation: list (claims merged with providers), find and
 * release. Creating them is `create.ts`; exposing one more port of a live
 * member is `lib/mesh/expose.ts`.
 *
 * @module
 */

import {
  CrabboxError,
  decodeLabels,
  isLeaseId,
  meshPaths,
  normalizeCrewName,
  normalizeSlug,
  roleOf,
  runBounded,
  usageError,
} from "../core/mod.ts";
import { compareLeases, type Lease, listClaims, removeClaim, updateClaim } from "./claims.ts";
import { type CrabboxOptions, providerFeatures, resolveRuntime, type Runtime } from "../runtime.ts";
import { clientKeyDir } from "../ssh/mod.ts";
import type { Provider, ProviderLease } from "../../providers/mod.ts";

export type { Lease } from "./claims.ts";

/** Result of releasing several leases. */
export interface ReleaseResult {
  /** Lease ids released. */
  released: string[];
  /** Leases that could not be released, with the reason. */
  failed: { id: string; error: string }[];
}

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
    tailnet: pl.tailnet,
    createdAt: pl.createdAt ?? new Date(0).toISOString(),
    state: pl.state === "running" ? "active" : "failed",
    data: pl.data,
  };
}

function toProviderLease(lease: Lease): ProviderLease {
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
}

/**
 * Active leases: local claims merged with what each involved provider lists
 * (a provider sees leases created elsewhere; a claim whose box is gone is
 * dropped). Sorted by crew, slug, id.
 *
 * @example
 * ```ts
 * import { listLeases } from "@crabbox/crabbox";
 * for (const l of await listLeases({ crew: "pr-42" })) console.log(l.slug, l.expose);
 * ```
 */
export async function listLeases(
  selector: ListSelector = {},
  options: CrabboxOptions = {},
): Promise<Lease[]> {
  const rt = await resolveRuntime(options);
  const crew = selector.crew === undefined ? undefined : normalizeCrewName(selector.crew);
  if (selector.provider !== undefined) providerFeatures(options, selector.provider);
  const claims = (await listClaims(rt.home, (p) => rt.log(`skipping unreadable claim ${p}`)))
    .filter((c) =>
      (crew === undefined || c.crew === crew) &&
      (selector.provider === undefined || c.provider === selector.provider) &&
      c.state !== "failed"
    );
  const providers = new Set(claims.map((c) => c.provider));
  if (selector.provider) providers.add(selector.provider);
  const byId = new Map<string, Lease>();
  for (const c of claims) if (c.state === "creating") byId.set(c.id, c);
  await Promise.all([...providers].map(async (name) => {
    const mine = claims.filter((c) => c.provider === name);
    let listed: ProviderLease[];
    try {
      const provider = await rt.provider(name);
      listed = await provider.list({ crew }, rt.signal);
    } catch (e) {
      rt.log(`provider ${name}: list failed (${(e as Error).message}); showing local claims`);
      for (const c of mine) byId.set(c.id, c);
      return;
    }
    const claimById = new Map(mine.map((c) => [c.id, c]));
    for (const pl of listed) {
      const fromProvider = leaseFromProvider(name, pl);
      if (!fromProvider || (crew !== undefined && fromProvider.crew !== crew)) continue;
      const claim = claimById.get(fromProvider.id);
      byId.set(
        fromProvider.id,
        claim
          ? {
            ...claim,
            ssh: pl.ssh ?? claim.ssh,
            tailnet: pl.tailnet ?? claim.tailnet,
            state: fromProvider.state === "active" ? claim.state : "failed",
          }
          : fromProvider,
      );
    }
  }));
  return [...byId.values()].filter((l) => l.state !== "failed").sort(compareLeases);
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
export async function findLease(ref: string, options: CrabboxOptions = {}): Promise<Lease> {
  const trimmed = ref.trim();
  let found: Lease | undefined;
  if (isLeaseId(trimmed)) {
    found = (await listLeases({}, options)).find((l) => l.id === trimmed);
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
    found = (await listLeases({ crew }, options)).find((l) => l.slug === slug);
  }
  if (!found) {
    throw new CrabboxError("notFound", "no_lease", `no active lease ${JSON.stringify(ref)}`);
  }
  return found;
}

async function releaseOne(rt: Runtime, lease: Lease): Promise<void> {
  await updateClaim(rt.home, lease.id, (c) => c ? { ...c, state: "releasing" } : c);
  const provider: Provider = await rt.provider(lease.provider);
  await provider.delete(toProviderLease(lease), rt.signal);
  await removeClaim(rt.home, lease.id);
  await forgetKeysIfUnused(rt.home, lease);
}

/** Remove the client key (and crew known_hosts) once no claim needs them. */
async function forgetKeysIfUnused(home: string, lease: Lease): Promise<void> {
  if (lease.crew !== undefined) {
    const others = (await listClaims(home)).some((c) => c.crew === lease.crew);
    if (others) return;
    // The crew dir (known_hosts, mesh files, sockets, logs) goes with the last
    // member, unless a connect daemon is still recorded there.
    const paths = meshPaths(home, lease.crew);
    const daemonRecorded = await Deno.stat(paths.daemon).then(() => true, () => false);
    if (!daemonRecorded) {
      await Deno.remove(paths.dir, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }
  await Deno.remove(clientKeyDir(home, { crew: lease.crew, leaseId: lease.id }), {
    recursive: true,
  }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** Release leases (bounded parallelism); failures are collected, not thrown. */
export async function releaseLeases(
  rt: Runtime,
  leases: readonly Lease[],
): Promise<ReleaseResult> {
  const results = await runBounded(leases, 8, (l) => releaseOne(rt, l));
  const out: ReleaseResult = { released: [], failed: [] };
  results.forEach((r, i) => {
    if (r.status === "fulfilled") out.released.push(leases[i].id);
    else {out.failed.push({
        id: leases[i].id,
        error: (r.reason as Error)?.message ?? String(r.reason),
      });}
  });
  return out;
}

/**
 * Release one lease: delete the box at its provider and drop the claim.
 *
 * @example
 * ```ts
 * import { findLease, releaseLease } from "@crabbox/crabbox";
 * await releaseLease(await findLease("pr-42/api"));
 * ```
 */
export async function releaseLease(lease: Lease, options: CrabboxOptions = {}): Promise<void> {
  await releaseOne(await resolveRuntime(options), lease);
}

/**
 * Release every lease of a crew across providers. One failure does not stop
 * the rest; failures are returned.
 *
 * @example
 * ```ts
 * import { releaseCrew } from "@crabbox/crabbox";
 * const { released, failed } = await releaseCrew("pr-42");
 * ```
 */
export async function releaseCrew(
  name: string,
  options: CrabboxOptions = {},
): Promise<ReleaseResult> {
  const rt = await resolveRuntime(options);
  const leases = await listLeases({ crew: name }, options);
  return await releaseLeases(rt, leases);
}
