/**
 * The `azure` provider: Linux VMs over Azure Resource Manager REST with
 * client-credentials tokens (`auth.ts`). This is the fetch shell; bodies,
 * ids, api-versions, parsers and error mapping live in `api.ts`.
 *
 * Layout: one resource group (`azure.resourceGroup`, default
 * `crabbox-leases`, created once and kept); per crew a VNet/subnet and an
 * NSG allowing TCP `sshPort` (idempotent PUTs, removed with the crew's last
 * VM); per box a Standard public IP, a NIC and the VM (with its OS disk).
 * Long-running operations follow `Azure-AsyncOperation` (or `Location` with
 * 202), honouring `Retry-After`, until a terminal status.
 *
 * Config (`azure:`): `subscriptionId`, `location`, `resourceGroup`, `vmSize`,
 * `image`, `sshUser` (`crabbox`), `sshPort` (22). Env: `AZURE_TENANT_ID`,
 * `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_SUBSCRIPTION_ID`,
 * `CRABBOX_AZURE_*`, `CRABBOX_AZURE_ARM_URL`, `CRABBOX_AZURE_LOGIN_URL`.
 *
 * @example
 * ```ts
 * import { createAzureProvider } from "./provider.ts";
 * const azure = createAzureProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: {}, fetch, log: console.error,
 * });
 * const boxes = await azure.list({ crew: "pr-42" });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { knownHostsPath } from "../../lib/core/home.ts";
import { retryAfterMs } from "../../lib/core/retry_after.ts";
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
import { capMessage, requestFragments, scrubRequestData } from "../cloud/request_data.ts";
import type { CreateSpec, Provider, ProviderContext, ProviderLease, SshTarget } from "../types.ts";
import {
  API_VERSIONS,
  azureError,
  type AzureSettings,
  azureSettings,
  type AzureVm,
  azureVmName,
  groupBody,
  groupId,
  isTerminal,
  nicBody,
  nsgBody,
  parseArmError,
  parseArmPage,
  parseAsyncStatus,
  parsePipAddress,
  parseVm,
  pipBody,
  provisioningState,
  type ResourceKind,
  resourceUrlPath,
  sharedNames,
  TRANSIENT_DELETE_CODES,
  vmBody,
  vmResourceNames,
  vmToLease,
  vnetBody,
} from "./api.ts";
import { azureCredentials, type AzureTokenSource, azureTokenSource } from "./auth.ts";

interface Answer {
  status: number;
  headers: Headers;
  json: unknown;
}

interface CallOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Return the 404 answer instead of throwing. */
  notFoundOk?: boolean;
  /** What the call does, for messages. */
  what: string;
}

const MAX_PAGES = 1000;
const MAX_DELETE_CONFLICTS = 13;

/**
 * Build the Azure provider.
 *
 * @example
 * ```ts
 * import { createAzureProvider } from "./provider.ts";
 * const p = createAzureProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false, pollIntervalMs: 10 },
 * );
 * p.features.has("cloud-init"); // true
 * ```
 */
export function createAzureProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 5000);
  let cachedSettings: AzureSettings | undefined;
  const settings = () => cachedSettings ??= azureSettings(ctx.env, ctx.config);
  let tokens: AzureTokenSource | undefined;
  const auth = () => tokens ??= azureTokenSource(azureCredentials(ctx.env), ctx.fetch, rt.now);

  /** Absolute URL of a path, or a server-given URL that must stay on the ARM host. */
  function urlOf(pathOrUrl: string): URL {
    const s = settings();
    const base = new URL(s.armUrl);
    const url = pathOrUrl.startsWith("/") ? new URL(`${s.armUrl}${pathOrUrl}`) : new URL(pathOrUrl);
    if (url.origin !== base.origin) {
      throw new CrabboxError(
        "provider",
        "azure_bad_response",
        `Azure pointed crabbox at ${url.origin}, not the ARM endpoint; refusing to send the token there`,
      );
    }
    return url;
  }

  async function call(method: string, pathOrUrl: string, opts: CallOptions): Promise<Answer> {
    const s = settings();
    const src = auth();
    const url = urlOf(pathOrUrl);
    let token = "";
    let reauthorized = false;
    const a = await fetchWithRetry({
      provider: "azure",
      api: "Azure Resource Manager",
      host: url.host,
      what: opts.what,
      rt,
      log: ctx.log,
      signal: opts.signal,
      secrets: () => [token, src.secret],
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
      retryDelayMs: (answer, attempt) => {
        const code = parseArmError(answer.status, answer.text).code;
        if (answer.status === 401 && !reauthorized && code === "ExpiredAuthenticationToken") {
          reauthorized = true;
          src.invalidate();
          return 0;
        }
        if (answer.status === 429) return retryAfterDelayMs(answer.headers, attempt, rt);
        return answer.status >= 500 && method !== "POST"
          ? backoffMs(attempt, 500, rt.maxBackoffMs)
          : undefined;
      },
    });
    if (a.ok) {
      return {
        status: a.status,
        headers: a.headers,
        json: parseJsonAnswer("azure", "Azure", a.text, opts.what),
      };
    }
    if (a.status === 404 && opts.notFoundOk) {
      return { status: 404, headers: a.headers, json: undefined };
    }
    throw azureError(a.status, parseArmError(a.status, a.text), {
      what: opts.what,
      vmSize: s.vmSize,
      location: s.location,
    });
  }

  /** Wait for a PUT/DELETE answer's long-running operation to end; throws on Failed/Canceled. */
  async function awaitLro(
    first: Answer,
    what: string,
    resourcePath: string | undefined,
    signal?: AbortSignal,
    request?: unknown,
  ) {
    const s = settings();
    const ctxErr = { what, vmSize: s.vmSize, location: s.location };
    // An operation's error is a 2xx answer: cap it and keep the PUT body out of it here.
    const clean = (e: { code: string; message: string }) => ({
      code: e.code,
      message: capMessage(
        scrubRequestData(
          e.message,
          requestFragments([request === undefined ? undefined : JSON.stringify(request)]),
        ),
      ),
    });
    const deadline = rt.now() + rt.readyTimeoutMs;
    const wait = async (h: Headers) => {
      if (rt.now() >= deadline) throw timeoutError("azure", what, rt.readyTimeoutMs);
      // Azure says how long to wait (Retry-After); without it, the poll cadence.
      const hinted = retryAfterMs(h.get("retry-after"), rt.now());
      const ms = hinted === undefined
        ? rt.pollIntervalMs
        : Math.max(Math.min(250, rt.pollIntervalMs), hinted);
      await rt.sleep(Math.min(rt.maxBackoffMs, ms), signal);
    };
    const asyncUrl = first.headers.get("azure-asyncoperation");
    const location = first.headers.get("location");
    if (asyncUrl) {
      let h = first.headers;
      while (true) {
        await wait(h);
        const a = await call("GET", asyncUrl, { signal, what: `poll ${what}` });
        h = a.headers;
        const st = parseAsyncStatus(a.json);
        if (st.status === "Succeeded") return;
        if (isTerminal(st.status)) {
          throw azureError(
            200,
            st.error ? clean(st.error) : { code: st.status, message: `${what} ended ${st.status}` },
            ctxErr,
          );
        }
      }
    }
    if (first.status === 202 && location) {
      let h = first.headers;
      while (true) {
        await wait(h);
        const a = await call("GET", location, { signal, what: `poll ${what}` });
        if (a.status !== 202) return;
        h = a.headers;
      }
    }
    // No operation headers: follow provisioningState on the resource itself.
    let state = provisioningState(first.json);
    while (resourcePath && state !== undefined && !isTerminal(state)) {
      await wait(first.headers);
      state = provisioningState(
        (await call("GET", resourcePath, { signal, what: `poll ${what}` })).json,
      );
    }
    if (state === "Failed" || state === "Canceled") {
      throw azureError(
        200,
        { code: `Provisioning${state}`, message: `${what} ended ${state}` },
        ctxErr,
      );
    }
  }

  async function put(
    kind: ResourceKind | "group",
    name: string,
    body: unknown,
    signal?: AbortSignal,
  ) {
    const s = settings();
    const path = kind === "group"
      ? `${groupId(s)}?api-version=${API_VERSIONS.resources}`
      : resourceUrlPath(s, kind, name);
    const what = kind === "group" ? `create resource group ${name}` : `create ${kind} ${name}`;
    const res = await call("PUT", path, { body, signal, what });
    await awaitLro(res, what, path, signal, body);
  }

  /** Delete a resource, retrying the documented transient conflicts (bounded); gone is fine. */
  async function remove(kind: ResourceKind, name: string, signal?: AbortSignal) {
    const s = settings();
    const path = resourceUrlPath(s, kind, name);
    const what = `delete ${kind} ${name}`;
    for (let attempt = 0;; attempt++) {
      try {
        const res = await call("DELETE", path, { signal, what, notFoundOk: true });
        if (res.status === 404 || res.status === 204) return;
        await awaitLro(res, what, undefined, signal);
        return;
      } catch (e) {
        const code = e instanceof CrabboxError ? e.details?.code as string | undefined : undefined;
        if (!code || !TRANSIENT_DELETE_CODES.has(code) || attempt + 1 >= MAX_DELETE_CONFLICTS) {
          throw e;
        }
        ctx.log(`azure: ${what}: ${code}; retrying`);
        await rt.sleep(rt.pollIntervalMs * 3, signal);
      }
    }
  }

  async function listVms(signal?: AbortSignal): Promise<AzureVm[]> {
    const s = settings();
    const out: AzureVm[] = [];
    let next: string | undefined = `${
      groupId(s)
    }/providers/Microsoft.Compute/virtualMachines?api-version=${API_VERSIONS.compute}`;
    for (let n = 0; next; n++) {
      if (n >= MAX_PAGES) throw timeoutError("azure", "pagination of virtualMachines", 0);
      const res = await call("GET", next, {
        signal,
        what: "list virtual machines",
        notFoundOk: true,
      });
      if (res.status === 404) return out; // no resource group yet: nothing to list
      const page = parseArmPage(res.json, parseVm);
      out.push(...page.items);
      next = page.nextLink;
    }
    return out;
  }

  async function pipAddress(vm: string, signal?: AbortSignal): Promise<string | undefined> {
    const res = await call("GET", resourceUrlPath(settings(), "pip", vmResourceNames(vm).pip), {
      signal,
      what: `read public IP of ${vm}`,
      notFoundOk: true,
    });
    return res.status === 404 ? undefined : parsePipAddress(res.json);
  }

  async function getVm(name: string, signal?: AbortSignal): Promise<AzureVm | undefined> {
    const res = await call("GET", resourceUrlPath(settings(), "vm", name), {
      signal,
      what: `read VM ${name}`,
      notFoundOk: true,
    });
    return res.status === 404 ? undefined : parseVm(res.json);
  }

  async function ensureShared(owner: BoxOwner, signal?: AbortSignal) {
    const s = settings();
    const n = sharedNames(owner);
    await put("group", s.resourceGroup, groupBody(s), signal);
    await put("nsg", n.nsg, nsgBody(s, owner), signal);
    await put("vnet", n.vnet, vnetBody(s, owner), signal);
  }

  /** Remove a VM's own resources (VM, NIC, public IP, OS disk); returns what could not be removed. */
  async function removeBox(vm: string, signal?: AbortSignal): Promise<string[]> {
    const r = vmResourceNames(vm);
    const left: string[] = [];
    for (
      const [kind, name] of [["vm", vm], ["nic", r.nic], ["pip", r.pip], ["disk", r.disk]] as const
    ) {
      try {
        await remove(kind, name, signal);
      } catch (e) {
        ctx.log(`azure: could not delete ${kind} ${name}: ${(e as Error).message}`);
        left.push(`${kind} ${name}`);
        if (kind === "vm") return [`vm ${vm}`, `nic ${r.nic}`, `pip ${r.pip}`, `disk ${r.disk}`];
      }
    }
    return left;
  }

  /** Remove the crew's VNet and NSG when no VM of the crew is left besides `goneVm`. */
  async function cleanupShared(
    owner: BoxOwner,
    goneVm: string,
    signal?: AbortSignal,
  ): Promise<string[]> {
    const want = sharedResourceLabels(owner);
    const remaining = (await listVms(signal)).filter((vm) =>
      vm.name !== goneVm && Object.entries(want).every(([k, v]) => vm.tags[k] === v)
    );
    if (remaining.length > 0) return [];
    const n = sharedNames(owner);
    const left: string[] = [];
    for (const [kind, name] of [["vnet", n.vnet], ["nsg", n.nsg]] as const) {
      try {
        await remove(kind, name, signal);
      } catch (e) {
        ctx.log(`azure: could not delete ${kind} ${name}: ${(e as Error).message}`);
        left.push(`${kind} ${name}`);
      }
    }
    if (left.length === 0) {
      ctx.log(`azure: removed ${n.vnet} and ${n.nsg} (no VM of ${describe(owner)} left)`);
    }
    return left;
  }

  return {
    name: "azure",
    features: new Set(["ssh", "tailscale", "cloud-init"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      const s = settings();
      const body = vmBody(spec, s); // validates key, tags and custom data before any call
      const name = azureVmName(spec);
      const r = vmResourceNames(name);
      const owner = { crew: spec.crew, leaseId: spec.leaseId };
      ctx.log(`azure: creating ${name} (${s.vmSize} in ${s.location})`);
      try {
        await ensureShared(owner, signal);
        await put("pip", r.pip, pipBody(s, spec.labels), signal);
        await put("nic", r.nic, nicBody(s, owner, name, spec.labels), signal);
        await put("vm", name, body, signal);
        const vm = await getVm(name, signal);
        const ip = await pipAddress(name, signal);
        const lease = vm && vmToLease(vm, ip, s, ctx.home, spec.sshKeyPath);
        if (!lease?.ssh) {
          throw new CrabboxError(
            "provider",
            "azure_bad_response",
            `Azure VM ${name} has no public IP or lost its crabbox tags`,
          );
        }
        if (rt.waitForSsh) {
          ctx.log(`azure: ${name} is up at ${ip}; waiting for ssh`);
          await rt.waitForSsh(lease.ssh, {
            knownHostsFile: knownHostsPath(ctx.home, spec),
            timeoutMs: rt.sshTimeoutMs,
            signal,
          });
        }
        return lease;
      } catch (e) {
        ctx.log(`azure: create of ${name} failed; removing what was made`);
        const left = [
          ...await removeBox(name),
          ...await cleanupShared(owner, name).catch(() => ["vnet/nsg of the crew"]),
        ];
        throw withLeftBehind(e, left);
      }
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      if (selector.crew !== undefined) assertSelectorValue("crew", selector.crew);
      const s = settings();
      const vms = (await listVms(signal)).filter((vm) =>
        vm.tags.crabbox === "true" &&
        (selector.crew === undefined || vm.tags.crew === selector.crew) &&
        (selector.owner === undefined || vm.tags["crabbox-owner"] === selector.owner)
      );
      const out: ProviderLease[] = [];
      for (const vm of vms) {
        const lease = vmToLease(vm, await pipAddress(vm.name, signal), s, ctx.home);
        if (lease) out.push(lease);
      }
      return out;
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!/^crabbox-[a-z0-9-]{1,56}$/.test(providerId)) return undefined;
      const vm = await getVm(providerId, signal);
      return vm
        ? vmToLease(vm, await pipAddress(vm.name, signal), settings(), ctx.home)
        : undefined;
    },

    async delete(lease, signal): Promise<void> {
      if (!/^crabbox-[a-z0-9-]{1,56}$/.test(lease.providerId)) {
        throw badProviderIdError("azure", lease.providerId, "a crabbox VM name");
      }
      const vm = await getVm(lease.providerId, signal);
      const owner = ownerOf(lease.labels) ?? { leaseId: lease.leaseId };
      if (vm && ownerOf(vm.tags)?.leaseId !== lease.leaseId) {
        throw notOursError("azure", `Azure VM ${vm.name}`, lease.leaseId, "deleting");
      }
      const left = [
        ...await removeBox(lease.providerId, signal),
        ...await cleanupShared(owner, lease.providerId, signal),
      ];
      if (left.length > 0) {
        throw new CrabboxError(
          "provider",
          "azure_cleanup_incomplete",
          `Azure: could not delete ${left.join(", ")}`,
          {
            hint: "run the release again in a few minutes",
            details: { leftBehind: left },
          },
        );
      }
      ctx.log(`azure: deleted VM ${lease.providerId} and its NIC, public IP and disk`);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh;
    },
  };
}

function describe(owner: BoxOwner): string {
  return owner.crew ? `crew ${owner.crew}` : `lease ${owner.leaseId}`;
}
