/**
 * Creating leases: validate every member first, settle the tailnet (policy
 * bootstrap, auth keys) next, then create boxes with bounded parallelism.
 *
 * @module
 */

import { runBounded } from "../core/async.ts";
import { parseSeconds } from "../core/duration.ts";
import { CrabboxError, usageError } from "../core/errors.ts";
import { parseExposedPorts } from "../core/expose.ts";
import { encodeLabels, LabelKey, tailnetIpv4Label } from "../core/labels.ts";
import { readLifetime, unixNow } from "../core/lifetime.ts";
import {
  crewTag,
  newLeaseId,
  normalizeCrewName,
  normalizeSlug,
  ownerFor,
  roleOf,
} from "../core/names.ts";
import { type Shape, shapeLabels, validateShape } from "../core/shape.ts";
import { chooseSlugs, type SlugRequest } from "../core/slugs.ts";
import type { Lifetime } from "../core/lifetime.ts";
import { type Lease, listClaims, removeClaim, reserveClaims, saveClaim } from "./claims.ts";
import {
  checkProviderConfig,
  type CrabboxOptions,
  lifetimeDefaults,
  providerFeatures,
  providerShapeRules,
  resolveRuntime,
  type Runtime,
} from "../runtime.ts";
import { clientKeyDir, ensureClientKey } from "../ssh/keys.ts";
import { procStartTime } from "../process/identity.ts";
import { renderTailnetHostname, type TailnetHostname } from "../tailnet/hostname.ts";
import {
  bootstrapCrewPolicy,
  obtainAuthKey,
  type TailnetJoin,
  type TailnetOps,
} from "../tailnet/join.ts";
import { defaultTailnetOps } from "../tailnet/ops.ts";
import { providersWith } from "../../providers/registry.ts";
import { releaseLeases, type ReleaseResult } from "./release.ts";
import { renderCloudInit } from "./cloud_init.ts";
import { awaitReady } from "./readiness.ts";
import { runOnLease } from "./exec.ts";

/** One member to lease. */
export interface MemberSpec {
  /**
   * Member name within the crew (normalized like a crew name). Without it:
   * the next free `<role>-<n>` when `role` is given, else a readable
   * generated name (`brisk-otter`), chosen under the claim store lock.
   */
  slug?: string;
  /** With no `slug`: take the next free `<role>-<n>` (`worker` → `worker-3`). */
  role?: string;
  /** Provider name (default: config `provider`, else `local`). */
  provider?: string;
  /** Ports to expose over the SSH-mesh: numbers or `--expose` strings (`"80,443"`). */
  expose?: readonly (number | string)[];
  /** Join the tailnet (providers with the `tailscale` feature only). */
  tailscale?: boolean;
  /** Shell script to run on the box once it is up. */
  init?: string;
  /** Lifetime: a duration (`"90m"`) or seconds; 0 = none; default: config, else the provider's. */
  ttl?: string | number;
  /** Idle timeout: a duration or seconds; 0 = none; default: config, else the provider's. */
  idleTimeout?: string | number;
  /** Machine type, location, image, arch (providers whose registry entry lists them). */
  shape?: Shape;
}

/** A member spec after validation. */
export interface ValidatedMember {
  /** Normalized slug (empty until chosen when `pick` is set). */
  slug: string;
  /** Role derived from the slug (the requested role when `pick` is set). */
  role: string;
  /** How the slug is chosen when none was given. */
  pick?: Exclude<SlugRequest, { slug: string }>;
  /** Provider name. */
  provider: string;
  /** Sorted distinct ports. */
  expose: number[];
  /** Tailnet requested. */
  tailscale: boolean;
  /** Init script. */
  init?: string;
  /** TTL in seconds (0 = none); undefined: the default. */
  ttl?: number;
  /** Idle timeout in seconds (0 = none); undefined: the default. */
  idleTimeout?: number;
  /** Validated shape (empty: the provider's configured defaults). */
  shape: Shape;
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
  /** Return as soon as ssh answers: no first-boot wait, no tailnet read (`--no-wait`). */
  noWait?: boolean;
  /** Bound of the first-boot wait in ms (`--wait-timeout`; default 10 min). */
  waitTimeoutMs?: number;
}

/**
 * A leased crew. Disposing it releases every member.
 *
 * @example
 * ```ts
 * import { leaseCrew } from "@crabbox/crabbox";
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

/**
 * Validate a member spec completely (names, ports, provider, features) before
 * anything is created. Throws a usage error on the first problem.
 *
 * @example
 * ```ts
 * import { validateMember } from "./create.ts";
 * validateMember({ slug: "Worker 2", expose: ["8080"] }, "local");
 * // { slug: "worker-2", role: "worker", provider: "local", expose: [8080], tailscale: false }
 * ```
 */
export function validateMember(
  spec: MemberSpec,
  defaultProvider: string,
  options: CrabboxOptions = {},
): ValidatedMember {
  if (spec.slug !== undefined && spec.role !== undefined) {
    throw usageError("conflicting_slug", "give --slug or --role, not both");
  }
  const slug = spec.slug === undefined ? "" : normalizeSlug(spec.slug);
  const role = spec.role === undefined ? undefined : normalizeSlug(spec.role);
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
  const shape = validateShape(spec.shape ?? {}, providerShapeRules(provider), provider);
  const ttl = secondsOf(spec.ttl, "--ttl");
  const idleTimeout = secondsOf(spec.idleTimeout, "--idle-timeout");
  return {
    slug,
    role: role ?? (slug ? roleOf(slug) : ""),
    ...(slug ? {} : { pick: role !== undefined ? { role } : { generated: true as const } }),
    provider,
    expose,
    tailscale: spec.tailscale ?? false,
    init: spec.init,
    shape,
    ...(ttl === undefined ? {} : { ttl }),
    ...(idleTimeout === undefined ? {} : { idleTimeout }),
  };
}

function secondsOf(value: string | number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw usageError("bad_duration", `${what} ${value} must be whole seconds >= 0`);
    }
    return value;
  }
  return parseSeconds(value, what);
}

/**
 * The lifetime labels of a member created at `now`: its TTL and idle timeout,
 * else config's, else the provider's default (0 = none).
 */
export function memberLifetime(rt: Runtime, member: ValidatedMember, now: number): Lifetime {
  const defaults = lifetimeDefaults(rt.config, member.provider);
  const ttl = member.ttl ?? defaults.ttl;
  const idle = member.idleTimeout ?? defaults.idleTimeout;
  return {
    ...(ttl > 0 ? { expiresAt: now + ttl } : {}),
    ...(idle > 0 ? { idleTimeout: idle } : {}),
    touchedAt: now,
  };
}

/** A validated member with what must be decided before anything is created. */
interface PreparedMember extends ValidatedMember {
  /** Lease id, chosen up front. */
  id: string;
  /** The reserved claim (state `creating`), once the slug is chosen. */
  draft?: Lease;
  /** Auth key and tags, for `--tailscale` members (secret; never stored). */
  join?: TailnetJoin;
  /** The crew tag, when the member joins the tailnet in a crew. */
  crewTag?: string;
  /** The rendered tailnet host name (`tailscale.hostname`), for `--tailscale` members. */
  tailnetName?: TailnetHostname;
  /** `tailscale.loginServer` (Headscale), when configured. */
  loginServer?: string;
}

/**
 * Everything that can fail without creating anything, in order: the tailnet
 * host names (template rendered and checked), a key for a self-hosted
 * control server, a taken slug, the policy bootstrap on the crew's first
 * lease (skipped with `tailscale.loginServer`), then one auth key per tailnet
 * member.
 */
async function prepareMembers(
  rt: Runtime,
  options: LeaseOptions,
  crew: string | undefined,
  members: readonly ValidatedMember[],
  owner: string,
): Promise<PreparedMember[]> {
  const prepared: PreparedMember[] = members.map((m) => ({ ...m, id: newLeaseId() }));
  const now = unixNow();
  await reserveClaims(rt.home, crew, (taken, holders) => {
    const slugs = chooseSlugs(prepared.map((m) => m.pick ?? { slug: m.slug }), taken, {
      holders,
      scope: crew === undefined ? "this machine" : `crew ${crew}`,
    });
    return prepared.map((m, i) => {
      m.slug = slugs[i];
      m.role = roleOf(slugs[i]);
      m.draft = draftFor(rt, crew, m, owner, now);
      return m.draft;
    });
  });
  if (!prepared.some((m) => m.tailscale)) return prepared;
  try {
    await prepareTailnet(rt, options, crew, prepared, owner);
  } catch (e) {
    for (const m of prepared) await removeClaim(rt.home, m.id).catch(() => {});
    throw e;
  }
  return prepared;
}

/** Policy bootstrap on the crew's first lease, then one auth key per tailnet member. */
async function prepareTailnet(
  rt: Runtime,
  options: LeaseOptions,
  crew: string | undefined,
  prepared: PreparedMember[],
  owner: string,
): Promise<void> {
  const ours = new Set(prepared.map((m) => m.id));
  const loginServer = rt.config.tailscale.loginServer;
  for (const m of prepared) {
    if (!m.tailscale) continue;
    m.tailnetName = renderTailnetHostname(rt.config.tailscale.hostname, {
      crew,
      slug: m.slug,
      owner,
    });
    m.loginServer = loginServer;
  }
  if (loginServer && !rt.env("CRABBOX_TAILSCALE_AUTH_KEY")?.trim()) {
    throw new CrabboxError(
      "credentials",
      "no_tailscale_key",
      `tailscale.loginServer is set (${loginServer}): crabbox cannot mint keys for a self-hosted control server; set CRABBOX_TAILSCALE_AUTH_KEY to a pre-auth key from it`,
    );
  }
  const ops = options.tailnet ?? await defaultTailnetOps(rt);
  const tag = crew === undefined ? undefined : crewTag(owner, crew);
  if (crew !== undefined && tag !== undefined && loginServer) {
    rt.log(
      `tailnet policy: tailscale.loginServer is set (${loginServer}), not a Tailscale-compatible policy API; add the rows for ${tag} yourself (crabbox doctor --crew ${crew} prints them)`,
    );
  } else if (crew !== undefined && tag !== undefined) {
    await bootstrapCrewPolicy(
      rt,
      ops,
      crew,
      tag,
      // Rows exist once a --tailscale member was created: a crew whose earlier
      // members are local/ssh boxes (no tailnet) still gets them now. The
      // claims this call reserved a moment ago do not count.
      async () =>
        (await listClaims(rt.home)).some((c) =>
          c.crew === crew && c.tailscale && c.state !== "failed" && !ours.has(c.id)
        ),
    );
  }
  const tags = [...rt.config.tailscale.tags, ...(tag ? [tag] : [])];
  for (const m of prepared) {
    if (!m.tailscale) continue;
    m.join = { authKey: await obtainAuthKey(rt, ops, tags, m.slug), tags };
    m.crewTag = tag;
  }
}

/** The claim of a member about to be created (state `creating`). */
function draftFor(
  rt: Runtime,
  crew: string | undefined,
  member: PreparedMember,
  owner: string,
  now: number,
): Lease {
  const lifetime = memberLifetime(rt, member, now);
  return {
    id: member.id,
    provider: member.provider,
    providerId: "",
    crew,
    slug: member.slug,
    role: member.role,
    owner,
    labels: {
      ...encodeLabels({
        leaseId: member.id,
        crew,
        slug: member.slug,
        expose: member.expose,
        owner,
        tailscale: member.tailscale,
        lifetime,
      }),
      ...shapeLabels(member.shape),
    },
    expose: member.expose,
    tailscale: member.tailscale,
    createdAt: new Date(now * 1000).toISOString(),
    state: "creating",
    // Who creates it: a claim left in `creating` by a dead creator is a failed create.
    creator: { pid: Deno.pid, startTime: procStartTime(Deno.pid) ?? "" },
  };
}

function userDataFor(
  rt: CrabboxOptions,
  member: PreparedMember,
  crew: string | undefined,
  sshPublicKey: string,
  lifetime: Lifetime,
): string | undefined {
  if (!providerFeatures(rt, member.provider).has("cloud-init")) return undefined;
  return renderCloudInit({
    slug: member.slug,
    crew,
    sshPublicKey,
    tailscale: member.join
      ? {
        authKey: member.join.authKey,
        tags: member.join.tags,
        hostname: member.tailnetName?.hostname,
        namePattern: member.tailnetName &&
          `${member.tailnetName.prefix}*${member.tailnetName.suffix}`,
        loginServer: member.loginServer,
      }
      : undefined,
    crewTag: member.crewTag,
    init: member.init,
    lifetime: { expiresAt: lifetime.expiresAt, idleTimeout: lifetime.idleTimeout },
  });
}

async function createMember(
  rt: Runtime,
  options: LeaseOptions,
  crew: string | undefined,
  member: PreparedMember,
): Promise<Lease> {
  const id = member.id;
  const draft = member.draft!;
  const labels = draft.labels;
  const lifetime = readLifetime(labels);
  let created: Lease;
  let userData: string | undefined;
  try {
    const provider = await rt.provider(member.provider);
    const key = await ensureClientKey(rt.home, { crew, leaseId: id }, { process: rt.process });
    userData = userDataFor(options, member, crew, key.publicKey, lifetime);
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
      ...(Object.keys(member.shape).length > 0 ? { shape: member.shape } : {}),
    }, rt.signal);
    const lease: Lease = {
      ...draft,
      providerId: pl.providerId,
      // A target that names its identity keeps it; otherwise it uses the crew key.
      ssh: pl.ssh
        ? (pl.ssh.identity || pl.ssh.keyPath ? pl.ssh : { ...pl.ssh, keyPath: key.keyPath })
        : undefined,
      tailnet: member.join
        ? {
          hostname: member.tailnetName?.hostname ?? `crabbox-${member.slug}`,
          tags: member.join.tags,
          ...pl.tailnet,
        }
        : pl.tailnet,
      data: pl.data,
      state: "active",
      creator: undefined,
    };
    await saveClaim(rt.home, lease);
    created = lease;
  } catch (e) {
    await removeClaim(rt.home, id).catch(() => {});
    if (crew === undefined) {
      // A crew-less lease has its own key dir: it goes with the failed create.
      await Deno.remove(clientKeyDir(rt.home, { leaseId: id }), { recursive: true }).catch(
        () => {},
      );
    }
    throw e;
  }
  return await recordReadiness(rt, options, created, member, userData !== undefined);
}

/**
 * Wait for a created box to be ready (first boot, tailnet join) and record
 * its tailnet facts in the claim. A failure leaves the box and its claim in
 * place: the error says how to release it.
 */
async function recordReadiness(
  rt: Runtime,
  options: LeaseOptions,
  lease: Lease,
  member: PreparedMember,
  cloudInit: boolean,
): Promise<Lease> {
  if (!lease.ssh || (!cloudInit && !member.join)) return lease;
  rt.log(
    options.noWait
      ? `${lease.slug}: not waiting for its first boot (--no-wait)`
      : `${lease.slug}: waiting for its first boot${member.join ? " and tailnet join" : ""}…`,
  );
  const ready = await awaitReady(
    {
      run: (command, signal) => runOnLease(lease, command, { ...options, signal }),
    },
    {
      who: `${lease.crew ? `${lease.crew}/` : ""}${lease.slug}`,
      leaseId: lease.id,
      cloudInit,
      tailnet: member.join !== undefined,
    },
    {
      noWait: options.noWait,
      waitTimeoutMs: options.waitTimeoutMs,
      signal: rt.signal,
      secrets: member.join ? [member.join.authKey] : [],
    },
  );
  if (!ready.tailnet) return lease;
  const label = ready.tailnet.ipv4 ? tailnetIpv4Label(ready.tailnet.ipv4) : undefined;
  const labels = label ? { ...lease.labels, [LabelKey.tailnetIpv4]: label } : lease.labels;
  const updated: Lease = { ...lease, labels, tailnet: { ...lease.tailnet, ...ready.tailnet } };
  await saveClaim(rt.home, updated);
  const provider = await rt.provider(lease.provider);
  if (label && provider.updateLabels) {
    // So another machine listing the crew sees the address too; best effort.
    await provider.updateLabels(
      { providerId: lease.providerId, leaseId: lease.id, labels: lease.labels, state: "running" },
      labels,
      rt.signal,
    ).catch((e) =>
      rt.log(
        `${lease.slug}: could not record the tailnet address in the ${lease.provider} labels: ${
          (e as Error).message.split("\n")[0]
        }`,
      )
    );
  }
  rt.log(`${lease.slug}: on the tailnet as ${ready.tailnet.fqdn ?? ready.tailnet.ipv4}`);
  return updated;
}

/**
 * Lease a single box (optionally into a crew). Everything is validated before
 * anything is created.
 *
 * @example
 * ```ts
 * import { leaseBox } from "@crabbox/crabbox";
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
  await checkProviderConfig(rt, options, member.provider);
  const owner = await ownerFor({ env: rt.env });
  const [prepared] = await prepareMembers(rt, options, crew, [member], owner);
  const lease = await createMember(rt, options, crew, prepared);
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
 * import { leaseCrew } from "@crabbox/crabbox";
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
    if (m.pick) continue;
    if (seen.has(m.slug)) throw usageError("duplicate_slug", `slug ${m.slug} is given twice`);
    seen.add(m.slug);
  }
  for (const p of new Set(validated.map((m) => m.provider))) {
    await checkProviderConfig(rt, options, p);
  }
  const owner = await ownerFor({ env: rt.env });
  const prepared = await prepareMembers(rt, options, crewName, validated, owner);
  const results = await runBounded(prepared, options.concurrency ?? 4, async (m) => {
    const lease = await createMember(rt, options, crewName, m);
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
