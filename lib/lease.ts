/**
 * Leases and crews: create boxes (alone or as a crew), list, find, release,
 * and expose more ports.
 *
 * @module
 */

import { CrabboxError, usageError } from "./errors.ts";
import { parseExposedPorts, validatePort } from "./expose.ts";
import { decodeLabels, encodeLabels, LabelKey } from "./labels.ts";
import {
  crewTag,
  isLeaseId,
  newLeaseId,
  normalizeCrewName,
  normalizeSlug,
  ownerFor,
  roleOf,
} from "./names.ts";
import {
  compareLeases,
  type Lease,
  listClaims,
  removeClaim,
  reserveClaim,
  saveClaim,
  updateClaim,
} from "./claims.ts";
import { type CrabboxOptions, resolveRuntime, type Runtime } from "./context.ts";
import { clientKeyDir, ensureClientKey } from "./ssh_keys.ts";
import {
  bootstrapCrewPolicy,
  obtainAuthKey,
  type TailnetJoin,
  type TailnetOps,
} from "./tailnet_join.ts";
import { meshPaths } from "./mesh_files.ts";
import {
  type Feature,
  type Provider,
  providerEntry,
  type ProviderLease,
  providersWith,
} from "../providers/types.ts";

export type { Lease } from "./claims.ts";

/** One member to lease. */
export interface MemberSpec {
  /** Member name within the crew (normalized like a crew name). */
  slug: string;
  /** Provider name (default: config `provider`, else `local`). */
  provider?: string;
  /** Ports to expose over the SSH-mesh: numbers or `--expose` strings (`"80,443"`). */
  expose?: readonly (number | string)[];
  /** Join the tailnet (providers with the `tailscale` feature only). */
  tailscale?: boolean;
  /** Shell script to run on the box once it is up. */
  init?: string;
}

/** A member spec after validation. */
export interface ValidatedMember {
  /** Normalized slug. */
  slug: string;
  /** Role derived from the slug. */
  role: string;
  /** Provider name. */
  provider: string;
  /** Sorted distinct ports. */
  expose: number[];
  /** Tailnet requested. */
  tailscale: boolean;
  /** Init script. */
  init?: string;
}

/** Options of {@link leaseCrew} and {@link leaseBox}. */
export interface LeaseOptions extends CrabboxOptions {
  /** How many members are created at once (default 4). */
  concurrency?: number;
  /** Keep members already leased when another one fails (default false: release them). */
  keepOnError?: boolean;
  /** Called with each lease as soon as it is active. */
  onLeased?: (lease: Lease) => void;
  /** Tailscale operations (default: the Tailscale API client from the environment). */
  tailnet?: TailnetOps;
}

/** Result of releasing several leases. */
export interface ReleaseResult {
  /** Lease ids released. */
  released: string[];
  /** Leases that could not be released, with the reason. */
  failed: { id: string; error: string }[];
}

/**
 * A leased crew. Disposing it releases every member.
 *
 * @example
 * ```ts
 * import { leaseCrew } from "../mod.ts";
 * await using crew = await leaseCrew("pr-42", [{ slug: "api", expose: [8080] }]);
 * console.log(crew.member("api").ssh?.host);
 * ```
 */
export interface Crew extends AsyncDisposable {
  /** Normalized crew name. */
  readonly name: string;
  /** The members leased by this call, in the order given. */
  readonly members: readonly Lease[];
  /** A member by slug; throws a not-found error for an unknown slug. */
  member(slug: string): Lease;
  /** Release every member; failures are collected, not thrown. */
  release(): Promise<ReleaseResult>;
}

function providerFeatures(rt: CrabboxOptions, name: string): ReadonlySet<Feature> {
  const injected = rt.providers;
  if (injected && Object.hasOwn(injected, name)) return injected[name].features;
  return providerEntry(name).features;
}

/**
 * Validate a member spec completely (names, ports, provider, features) before
 * anything is created. Throws a usage error on the first problem.
 *
 * @example
 * ```ts
 * import { validateMember } from "./lease.ts";
 * validateMember({ slug: "Worker 2", expose: ["8080"] }, "local");
 * // { slug: "worker-2", role: "worker", provider: "local", expose: [8080], tailscale: false }
 * ```
 */
export function validateMember(
  spec: MemberSpec,
  defaultProvider: string,
  options: CrabboxOptions = {},
): ValidatedMember {
  const slug = normalizeSlug(spec.slug ?? "");
  const provider = (spec.provider ?? defaultProvider).trim();
  const features = providerFeatures(options, provider);
  const expose = parseExposedPorts((spec.expose ?? []).map(String));
  if (spec.tailscale && !features.has("tailscale")) {
    const capable = providersWith("tailscale");
    throw usageError(
      "no_tailscale",
      `provider ${provider} cannot join a tailnet; --tailscale works with: ${
        capable.length ? capable.join(", ") : "no registered provider"
      }`,
    );
  }
  if (spec.init !== undefined && spec.init.includes("\0")) {
    throw usageError("bad_init", "--init script contains a NUL byte");
  }
  return {
    slug,
    role: roleOf(slug),
    provider,
    expose,
    tailscale: spec.tailscale ?? false,
    init: spec.init,
  };
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

/** A validated member with what must be decided before anything is created. */
interface PreparedMember extends ValidatedMember {
  /** Lease id, chosen up front. */
  id: string;
  /** Auth key and tags, for `--tailscale` members (secret; never stored). */
  join?: TailnetJoin;
  /** The crew tag, when the member joins the tailnet in a crew. */
  crewTag?: string;
}

/**
 * Everything that can fail without creating anything, in order: policy
 * bootstrap on the crew's first lease, then one auth key per tailnet member.
 */
async function prepareMembers(
  rt: Runtime,
  options: LeaseOptions,
  crew: string | undefined,
  members: readonly ValidatedMember[],
  owner: string,
): Promise<PreparedMember[]> {
  const prepared: PreparedMember[] = members.map((m) => ({ ...m, id: newLeaseId() }));
  if (!prepared.some((m) => m.tailscale)) return prepared;
  if (crew !== undefined) {
    // Fail on a taken slug before touching the tailnet (reserveClaim re-checks atomically).
    const claims = await listClaims(rt.home);
    const taken = prepared.find((m) =>
      claims.some((c) => c.crew === crew && c.slug === m.slug && c.state !== "failed")
    );
    if (taken) {
      throw usageError("slug_taken", `crew ${crew} already has a member ${taken.slug}`);
    }
  }
  const ops = options.tailnet ?? await (await import("./tailnet_ops.ts")).defaultTailnetOps(rt);
  const tag = crew === undefined ? undefined : crewTag(owner, crew);
  if (crew !== undefined && tag !== undefined) await bootstrapCrewPolicy(rt, ops, crew, tag);
  const tags = [...rt.config.tailscale.tags, ...(tag ? [tag] : [])];
  for (const m of prepared) {
    if (!m.tailscale) continue;
    m.join = { authKey: await obtainAuthKey(rt, ops, tags, m.slug), tags };
    m.crewTag = tag;
  }
  return prepared;
}

async function userDataFor(
  rt: CrabboxOptions,
  member: PreparedMember,
  crew: string | undefined,
  sshPublicKey: string,
): Promise<string | undefined> {
  if (!providerFeatures(rt, member.provider).has("cloud-init")) return undefined;
  const { renderCloudInit } = await import("./cloud_init.ts");
  return renderCloudInit({
    slug: member.slug,
    crew,
    sshPublicKey,
    tailscale: member.join ? { authKey: member.join.authKey, tags: member.join.tags } : undefined,
    crewTag: member.crewTag,
    init: member.init,
  });
}

async function createMember(
  rt: Runtime,
  options: CrabboxOptions,
  crew: string | undefined,
  member: PreparedMember,
  owner: string,
): Promise<Lease> {
  const id = member.id;
  const labels = encodeLabels({
    leaseId: id,
    crew,
    slug: member.slug,
    expose: member.expose,
    owner,
    tailscale: member.tailscale,
  });
  const draft: Lease = {
    id,
    provider: member.provider,
    providerId: "",
    crew,
    slug: member.slug,
    role: member.role,
    owner,
    labels,
    expose: member.expose,
    tailscale: member.tailscale,
    createdAt: new Date().toISOString(),
    state: "creating",
  };
  await reserveClaim(rt.home, draft);
  try {
    const provider = await rt.provider(member.provider);
    const key = await ensureClientKey(rt.home, { crew, leaseId: id });
    const userData = await userDataFor(options, member, crew, key.publicKey);
    rt.log(`leasing ${crew ? `${crew}/` : ""}${member.slug} on ${member.provider}…`);
    const pl = await provider.create({
      leaseId: id,
      crew,
      slug: member.slug,
      role: member.role,
      expose: member.expose,
      labels,
      sshPublicKey: key.publicKey,
      sshKeyPath: key.keyPath,
      init: userData === undefined ? member.init : undefined,
      userData,
      tailscale: member.tailscale,
    }, rt.signal);
    const lease: Lease = {
      ...draft,
      providerId: pl.providerId,
      ssh: pl.ssh ? { ...pl.ssh, keyPath: pl.ssh.keyPath ?? key.keyPath } : undefined,
      tailnet: member.join
        ? { hostname: `crabbox-${member.slug}`, tags: member.join.tags, ...pl.tailnet }
        : pl.tailnet,
      data: pl.data,
      state: "active",
    };
    await saveClaim(rt.home, lease);
    return lease;
  } catch (e) {
    await removeClaim(rt.home, id).catch(() => {});
    throw e;
  }
}

async function runBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: "fulfilled", value: await fn(items[i], i) };
      } catch (reason) {
        results[i] = { status: "rejected", reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * Lease a single box (optionally into a crew). Everything is validated before
 * anything is created.
 *
 * @example
 * ```ts
 * import { leaseBox } from "./lease.ts";
 * const lease = await leaseBox({ slug: "scratch", provider: "local" }, { crew: "pr-42" });
 * ```
 */
export async function leaseBox(
  spec: MemberSpec,
  options: LeaseOptions & { crew?: string } = {},
): Promise<Lease> {
  const crew = options.crew === undefined ? undefined : normalizeCrewName(options.crew);
  const rt = await resolveRuntime(options);
  const member = validateMember(spec, rt.config.provider, options);
  const owner = await ownerFor(rt.env);
  const [prepared] = await prepareMembers(rt, options, crew, [member], owner);
  const lease = await createMember(rt, options, crew, prepared, owner);
  options.onLeased?.(lease);
  return lease;
}

/**
 * Lease a crew: members are validated first, then created concurrently
 * (bounded). If one fails, the ones already leased are released unless
 * `keepOnError` is set, and the first error is thrown.
 *
 * @example
 * ```ts
 * import { leaseCrew } from "./lease.ts";
 * const crew = await leaseCrew("pr-42", [
 *   { slug: "api", provider: "local", expose: [8080] },
 *   { slug: "db", provider: "local", expose: [5432] },
 * ]);
 * await crew.release();
 * ```
 */
export async function leaseCrew(
  name: string,
  members: readonly MemberSpec[],
  options: LeaseOptions = {},
): Promise<Crew> {
  const crewName = normalizeCrewName(name);
  const rt = await resolveRuntime(options);
  const validated = members.map((m) => validateMember(m, rt.config.provider, options));
  const seen = new Set<string>();
  for (const m of validated) {
    if (seen.has(m.slug)) throw usageError("duplicate_slug", `slug ${m.slug} is given twice`);
    seen.add(m.slug);
  }
  const owner = await ownerFor(rt.env);
  const prepared = await prepareMembers(rt, options, crewName, validated, owner);
  const results = await runBounded(prepared, options.concurrency ?? 4, async (m) => {
    const lease = await createMember(rt, options, crewName, m, owner);
    options.onLeased?.(lease);
    return lease;
  });
  const leased = results.flatMap((r) => r.status === "fulfilled" ? [r.value] : []);
  const failure = results.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
  if (failure) {
    if (!options.keepOnError) await releaseLeases(rt, leased);
    throw failure.reason;
  }
  return makeCrew(crewName, leased, options);
}

function makeCrew(name: string, members: Lease[], options: CrabboxOptions): Crew {
  const release = async () => releaseLeases(await resolveRuntime(options), members);
  return {
    name,
    members,
    member(slug: string): Lease {
      const s = normalizeSlug(slug);
      const m = members.find((l) => l.slug === s);
      if (!m) throw new CrabboxError("notFound", "no_member", `crew ${name} has no member ${s}`);
      return m;
    },
    release,
    async [Symbol.asyncDispose]() {
      await release();
    },
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
 * import { listLeases } from "./lease.ts";
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
 * import { findLease } from "./lease.ts";
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

async function releaseLeases(rt: Runtime, leases: readonly Lease[]): Promise<ReleaseResult> {
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
 * import { findLease, releaseLease } from "./lease.ts";
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
 * import { releaseCrew } from "./lease.ts";
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

/**
 * Add a port to a lease's exposed ports (recorded in its claim and labels).
 * When `crew connect` holds the member's tunnel, the new port is forwarded on
 * the live ControlMaster (`ssh -O forward`) without restarting it. Returns
 * the updated lease.
 *
 * @example
 * ```ts
 * import { exposePort, findLease } from "./lease.ts";
 * await exposePort(await findLease("pr-42/api"), 9090);
 * ```
 */
export async function exposePort(
  lease: Lease,
  port: number,
  options: CrabboxOptions = {},
): Promise<Lease> {
  validatePort(port);
  const rt = await resolveRuntime(options);
  const expose = [...new Set([...lease.expose, port])].sort((a, b) => a - b);
  parseExposedPorts(expose.map(String));
  const updated = await updateClaim(rt.home, lease.id, (c) => {
    const base = c ?? lease;
    const labels = encodeLabels({
      leaseId: base.id,
      crew: base.crew,
      slug: base.slug,
      expose,
      owner: base.owner,
      tailscale: base.tailscale,
    });
    return {
      ...base,
      expose,
      labels: { ...base.labels, [LabelKey.expose]: labels[LabelKey.expose] },
    };
  });
  const result = updated ?? { ...lease, expose };
  if (result.crew !== undefined && !lease.expose.includes(port)) {
    const { addLiveForward } = await import("./mesh_connect.ts");
    await addLiveForward(rt.home, result, port, options);
  }
  return result;
}
