/**
 * Releasing leases: delete the box at its provider, leave the tailnet, drop
 * the claim and the keys no other claim needs. Listing and finding them is
 * `leases.ts`.
 *
 * @module
 */

import { leaveTailnet } from "./tailnet_leave.ts";
import { runBounded } from "../core/async.ts";
import { joinPath, removeFile } from "../core/fs.ts";
import { meshPaths } from "../core/home.ts";
import { decodeLabels } from "../core/labels.ts";
import { type BadClaim, claimsDir, type Lease, listClaims, updateClaim } from "./claims.ts";
import { type CrabboxOptions, resolveRuntime, type Runtime } from "../runtime.ts";
import { clientKeyDir } from "../ssh/keys.ts";
import type { Provider } from "../../providers/types.ts";
import { listLeasesReport, toProviderLease, type UnqueriedProvider } from "./leases.ts";

/** Result of releasing several leases. */
export interface ReleaseResult {
  /** Lease ids released. */
  released: string[];
  /** Leases that could not be released, with the reason. */
  failed: { id: string; error: string }[];
  /** What was removed per released lease id (`local box cbx-…`, `claim`, `client key`, …). */
  removed: Record<string, string[]>;
  /** Claim files of the crew that could not be read and are still there (see {@link badClaimsError}). */
  badClaims?: BadClaim[];
  /** Providers not asked because their credentials are missing (their boxes may exist). */
  unqueried?: UnqueriedProvider[];
}

/** Whether a path exists (a missing one is not an error). */
async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

async function releaseOne(rt: Runtime, lease: Lease): Promise<string[]> {
  const removed: string[] = [];
  await updateClaim(rt.home, lease.id, (c) => c ? { ...c, state: "releasing" } : c).catch(() => {});
  const provider: Provider = await rt.provider(lease.provider);
  // A create that died before the provider answered left no provider id in
  // the claim: ask the provider (its list is the truth) for the lease's box.
  const boxes = lease.providerId
    ? (await provider.get(lease.providerId, rt.signal) ? [toProviderLease(lease)] : [])
    : (await provider.list({ crew: lease.crew }, rt.signal)).filter((pl) =>
      pl.leaseId === lease.id || decodeLabels(pl.labels)?.leaseId === lease.id
    );
  if (boxes.length > 0) await leaveTailnet(rt, lease);
  for (const box of boxes) {
    await provider.delete(box, rt.signal);
    removed.push(`${lease.provider} box ${box.providerId}`);
  }
  const claimFile = joinPath(claimsDir(rt.home), `${lease.id}.json`);
  if (await exists(claimFile)) {
    await removeFile(claimFile);
    removed.push("claim");
  }
  removed.push(...await forgetKeysIfUnused(rt.home, lease));
  return removed;
}

/** Remove the client key (and crew known_hosts) once no claim needs them; says what went. */
async function forgetKeysIfUnused(home: string, lease: Lease): Promise<string[]> {
  const removed: string[] = [];
  if (lease.crew !== undefined) {
    const others = (await listClaims(home)).some((c) => c.crew === lease.crew);
    if (others) return removed;
    // The crew dir (known_hosts, mesh files, sockets, logs) goes with the last
    // member, unless a connect daemon is still recorded there.
    const paths = meshPaths(home, lease.crew);
    const daemonRecorded = await exists(paths.daemon);
    if (!daemonRecorded && await exists(paths.dir)) {
      await Deno.remove(paths.dir, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      removed.push("crew dir");
    }
  }
  const keyDir = clientKeyDir(home, { crew: lease.crew, leaseId: lease.id });
  if (await exists(keyDir)) {
    await Deno.remove(keyDir, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    removed.push("client key");
  }
  return removed;
}

/** Release leases (bounded parallelism); failures are collected, not thrown. */
export async function releaseLeases(
  rt: Runtime,
  leases: readonly Lease[],
): Promise<ReleaseResult> {
  const results = await runBounded(leases, 8, (l) => releaseOne(rt, l));
  const out: ReleaseResult = { released: [], failed: [], removed: {} };
  results.forEach((r, i) => {
    if (r.status === "fulfilled") {
      out.released.push(leases[i].id);
      out.removed[leases[i].id] = r.value;
    } else {
      out.failed.push({
        id: leases[i].id,
        error: (r.reason as Error)?.message ?? String(r.reason),
      });
    }
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
export async function releaseLease(
  lease: Lease,
  options: CrabboxOptions = {},
): Promise<string[]> {
  return await releaseOne(await resolveRuntime(options), lease);
}

/**
 * Release every lease of a crew across providers, whatever its state. One
 * failure does not stop the rest; failures are returned. Claim files of the
 * crew that cannot be read and are still there after the rest was released
 * (releasing a lease the provider listed removes its claim file, readable or
 * not) come back in `badClaims`: the release is not complete.
 *
 * @example
 * ```ts
 * import { releaseCrew } from "@crabbox/crabbox";
 * const { released, failed } = await releaseCrew("pr-42");
 * ```
 */
export async function releaseCrew(
  name: string,
  options: CrabboxOptions & { allOwners?: boolean } = {},
): Promise<ReleaseResult> {
  const rt = await resolveRuntime(options);
  const { leases, badClaims, unqueried } = await listLeasesReport(
    { crew: name, allOwners: options.allOwners },
    options,
  );
  const result: ReleaseResult = await releaseLeases(rt, leases);
  if (unqueried.length > 0) result.unqueried = unqueried;
  const left: BadClaim[] = [];
  for (const b of badClaims) if (await exists(b.path)) left.push(b);
  return left.length > 0 ? { ...result, badClaims: left } : result;
}
