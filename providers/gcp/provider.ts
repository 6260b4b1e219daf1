/**
 * The `gcp` provider: Compute Engine instances over the REST API v1
 * (`https://compute.googleapis.com/compute/v1`, OAuth 2 bearer tokens from
 * `auth.ts`). This is the fetch shell; bodies, parsers and error mapping live
 * in `api.ts`.
 *
 * Per crew it keeps one firewall rule (`crabbox-crew-<crew>`, TCP `sshPort`
 * to the instances tagged with the same name), created with the first box and
 * deleted with the last. Create and delete return Operations, which are
 * polled until `DONE`; an `error` inside a DONE operation is a failure.
 *
 * Config (`gcp:`): `project`, `zone`, `machineType`, `image`, `network`,
 * `subnetwork`, `sshUser` (`crabbox`), `sshPort` (22),
 * `credentialsFile`. Env: `GOOGLE_OAUTH_ACCESS_TOKEN`,
 * `GOOGLE_APPLICATION_CREDENTIALS`, `CRABBOX_GCP_PROJECT`,
 * `GOOGLE_CLOUD_PROJECT`, `GCP_PROJECT_ID`, `CRABBOX_GCP_ZONE`,
 * `CRABBOX_GCP_MACHINE_TYPE`, `CRABBOX_GCP_IMAGE`, `CRABBOX_GCP_NETWORK`,
 * `CRABBOX_GCP_SUBNET`, `CRABBOX_GCP_SSH_CIDRS`, `CRABBOX_GCP_ROOT_GB`,
 * `CRABBOX_GCP_COMPUTE_URL`.
 *
 * @example
 * ```ts
 * import { createGcpProvider } from "./provider.ts";
 * const gcp = createGcpProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: { project: "my-proj-1" },
 *   fetch, log: console.error,
 * });
 * const boxes = await gcp.list({ crew: "pr-42" });
 * ```
 *
 * @module
 */

import type { Labels } from "../../lib/core/labels.ts";
import { CrabboxError } from "../../lib/core/errors.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import {
  assertSelectorValue,
  backoffMs,
  type BoxOwner,
  type CloudProviderOptions,
  cloudRuntime,
  ownerOf,
  sharedResourceLabels,
  timeoutError,
  withLeftBehind,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { fetchWithRetry, parseJsonAnswer, retryAfterDelayMs } from "../cloud/http.ts";
import type { CreateSpec, Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";
import {
  firewallBody,
  GCP_MAX_RESULTS,
  gcpError,
  gcpFirewallName,
  type GcpInstance,
  gcpInstanceName,
  type GcpOperation,
  type GcpSettings,
  gcpSettings,
  insertInstanceBody,
  instanceToLease,
  isRateLimited,
  labelFilter,
  operationError,
  parseAggregatedPage,
  parseGcpError,
  parseGcpProviderId,
  parseInstance,
  parseOperation,
} from "./api.ts";
import {
  gcpCredentialSource,
  type GcpTokenSource,
  gcpTokenSource,
  type TextReader,
} from "./auth.ts";

/** Options of {@link createGcpProvider}: the cloud knobs plus a key-file reader. */
export interface GcpProviderOptions extends CloudProviderOptions {
  /** Reads the service-account key file (tests inject). */
  readFile?: TextReader;
}

interface CallOptions {
  body?: unknown;
  query?: Record<string, string>;
  signal?: AbortSignal;
  /** Return `undefined` on 404 instead of throwing. */
  notFoundOk?: boolean;
  /** This POST carries a `requestId`, so repeating it after a 5xx is safe. */
  idempotent?: boolean;
}

const MAX_PAGES = 1000;

/**
 * Build the GCP provider.
 *
 * @example
 * ```ts
 * import { createGcpProvider } from "./provider.ts";
 * const p = createGcpProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false, pollIntervalMs: 10 },
 * );
 * p.features.has("tailscale"); // true
 * ```
 */
export function createGcpProvider(
  ctx: ProviderContext,
  options: GcpProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  let tokens: GcpTokenSource | undefined;
  const auth = () =>
    tokens ??= gcpTokenSource({
      source: gcpCredentialSource(ctx.env, ctx.config),
      fetch: ctx.fetch,
      readFile: options.readFile ?? Deno.readTextFile,
      now: rt.now,
    });
  let cached: GcpSettings | undefined;
  const settings = async () =>
    cached ??= gcpSettings(ctx.env, ctx.config, await auth().projectId());
  const proj = (s: GcpSettings) => `/projects/${s.project}`;

  async function call(method: string, path: string, opts: CallOptions = {}): Promise<unknown> {
    const s = await settings();
    const src = auth();
    const url = new URL(`${s.computeUrl}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    let token = "";
    let reauthorized = false;
    const answer = await fetchWithRetry({
      provider: "gcp",
      api: "the GCP compute API",
      host: url.host,
      what: `${method} ${path}`,
      rt,
      log: ctx.log,
      signal: opts.signal,
      secrets: () => [token],
      request: [opts.body === undefined ? undefined : JSON.stringify(opts.body), url.search],
      send: async () => {
        token = await src.token(opts.signal);
        return await ctx.fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: "application/json",
            ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: opts.signal,
        });
      },
      retryDelayMs: (a, attempt) => {
        // An expired cached token: fetch a fresh one once.
        if (a.status === 401 && !reauthorized && src.variable !== "GOOGLE_OAUTH_ACCESS_TOKEN") {
          reauthorized = true;
          src.invalidate();
          return 0;
        }
        if (isRateLimited(a.status, parseGcpError(a.status, a.text))) {
          return retryAfterDelayMs(a.headers, attempt, rt);
        }
        const safe = method !== "POST" || opts.idempotent === true;
        return a.status >= 500 && safe ? backoffMs(attempt, 500, rt.maxBackoffMs) : undefined;
      },
    });
    if (answer.ok) return parseJsonAnswer("gcp", "GCP", answer.text, `${method} ${path}`);
    if (answer.status === 404 && opts.notFoundOk) return undefined;
    throw gcpError(answer.status, parseGcpError(answer.status, answer.text), {
      method,
      path,
      credentials: src.variable,
      machineType: s.machineType,
      zone: s.zone,
    });
  }

  async function waitOperation(
    first: unknown,
    what: string,
    signal?: AbortSignal,
    request?: unknown,
  ): Promise<void> {
    const s = await settings();
    let op: GcpOperation = parseOperation(first);
    const deadline = rt.now() + rt.readyTimeoutMs;
    for (let n = 0; op.status !== "DONE"; n++) {
      if (rt.now() >= deadline) {
        throw timeoutError("gcp", `operation ${op.name} (${what})`, rt.readyTimeoutMs);
      }
      // operations.wait blocks server-side until DONE (or ~2 min); it is best effort and may
      // answer early, so a short pause keeps an early answer from turning into a busy loop.
      if (n > 0) await rt.sleep(Math.min(rt.pollIntervalMs, 500), signal);
      op = parseOperation(
        await call("POST", `${proj(s)}/${op.scope}/operations/${op.name}/wait`, {
          signal,
          idempotent: true,
        }),
      );
    }
    if (op.errors.length > 0) {
      throw operationError(
        op,
        { what, machineType: s.machineType, zone: s.zone },
        request === undefined ? undefined : JSON.stringify(request),
      );
    }
  }

  async function listInstances(labels: Labels, signal?: AbortSignal): Promise<GcpInstance[]> {
    const s = await settings();
    const out: GcpInstance[] = [];
    let pageToken: string | undefined;
    for (let n = 0;; n++) {
      if (n >= MAX_PAGES) throw timeoutError("gcp", "pagination of aggregated/instances", 0);
      const query: Record<string, string> = {
        filter: labelFilter(labels),
        maxResults: String(GCP_MAX_RESULTS),
        returnPartialSuccess: "true",
      };
      if (pageToken) query.pageToken = pageToken;
      const page = parseAggregatedPage(
        await call("GET", `${proj(s)}/aggregated/instances`, { query, signal }),
      );
      if (page.unreachable.length > 0) {
        ctx.log(`gcp: could not list ${page.unreachable.join(", ")} (GCP says unreachable)`);
      }
      out.push(...page.instances);
      if (!page.nextPageToken) return out;
      pageToken = page.nextPageToken;
    }
  }

  async function getInstance(zone: string, name: string, signal?: AbortSignal) {
    const s = await settings();
    const json = await call("GET", `${proj(s)}/zones/${zone}/instances/${name}`, {
      signal,
      notFoundOk: true,
    });
    return json === undefined ? undefined : parseInstance(json);
  }

  /** Create the crew's firewall rule unless it exists; true when this call created it. */
  async function ensureFirewall(owner: BoxOwner, signal?: AbortSignal): Promise<boolean> {
    const s = await settings();
    const name = gcpFirewallName(owner);
    const found = await call("GET", `${proj(s)}/global/firewalls/${name}`, {
      signal,
      notFoundOk: true,
    });
    if (found !== undefined) return false;
    try {
      const op = await call("POST", `${proj(s)}/global/firewalls`, {
        signal,
        body: firewallBody(owner, s),
        query: { requestId: crypto.randomUUID() },
        idempotent: true,
      });
      await waitOperation(op, `create firewall rule ${name}`, signal);
      ctx.log(`gcp: created firewall rule ${name} (tcp ${s.sshPort})`);
      return true;
    } catch (e) {
      // A concurrent create of the same crew made it first.
      if (e instanceof CrabboxError && e.code === "gcp_already_exists") return false;
      throw e;
    }
  }

  async function deleteInstance(zone: string, name: string, signal?: AbortSignal) {
    const s = await settings();
    const op = await call("DELETE", `${proj(s)}/zones/${zone}/instances/${name}`, {
      signal,
      notFoundOk: true,
      query: { requestId: crypto.randomUUID() },
    });
    if (op !== undefined) await waitOperation(op, `delete instance ${name}`, signal);
  }

  /** Delete the crew's firewall rule when no instance of the crew is left besides `goneName`. */
  async function cleanupShared(
    owner: BoxOwner,
    goneName: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const s = await settings();
    const remaining = (await listInstances(sharedResourceLabels(owner), signal))
      .filter((i) => i.name !== goneName);
    if (remaining.length > 0) return;
    const name = gcpFirewallName(owner);
    const op = await call("DELETE", `${proj(s)}/global/firewalls/${name}`, {
      signal,
      notFoundOk: true,
      query: { requestId: crypto.randomUUID() },
    });
    if (op !== undefined) {
      await waitOperation(op, `delete firewall rule ${name}`, signal);
      ctx.log(`gcp: removed firewall rule ${name} (no instance of ${describe(owner)} left)`);
    }
  }

  async function waitRunning(
    zone: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<GcpInstance> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const inst = await getInstance(zone, name, signal);
      if (!inst || ["STOPPING", "STOPPED", "TERMINATED", "SUSPENDED"].includes(inst.status)) {
        throw new CrabboxError(
          "provider",
          "gcp_instance_gone",
          `GCP instance ${name} is ${inst?.status ?? "gone"} instead of starting`,
        );
      }
      if (inst.status === "RUNNING" && inst.natIp) return inst;
      if (rt.now() >= deadline) {
        throw timeoutError(
          "gcp",
          `instance ${name} RUNNING with an external IP`,
          rt.readyTimeoutMs,
        );
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  return {
    name: "gcp",
    features: new Set(["ssh", "tailscale", "cloud-init"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      const s = await settings();
      const body = insertInstanceBody(spec, s); // validates before anything is created
      const name = gcpInstanceName(spec);
      const owner = { crew: spec.crew, leaseId: spec.leaseId };
      ctx.log(`gcp: creating ${name} (${s.machineType} in ${s.zone})`);
      const madeFirewall = await ensureFirewall(owner, signal);
      let inserted = false;
      try {
        try {
          const op = await call("POST", `${proj(s)}/zones/${s.zone}/instances`, {
            signal,
            body,
            query: { requestId: crypto.randomUUID() },
            idempotent: true,
          });
          inserted = true;
          await waitOperation(op, `create instance ${name}`, signal, body);
        } catch (e) {
          // Our own earlier insert (same unique name and lease) is fine to adopt.
          const mine = e instanceof CrabboxError && e.code === "gcp_already_exists" &&
            ownerOf((await getInstance(s.zone, name, signal))?.labels)?.leaseId === spec.leaseId;
          if (!mine) throw e;
          inserted = true;
        }
        const inst = await waitRunning(s.zone, name, signal);
        const lease = instanceToLease(inst, s, ctx.home, spec.sshKeyPath);
        if (!lease?.ssh) {
          throw new CrabboxError(
            "provider",
            "gcp_bad_response",
            `GCP instance ${name} lost its crabbox labels`,
          );
        }
        if (rt.waitForSsh) {
          ctx.log(`gcp: ${name} is running at ${inst.natIp}; waiting for ssh`);
          await rt.waitForSsh(lease.ssh, {
            knownHostsFile: knownHostsPath(ctx.home, spec),
            timeoutMs: rt.sshTimeoutMs,
            signal,
          });
        }
        return lease;
      } catch (e) {
        throw await rollback(e, { inserted, madeFirewall });
      }

      async function rollback(
        e: unknown,
        made: { inserted: boolean; madeFirewall: boolean },
      ): Promise<unknown> {
        const left: string[] = [];
        if (made.inserted) {
          ctx.log(`gcp: create of ${name} failed; deleting it`);
          await deleteInstance(s.zone, name).catch(() => left.push(`instance ${s.zone}/${name}`));
        }
        await cleanupShared(owner, name).catch(() =>
          left.push(`firewall rule ${gcpFirewallName(owner)}`)
        );
        return withLeftBehind(e, left);
      }
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const labels: Labels = { crabbox: "true" };
      if (selector.crew !== undefined) labels.crew = assertSelectorValue("crew", selector.crew);
      if (selector.owner !== undefined) {
        labels["crabbox-owner"] = assertSelectorValue("owner", selector.owner);
      }
      const s = await settings();
      return (await listInstances(labels, signal))
        .map((i) => instanceToLease(i, s, ctx.home))
        .filter((l): l is ProviderLease => l !== undefined)
        .filter((l) => selector.crew === undefined || l.labels.crew === selector.crew);
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      const id = parseGcpProviderId(providerId);
      if (!id) return undefined;
      const inst = await getInstance(id.zone, id.name, signal);
      return inst ? instanceToLease(inst, await settings(), ctx.home) : undefined;
    },

    async delete(lease, signal): Promise<void> {
      const id = parseGcpProviderId(lease.providerId);
      if (!id) {
        throw badProviderIdError("gcp", lease.providerId, "a GCP instance id (<zone>/<name>)");
      }
      const inst = await getInstance(id.zone, id.name, signal);
      const owner = ownerOf(lease.labels) ?? { leaseId: lease.leaseId };
      if (inst) {
        if (ownerOf(inst.labels)?.leaseId !== lease.leaseId) {
          throw notOursError("gcp", `GCP instance ${inst.name}`, lease.leaseId, "deleting");
        }
        await deleteInstance(id.zone, id.name, signal);
        ctx.log(`gcp: deleted instance ${id.zone}/${id.name}`);
      }
      await cleanupShared(owner, id.name, signal);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}

function describe(owner: BoxOwner): string {
  return owner.crew ? `crew ${owner.crew}` : `lease ${owner.leaseId}`;
}
