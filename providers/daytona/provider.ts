/**
 * The `daytona` provider: Daytona sandboxes with the reserved labels, reached
 * through Daytona's SSH gateway where a short-lived access token
 * (`POST /sandbox/{id}/ssh-access`) is the user name. The token is a
 * credential: it is stored 0600 under the lease as an ssh_config fragment
 * (`User …`), handed to ssh with `-F`, never logged or put in a claim, and
 * refreshed through {@link Provider.refreshSsh} when it expires. Request
 * bodies and parsers live in `api.ts`.
 *
 * Env: `DAYTONA_API_KEY` (or `…_JWT_TOKEN` + `…_ORGANIZATION_ID`),
 * `DAYTONA_SNAPSHOT`, `DAYTONA_TARGET`, `CRABBOX_DAYTONA_USER`,
 * `CRABBOX_DAYTONA_SSH_GATEWAY_HOST`, `CRABBOX_DAYTONA_SSH_ACCESS_MINUTES`,
 * `CRABBOX_DAYTONA_API_URL` (each also as `CRABBOX_DAYTONA_*`).
 *
 * @example
 * ```ts
 * import { createDaytonaProvider } from "./provider.ts";
 * const daytona = createDaytonaProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: { snapshot: "daytonaio/sandbox:0.4.3" },
 *   fetch, log: console.error,
 * });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { dirOf, joinPath, readJsonFile, removeFile, writeJsonAtomic } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { leaseUserConfigPath, removeLeaseUser, storeLeaseUser } from "../../lib/ssh/keys.ts";
import {
  backoffMs,
  type CloudProviderOptions,
  cloudRuntime,
  finishCreate,
  hasLabels,
  refuseTailscale,
  selectorLabels,
  timeoutError,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { apiClient } from "../cloud/http_api.ts";
import type { Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";
import {
  createSandboxBody,
  DAYTONA_FAILED,
  daytonaAuth,
  daytonaError,
  daytonaHeaders,
  type DaytonaSandbox,
  type DaytonaSettings,
  daytonaSettings,
  listPath,
  parseSandbox,
  parseSandboxPage,
  parseSshAccess,
  sandboxToLease,
} from "./api.ts";

const SANDBOX_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const MAX_PAGES = 1000;
/** Attempts of a delete that keeps answering 409 (state change in progress). */
const DELETE_ATTEMPTS = 8;

/**
 * Build the Daytona provider. `options` injects the SSH wait, poll interval,
 * sleep and clock (tests).
 *
 * @example
 * ```ts
 * import { createDaytonaProvider } from "./provider.ts";
 * const p = createDaytonaProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false },
 * );
 * p.features.has("ssh"); // true
 * ```
 */
export function createDaytonaProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  let cached: DaytonaSettings | undefined;
  const settings = () => cached ??= daytonaSettings(ctx.env, ctx.config);
  const secrets = () =>
    [
      "CRABBOX_DAYTONA_API_KEY",
      "DAYTONA_API_KEY",
      "CRABBOX_DAYTONA_JWT_TOKEN",
      "DAYTONA_JWT_TOKEN",
    ].map((k) => ctx.env(k) ?? "");
  const call = apiClient(() => ({
    provider: "daytona",
    baseUrl: settings().baseUrl,
    headers: () => daytonaHeaders(daytonaAuth(ctx.env)),
    secrets,
    fetch: ctx.fetch,
    rt,
    log: ctx.log,
    toError: daytonaError,
  }));
  const is = (e: unknown, code: string) => e instanceof CrabboxError && e.code === code;

  async function getSandbox(id: string, signal?: AbortSignal): Promise<DaytonaSandbox | undefined> {
    try {
      const res = await call({ method: "GET", path: `/sandbox/${id}?verbose=true`, signal });
      return parseSandbox(res.json);
    } catch (e) {
      if (is(e, "daytona_not_found")) return undefined;
      throw e;
    }
  }

  async function deleteSandbox(id: string, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0;; attempt++) {
      try {
        await call({ method: "DELETE", path: `/sandbox/${id}`, signal });
        return;
      } catch (e) {
        if (is(e, "daytona_not_found")) return;
        if (!is(e, "daytona_conflict") || attempt + 1 >= DELETE_ATTEMPTS) throw e;
        const delay = backoffMs(attempt, 500, rt.maxBackoffMs);
        ctx.log(`daytona: sandbox ${id} is changing state; retrying delete in ${delay} ms`);
        await rt.sleep(delay, signal);
      }
    }
  }

  async function waitStarted(id: string, signal?: AbortSignal): Promise<DaytonaSandbox> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const sb = await getSandbox(id, signal);
      if (!sb || DAYTONA_FAILED.has(sb.state)) {
        throw new CrabboxError(
          "provider",
          "daytona_sandbox_failed",
          `Daytona sandbox ${id} is ${sb?.state ?? "gone"} instead of started${
            sb?.errorReason ? `: ${sb.errorReason}` : ""
          }`,
        );
      }
      if (sb.state === "started") return sb;
      if (rt.now() >= deadline) {
        throw timeoutError(
          "daytona",
          `sandbox ${id} started (last state ${sb.state})`,
          rt.readyTimeoutMs,
        );
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  /** Ask for a gateway token and store it under the lease; the target names the file, not the token. */
  async function grantSsh(id: string, leaseId: string, signal?: AbortSignal): Promise<SshTarget> {
    const s = settings();
    const res = await call({
      method: "POST",
      path: `/sandbox/${id}/ssh-access?expiresInMinutes=${s.sshAccessMinutes}`,
      signal,
    });
    const access = parseSshAccess(res.json, s.gatewayHost);
    const userFile = await storeLeaseUser(ctx.home, leaseId, access.token);
    const target: SshTarget = {
      host: access.host,
      port: access.port,
      user: "",
      userFile,
      identity: "user",
      expiresAt: access.expiresAt,
    };
    // The gateway endpoint (not the token) is kept beside the user file, so list/get can name it.
    await writeJsonAtomic(gatewayFile(leaseId), {
      host: target.host,
      port: target.port,
      expiresAt: target.expiresAt,
    });
    return target;
  }

  const gatewayFile = (leaseId: string) =>
    joinPath(dirOf(leaseUserConfigPath(ctx.home, leaseId)), "gateway.json");

  /** The gateway target granted to this machine for a lease, if any. */
  async function storedTarget(leaseId: string): Promise<SshTarget | undefined> {
    const g = await readJsonFile<{ host?: unknown; port?: unknown; expiresAt?: unknown }>(
      gatewayFile(leaseId),
    )
      .catch(() => undefined);
    if (!g || typeof g.host !== "string" || typeof g.port !== "number") return undefined;
    return {
      host: g.host,
      port: g.port,
      user: "",
      userFile: leaseUserConfigPath(ctx.home, leaseId),
      identity: "user",
      expiresAt: typeof g.expiresAt === "string" ? g.expiresAt : undefined,
    };
  }

  async function withTarget(lease: ProviderLease | undefined): Promise<ProviderLease | undefined> {
    if (lease && lease.state === "running") lease.ssh = await storedTarget(lease.leaseId);
    return lease;
  }

  async function forget(leaseId: string): Promise<void> {
    await removeLeaseUser(ctx.home, leaseId);
    await removeFile(gatewayFile(leaseId));
  }

  return {
    name: "daytona",
    features: new Set(["ssh"]),

    async create(spec, signal): Promise<ProviderLease> {
      refuseTailscale("daytona", spec, "sandboxes have no TUN device");
      const s = settings();
      const body = createSandboxBody(spec, s);
      ctx.log(`daytona: creating sandbox ${body.name} (${s.snapshot})`);
      const created = parseSandbox(
        (await call({ method: "POST", path: "/sandbox", body: { json: body }, signal })).json,
      );
      return await finishCreate({
        provider: "daytona",
        what: `sandbox ${body.name}`,
        ctx,
        rt,
        spec,
        signal,
        ready: async () => {
          const sb = await waitStarted(created.id, signal);
          const lease = sandboxToLease(sb);
          if (!lease || lease.leaseId !== spec.leaseId) {
            throw new CrabboxError(
              "provider",
              "daytona_bad_response",
              `Daytona sandbox ${sb.id} lost its crabbox labels`,
            );
          }
          lease.ssh = await grantSsh(sb.id, spec.leaseId, signal);
          return lease;
        },
        remove: async () => {
          await deleteSandbox(created.id);
          await forget(spec.leaseId);
        },
      });
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const labels: Labels = { crabbox: "true", ...selectorLabels(selector) };
      const out: ProviderLease[] = [];
      let cursor: string | undefined;
      for (let n = 0; n < MAX_PAGES; n++) {
        const page = parseSandboxPage(
          (await call({ method: "GET", path: listPath(labels, cursor), signal })).json,
        );
        for (const sb of page.items) {
          const lease = sandboxToLease(sb);
          // Filter again: an older API may ignore the labels query.
          if (lease && hasLabels(sb.labels, labels)) {
            out.push((await withTarget(lease))!);
          }
        }
        if (!page.next || page.next === cursor) return out;
        cursor = page.next;
      }
      throw timeoutError("daytona", "pagination of /sandbox", 0);
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!SANDBOX_ID.test(providerId)) return undefined;
      const sb = await getSandbox(providerId, signal);
      return sb && sb.state !== "destroyed" ? await withTarget(sandboxToLease(sb)) : undefined;
    },

    async delete(lease, signal): Promise<void> {
      if (!SANDBOX_ID.test(lease.providerId)) {
        throw badProviderIdError("daytona", lease.providerId, "a Daytona sandbox id");
      }
      const sb = await getSandbox(lease.providerId, signal);
      if (sb && sb.state !== "destroyed") {
        if (sandboxToLease(sb)?.leaseId !== lease.leaseId) {
          throw notOursError(
            "daytona",
            `Daytona sandbox ${sb.id} (${sb.name})`,
            lease.leaseId,
            "deleting",
          );
        }
        await deleteSandbox(sb.id, signal);
        ctx.log(`daytona: deleted sandbox ${sb.id} (${sb.name})`);
      }
      await forget(lease.leaseId);
    },

    sshTarget(lease) {
      return lease.ssh;
    },

    async refreshSsh(lease, signal): Promise<SshTarget> {
      ctx.log(`daytona: renewing the SSH gateway token of ${lease.leaseId}`);
      return await grantSsh(lease.providerId, lease.leaseId, signal);
    },
  };
}
