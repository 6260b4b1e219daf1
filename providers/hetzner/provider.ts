/**
 * The `hetzner` provider: Hetzner Cloud servers over the documented API v1
 * (`https://api.hetzner.cloud/v1`, `Authorization: Bearer $HCLOUD_TOKEN`).
 * This is the fetch shell; request bodies, parsers and error mapping live in
 * `api.ts`.
 *
 * Config (`hetzner:` in config.yaml): `serverType` (default `cpx22`),
 * `image` (default `ubuntu-24.04`), `location` (default: Hetzner's choice),
 * `sshPort` (22), `sshUser` (`root`). Env: `HCLOUD_TOKEN`,
 * `CRABBOX_HETZNER_API_URL`.
 *
 * @example
 * ```ts
 * import { createHetznerProvider } from "./provider.ts";
 * const hetzner = createHetznerProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: { location: "fsn1" },
 *   fetch, log: console.error,
 * });
 * const boxes = await hetzner.list({ crew: "pr-42" });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import type { Labels } from "../../lib/core/labels.ts";
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
import { fetchWithRetry, parseJsonAnswer } from "../cloud/http.ts";
import {
  createServerBody,
  HETZNER_DEFAULT_SERVER_TYPE,
  hetznerError,
  hetznerKeyName,
  type HetznerServer,
  hetznerServerName,
  type HetznerSettings,
  hetznerSettings,
  hetznerToken,
  labelSelector,
  type Page,
  pagePath,
  parseAction,
  parseApiError,
  parsePage,
  parseServer,
  parseSshKey,
  rateLimitDelayMs,
  serverToLease,
  sshKeyFingerprint,
} from "./api.ts";
import type { CreateSpec, Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";

interface CallOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Return `undefined` on 404 instead of throwing. */
  notFoundOk?: boolean;
  /** Retry this POST on 5xx (only when a retry is safe). */
  retryOnServerError?: boolean;
  serverType?: string;
  location?: string;
}

const MAX_PAGES = 1000;

/**
 * Build the Hetzner provider. `options` injects the SSH wait, poll interval,
 * sleep and clock (tests); production uses the defaults.
 *
 * @example
 * ```ts
 * import { createHetznerProvider } from "./provider.ts";
 * const p = createHetznerProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false, pollIntervalMs: 10 },
 * );
 * p.features.has("cloud-init"); // true
 * ```
 */
export function createHetznerProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 3000);
  let cached: HetznerSettings | undefined;
  const settings = () => cached ??= hetznerSettings(ctx.env, ctx.config);

  async function call(method: string, path: string, opts: CallOptions = {}): Promise<unknown> {
    const token = hetznerToken(ctx.env);
    const s = settings();
    const what = `${method} ${path.split("?")[0]}`;
    const answer = await fetchWithRetry({
      provider: "hetzner",
      api: "the Hetzner API",
      host: new URL(s.baseUrl).host,
      what,
      rt,
      log: ctx.log,
      signal: opts.signal,
      secrets: () => [token],
      request: [
        opts.body === undefined ? undefined : JSON.stringify(opts.body),
        path.split("?")[1],
      ],
      send: () =>
        ctx.fetch(`${s.baseUrl}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: "application/json",
            ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: opts.signal,
        }),
      retryDelayMs: (a, attempt) => {
        if (a.status === 429) return rateLimitDelayMs(a.headers, rt.now(), 250, rt.maxBackoffMs);
        const safe = method !== "POST" || opts.retryOnServerError === true;
        return a.status >= 500 && safe ? backoffMs(attempt, 500, rt.maxBackoffMs) : undefined;
      },
    });
    if (answer.ok) return parseJsonAnswer("hetzner", "Hetzner", answer.text, what);
    if (answer.status === 404 && opts.notFoundOk) return undefined;
    throw hetznerError(answer.status, parseApiError(answer.status, answer.text), {
      method,
      path,
      serverType: opts.serverType,
      location: opts.location,
    });
  }

  async function collect<T>(
    collection: string,
    query: Record<string, string>,
    key: string,
    parse: (v: unknown) => T,
    signal?: AbortSignal,
  ): Promise<T[]> {
    const out: T[] = [];
    let page: number | undefined = 1;
    for (let n = 0; page !== undefined; n++) {
      if (n >= MAX_PAGES) throw timeoutError("hetzner", `pagination of ${collection}`, 0);
      const json = await call("GET", pagePath(collection, query, page), { signal });
      const p: Page<T> = parsePage(json, key, parse);
      out.push(...p.items);
      page = p.nextPage !== undefined && p.nextPage > page ? p.nextPage : undefined;
    }
    return out;
  }

  const getServer = async (id: string, signal?: AbortSignal) => {
    const json = await call("GET", `/servers/${id}`, { signal, notFoundOk: true });
    return json === undefined ? undefined : parseServer((json as { server?: unknown }).server);
  };

  async function ensureSshKey(owner: BoxOwner, publicKey: string, signal?: AbortSignal) {
    const fingerprint = sshKeyFingerprint(publicKey);
    const find = async () =>
      (await collect("/ssh_keys", { fingerprint }, "ssh_keys", parseSshKey, signal))[0];
    const existing = await find();
    if (existing) return existing.id;
    try {
      const json = await call("POST", "/ssh_keys", {
        signal,
        body: {
          name: hetznerKeyName(owner, fingerprint),
          public_key: publicKey.trim(),
          labels: sharedResourceLabels(owner),
        },
      });
      return parseSshKey((json as { ssh_key?: unknown }).ssh_key).id;
    } catch (e) {
      // A concurrent create of the same crew uploaded it first: reuse that one.
      const raced = e instanceof CrabboxError && e.code === "hetzner_uniqueness_error"
        ? await find()
        : undefined;
      if (raced) return raced.id;
      throw e;
    }
  }

  /** Settings with this box's `--type`/`--location`/`--image`/`--arch` applied. */
  function shapedSettings(spec: CreateSpec) {
    const s = settings();
    const shape = spec.shape ?? {};
    const armDefault = shape.arch === "arm" && !s.serverType.startsWith("cax");
    const x86Default = shape.arch === "x86" && s.serverType.startsWith("cax");
    return {
      ...s,
      serverType: shape.type ??
        (armDefault ? "cax11" : x86Default ? HETZNER_DEFAULT_SERVER_TYPE : s.serverType),
      location: shape.location ?? s.location,
      image: shape.image ?? s.image,
    };
  }

  async function postServer(spec: CreateSpec, signal?: AbortSignal) {
    const s = shapedSettings(spec);
    const owner = { crew: spec.crew, leaseId: spec.leaseId };
    const opts = { signal, serverType: s.serverType, location: s.location };
    for (let attempt = 0;; attempt++) {
      const keyId = await ensureSshKey(owner, spec.sshPublicKey, signal);
      try {
        const json = await call("POST", "/servers", {
          ...opts,
          body: createServerBody(spec, s, keyId),
        }) as { server?: unknown; action?: unknown };
        return {
          server: parseServer(json.server),
          actionId: json.action === undefined ? undefined : parseAction(json.action).id,
        };
      } catch (e) {
        const fields = (e instanceof CrabboxError ? e.details?.fields : undefined) as
          | string[]
          | undefined;
        // The crew key vanished (a concurrent release cleaned it up): upload it again once.
        if (
          attempt === 0 && e instanceof CrabboxError && e.code === "hetzner_invalid_input" &&
          fields?.includes("ssh_keys")
        ) continue;
        // A retried POST that did succeed earlier: adopt our own server by its unique name.
        if (e instanceof CrabboxError && e.code === "hetzner_uniqueness_error") {
          const name = hetznerServerName(spec);
          const mine = (await collect("/servers", { name }, "servers", parseServer, signal))
            .find((srv) => srv.labels["crabbox-lease"] === spec.leaseId);
          if (mine) return { server: mine, actionId: undefined };
        }
        throw e;
      }
    }
  }

  async function waitForAction(id: number, signal?: AbortSignal) {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const json = await call("GET", `/actions/${id}`, { signal }) as { action?: unknown };
      const action = parseAction(json.action);
      if (action.status === "success") return;
      if (action.status === "error") {
        throw new CrabboxError(
          "provider",
          "hetzner_action_failed",
          `Hetzner action ${action.command || id} failed: ${action.error ?? "unknown error"}`,
        );
      }
      if (rt.now() >= deadline) {
        throw timeoutError("hetzner", `action ${action.command}`, rt.readyTimeoutMs);
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  async function waitRunning(id: number, signal?: AbortSignal): Promise<HetznerServer> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const server = await getServer(String(id), signal);
      if (!server || server.status === "deleting" || server.status === "off") {
        throw new CrabboxError(
          "provider",
          "hetzner_server_gone",
          `Hetzner server ${id} is ${server?.status ?? "gone"} instead of starting`,
        );
      }
      if (server.status === "running" && server.ipv4) return server;
      if (rt.now() >= deadline) {
        throw timeoutError("hetzner", `server ${id} running with a public IPv4`, rt.readyTimeoutMs);
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  async function deleteServer(id: string, signal?: AbortSignal) {
    await call("DELETE", `/servers/${id}`, { signal, notFoundOk: true });
  }

  /** Delete the crew's SSH keys once no server of the crew is left (besides `goneId`). */
  async function cleanupKeys(owner: BoxOwner, goneId: string, signal?: AbortSignal) {
    const selector = labelSelector(sharedResourceLabels(owner));
    const remaining = (await collect(
      "/servers",
      { label_selector: selector },
      "servers",
      parseServer,
      signal,
    )).filter((s) => String(s.id) !== goneId && s.status !== "deleting");
    if (remaining.length > 0) return;
    const keys = await collect(
      "/ssh_keys",
      { label_selector: selector },
      "ssh_keys",
      parseSshKey,
      signal,
    );
    for (const key of keys) {
      await call("DELETE", `/ssh_keys/${key.id}`, { signal, notFoundOk: true });
      ctx.log(`hetzner: removed SSH key ${key.name} (no server of ${describe(owner)} left)`);
    }
  }

  return {
    name: "hetzner",
    features: new Set(["ssh", "tailscale", "cloud-init"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      const s = shapedSettings(spec);
      const name = hetznerServerName(spec);
      createServerBody(spec, s, 0); // validates user data size before anything is created
      sshKeyFingerprint(spec.sshPublicKey);
      ctx.log(
        `hetzner: creating ${name} (${s.serverType}, ${s.image}, ${s.location ?? "any location"})`,
      );
      const owner = { crew: spec.crew, leaseId: spec.leaseId };
      let createdId: number | undefined;
      try {
        const { server: created, actionId } = await postServer(spec, signal);
        createdId = created.id;
        if (actionId !== undefined) await waitForAction(actionId, signal);
        const server = await waitRunning(created.id, signal);
        const lease = serverToLease(server, s, ctx.home, spec.sshKeyPath);
        if (!lease?.ssh) {
          throw new CrabboxError(
            "provider",
            "hetzner_bad_response",
            `Hetzner server ${server.id} lost its crabbox labels`,
          );
        }
        if (rt.waitForSsh) {
          ctx.log(`hetzner: ${name} is running at ${server.ipv4}; waiting for ssh`);
          await rt.waitForSsh(lease.ssh, {
            knownHostsFile: knownHostsPath(ctx.home, spec),
            timeoutMs: rt.sshTimeoutMs,
            signal,
          });
        }
        return lease;
      } catch (e) {
        const left: string[] = [];
        const keyName = hetznerKeyName(owner, sshKeyFingerprint(spec.sshPublicKey));
        if (createdId !== undefined) {
          ctx.log(`hetzner: create of ${name} failed; deleting server ${createdId}`);
          await deleteServer(String(createdId)).catch((d) => {
            ctx.log(`hetzner: could not delete server ${createdId}: ${(d as Error).message}`);
            left.push(`server ${createdId} (${name})`);
          });
        }
        // The crew key goes too, unless another server of the crew still uses it.
        await cleanupKeys(owner, String(createdId ?? ""), undefined).catch((d) => {
          ctx.log(`hetzner: could not remove SSH key ${keyName}: ${(d as Error).message}`);
          left.push(`SSH key ${keyName}`);
        });
        if (left.length > 0 && !left.some((l) => l.startsWith("SSH key"))) {
          left.push(`SSH key ${keyName}`);
        }
        throw withLeftBehind(e, left);
      }
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const labels: Labels = { crabbox: "true" };
      if (selector.crew !== undefined) labels.crew = assertSelectorValue("crew", selector.crew);
      if (selector.owner !== undefined) {
        labels["crabbox-owner"] = assertSelectorValue("owner", selector.owner);
      }
      const servers = await collect(
        "/servers",
        { label_selector: labelSelector(labels) },
        "servers",
        parseServer,
        signal,
      );
      return servers.map((srv) => serverToLease(srv, settings(), ctx.home))
        .filter((l): l is ProviderLease => l !== undefined);
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!/^[1-9][0-9]{0,18}$/.test(providerId)) return undefined;
      const server = await getServer(providerId, signal);
      return server ? serverToLease(server, settings(), ctx.home) : undefined;
    },

    async updateLabels(lease, labels, signal): Promise<void> {
      if (!/^[1-9][0-9]{0,18}$/.test(lease.providerId)) {
        throw new CrabboxError(
          "usage",
          "bad_provider_id",
          `${JSON.stringify(lease.providerId)} is not a Hetzner server id`,
        );
      }
      await call("PUT", `/servers/${lease.providerId}`, { body: { labels }, signal });
    },

    async delete(lease, signal): Promise<void> {
      if (!/^[1-9][0-9]{0,18}$/.test(lease.providerId)) {
        throw badProviderIdError("hetzner", lease.providerId, "a Hetzner server id");
      }
      const server = await getServer(lease.providerId, signal);
      const owner = ownerOf(lease.labels) ?? { leaseId: lease.leaseId };
      if (server) {
        const actual = ownerOf(server.labels);
        if (actual?.leaseId !== lease.leaseId) {
          throw notOursError(
            "hetzner",
            `Hetzner server ${server.id} (${server.name})`,
            lease.leaseId,
            "deleting",
          );
        }
        if (server.status !== "deleting") await deleteServer(lease.providerId, signal);
        ctx.log(`hetzner: deleted server ${server.id} (${server.name})`);
      }
      await cleanupKeys(owner, lease.providerId, signal);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}

function describe(owner: BoxOwner): string {
  return owner.crew ? `crew ${owner.crew}` : `lease ${owner.leaseId}`;
}
