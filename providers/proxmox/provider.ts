/**
 * The `proxmox` provider: VMs cloned from a cloud-init template on a Proxmox
 * VE node. Create = `nextid` → clone → wait for the UPID task on the node it
 * names → cloud-init config (user, double-encoded `sshkeys`, labels in the
 * description, tag `crabbox`) → start → the IPv4 the guest agent reports.
 * Delete = stop + destroy, each with a task wait. Self-signed TLS through
 * `CRABBOX_PROXMOX_CA_CERT` (`Deno.createHttpClient`). Builders and parsers
 * live in `api.ts`.
 *
 * Env: `CRABBOX_PROXMOX_API_URL`, `…_TOKEN_ID`, `…_TOKEN_SECRET`, `…_NODE`,
 * `…_TEMPLATE_ID`, `…_STORAGE`, `…_POOL`, `…_BRIDGE`, `…_USER` (crabbox),
 * `…_FULL_CLONE` (true), `…_CA_CERT`.
 *
 * @example
 * ```ts
 * import { createProxmoxProvider } from "./provider.ts";
 * const pve = createProxmoxProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: {}, fetch, log: console.error,
 * });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import {
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
import { leaseResourceName } from "../cloud/lease_identity.ts";
import type { Provider, ProviderContext, ProviderLease } from "../types.ts";
import {
  agentIpv4,
  cloneForm,
  configForm,
  dataOf,
  labelsFromDescription,
  parseNextId,
  parseTask,
  parseVmList,
  PROXMOX_TAG,
  proxmoxAuthorization,
  proxmoxError,
  type ProxmoxSettings,
  proxmoxSettings,
  upidNode,
} from "./api.ts";

const VMID = /^[1-9][0-9]{2,8}$/;

/**
 * Build the Proxmox provider. `options` injects the SSH wait, poll interval,
 * sleep and clock (tests).
 *
 * @example
 * ```ts
 * import { createProxmoxProvider } from "./provider.ts";
 * const p = createProxmoxProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false },
 * );
 * p.name; // "proxmox"
 * ```
 */
export function createProxmoxProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  let cached: ProxmoxSettings | undefined;
  const settings = () => cached ??= proxmoxSettings(ctx.env, ctx.config);
  const call = apiClient(() => ({
    provider: "proxmox",
    baseUrl: settings().baseUrl,
    headers: () => ({ authorization: proxmoxAuthorization(ctx.env) }),
    secrets: () => [ctx.env("CRABBOX_PROXMOX_TOKEN_SECRET") ?? ""],
    fetch: ctx.fetch,
    client: settings().caCert
      ? Deno.createHttpClient({ caCerts: [settings().caCert!] })
      : undefined,
    rt,
    log: ctx.log,
    toError: proxmoxError,
  }));
  const is = (e: unknown, code: string) => e instanceof CrabboxError && e.code === code;
  const vmPath = (vmid: number | string, rest = "") =>
    `/nodes/${settings().node}/qemu/${vmid}${rest}`;

  /** Wait for a UPID task on the node it names; `null` data (sync answer) returns at once. */
  async function waitTask(data: unknown, what: string, signal?: AbortSignal): Promise<void> {
    if (data === null || data === undefined) return;
    if (typeof data !== "string") {
      throw new CrabboxError(
        "provider",
        "proxmox_bad_response",
        `Proxmox returned no task for ${what}`,
      );
    }
    const node = upidNode(data);
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const task = parseTask(
        (await call({
          method: "GET",
          path: `/nodes/${node}/tasks/${encodeURIComponent(data)}/status`,
          signal,
        })).json,
      );
      if (task.status === "stopped") {
        if (task.exitstatus === "OK") return;
        throw new CrabboxError(
          "provider",
          "proxmox_task_failed",
          `Proxmox task ${what} failed: ${task.exitstatus ?? "unknown"}`,
        );
      }
      if (rt.now() >= deadline) throw timeoutError("proxmox", `task ${what}`, rt.readyTimeoutMs);
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  async function post(path: string, body: string | undefined, what: string, signal?: AbortSignal) {
    const res = await call({
      method: "POST",
      path,
      body: body === undefined ? undefined : { form: body },
      signal,
    });
    await waitTask(dataOf(res.json), what, signal);
  }

  async function vmConfig(vmid: number | string, signal?: AbortSignal) {
    try {
      return (dataOf((await call({ method: "GET", path: vmPath(vmid, "/config"), signal })).json) ??
        {}) as Record<
          string,
          unknown
        >;
    } catch (e) {
      if (is(e, "proxmox_not_found")) return undefined;
      throw e;
    }
  }

  async function vmStatus(
    vmid: number | string,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    try {
      const d = dataOf(
        (await call({ method: "GET", path: vmPath(vmid, "/status/current"), signal })).json,
      );
      const st = (d as { status?: unknown } | undefined)?.status;
      return typeof st === "string" ? st : "unknown";
    } catch (e) {
      if (is(e, "proxmox_not_found")) return undefined;
      throw e;
    }
  }

  async function waitIpv4(vmid: number, signal?: AbortSignal): Promise<string> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      try {
        const ip = agentIpv4(
          (await call({
            method: "GET",
            path: vmPath(vmid, "/agent/network-get-interfaces"),
            signal,
          })).json,
        );
        if (ip) return ip;
      } catch (e) {
        if (!is(e, "proxmox_agent_not_ready")) throw e;
      }
      if (rt.now() >= deadline) {
        throw timeoutError("proxmox", `guest agent IPv4 of VM ${vmid}`, rt.readyTimeoutMs);
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  /** The guest agent's IPv4 of a running VM; `undefined` while the agent is not up. */
  async function currentIpv4(vmid: number | string, status: string, signal?: AbortSignal) {
    if (status !== "running") return undefined;
    try {
      return agentIpv4(
        (await call({ method: "GET", path: vmPath(vmid, "/agent/network-get-interfaces"), signal }))
          .json,
      );
    } catch (e) {
      if (!is(e, "proxmox_agent_not_ready")) throw e;
      return undefined;
    }
  }

  async function destroy(vmid: number | string, signal?: AbortSignal): Promise<void> {
    const status = await vmStatus(vmid, signal);
    if (status === undefined) return;
    if (status !== "stopped") {
      await post(vmPath(vmid, "/status/stop"), undefined, `stop of VM ${vmid}`, signal);
    }
    try {
      const res = await call({
        method: "DELETE",
        path: vmPath(vmid, "?purge=1&destroy-unreferenced-disks=1"),
        signal,
      });
      await waitTask(dataOf(res.json), `destroy of VM ${vmid}`, signal);
    } catch (e) {
      if (!is(e, "proxmox_not_found")) throw e;
    }
  }

  function toLease(vmid: number, config: Record<string, unknown>, status: string, ip?: string) {
    const labels = labelsFromDescription(config.description);
    const tags = typeof config.tags === "string" ? config.tags.split(/[;,]/) : [];
    if (!labels || !tags.includes(PROXMOX_TAG)) return undefined;
    const leaseId = labels["crabbox-lease"];
    const lease: ProviderLease = {
      providerId: String(vmid),
      leaseId,
      labels,
      state: status === "running" ? "running" : status === "stopped" ? "stopped" : "unknown",
      data: { name: config.name, node: settings().node },
    };
    if (ip) {
      lease.ssh = {
        host: ip,
        port: 22,
        user: settings().user,
        keyPath: clientKeyPath(ctx.home, { crew: labels.crew, leaseId }),
      };
    }
    return lease;
  }

  return {
    name: "proxmox",
    features: new Set(["ssh"]),

    async create(spec, signal): Promise<ProviderLease> {
      refuseTailscale("proxmox", spec, "crabbox does not bootstrap Tailscale on PVE VMs");
      const s = settings();
      const vmid = parseNextId(
        (await call({ method: "GET", path: "/cluster/nextid", signal })).json,
      );
      const name = leaseResourceName(spec);
      ctx.log(`proxmox: cloning template ${s.templateId} on ${s.node} as VM ${vmid} (${name})`);
      const clone = await call({
        method: "POST",
        path: vmPath(s.templateId, "/clone"),
        body: { form: cloneForm(spec, s, vmid) },
        signal,
      });
      return await finishCreate({
        provider: "proxmox",
        what: `VM ${vmid} (${name})`,
        ctx,
        rt,
        spec,
        signal,
        ready: async () => {
          await waitTask(dataOf(clone.json), `clone to VM ${vmid}`, signal);
          await post(vmPath(vmid, "/config"), configForm(spec, s), `config of VM ${vmid}`, signal);
          await post(vmPath(vmid, "/status/start"), undefined, `start of VM ${vmid}`, signal);
          const ip = await waitIpv4(vmid, signal);
          const config = await vmConfig(vmid, signal);
          const lease = config ? toLease(vmid, config, "running", ip) : undefined;
          if (!lease?.ssh || lease.leaseId !== spec.leaseId) {
            throw new CrabboxError(
              "provider",
              "proxmox_bad_response",
              `Proxmox VM ${vmid} lost its crabbox description`,
            );
          }
          lease.ssh.keyPath = spec.sshKeyPath;
          return lease;
        },
        remove: () => destroy(vmid),
      });
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const want = selectorLabels(selector);
      const vms = parseVmList(
        (await call({ method: "GET", path: `/nodes/${settings().node}/qemu`, signal })).json,
      )
        .filter((v) =>
          v.name.startsWith("crabbox-") && !v.template && v.tags.includes(PROXMOX_TAG)
        );
      const out: ProviderLease[] = [];
      for (const vm of vms) {
        const config = await vmConfig(vm.vmid, signal);
        const mine = config ? toLease(vm.vmid, config, vm.status) : undefined;
        if (!config || !mine || !hasLabels(mine.labels, want)) continue;
        const ip = await currentIpv4(vm.vmid, vm.status, signal);
        out.push(toLease(vm.vmid, config, vm.status, ip)!);
      }
      return out;
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!VMID.test(providerId)) return undefined;
      const config = await vmConfig(providerId, signal);
      if (!config) return undefined;
      const status = await vmStatus(providerId, signal) ?? "unknown";
      return toLease(
        Number(providerId),
        config,
        status,
        await currentIpv4(providerId, status, signal),
      );
    },

    async delete(lease, signal): Promise<void> {
      if (!VMID.test(lease.providerId)) {
        throw badProviderIdError("proxmox", lease.providerId, "a Proxmox VM id");
      }
      const config = await vmConfig(lease.providerId, signal);
      if (!config) return;
      if (labelsFromDescription(config.description)?.["crabbox-lease"] !== lease.leaseId) {
        throw notOursError(
          "proxmox",
          `Proxmox VM ${lease.providerId}`,
          lease.leaseId,
          "destroying",
        );
      }
      await destroy(lease.providerId, signal);
      ctx.log(`proxmox: destroyed VM ${lease.providerId}`);
    },

    sshTarget(lease) {
      return lease.ssh;
    },
  };
}
