/**
 * The `namespace` provider: Namespace compute instances over the public
 * Compute API (Connect with JSON: every call is a POST to
 * `…/namespace.cloud.compute.v1beta.ComputeService/<Method>` with
 * `Authorization: Bearer <token>`). The crew key goes in
 * `experimental.authorizedSshKeys`; ssh reaches sshd as `root` through the
 * instance's `ssh` service endpoint (`PROXY_OVER_SECURE_WEBSOCKET`) with
 * `crabbox proxy` as its ProxyCommand.
 *
 * Lifetime: an instance is created with a deadline `durationMinutes` (default
 * 240) ahead, and every SSH connection through `crabbox proxy` extends it to
 * at least that much again (`ExtendInstance`). A connection held open longer
 * than that (a long `crew connect`) does not extend it: at the deadline
 * Namespace destroys the instance.
 *
 * Config (`namespace:`): `region`, `virtualCpu`, `memoryMegabytes`,
 * `machineArch`, `durationMinutes`, `sshUser`. Env: `NSC_TOKEN_FILE` (a JSON
 * file with `bearer_token`; default `~/.config/ns/token.json`),
 * `CRABBOX_NAMESPACE_API_URL`.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { decodeLabels } from "../../lib/core/labels.ts";
import { retryAfterMs } from "../../lib/core/retry_after.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import { proxyArgv } from "../../lib/ssh/proxy_command.ts";
import {
  assertSelectorValue,
  backoffMs,
  type CloudProviderOptions,
  cloudRuntime,
  finishCreate,
  timeoutError,
} from "../cloud/common.ts";
import { badProviderIdError, notOursError } from "../cloud/delete_guard.ts";
import { fetchWithRetry, parseJsonAnswer } from "../cloud/http.ts";
import { WsConnection } from "../cloud/ws_tunnel.ts";
import type {
  ByteTunnel,
  CreateSpec,
  Provider,
  ProviderContext,
  ProviderLease,
  SshTarget,
} from "../types.ts";
import {
  checkEndpoint,
  createInstanceBody,
  extendInstanceBody,
  leaseState,
  listInstancesBody,
  methodPath,
  namespaceError,
  type NamespaceInstance,
  namespaceSettings,
  parseConnectError,
  parseInstance,
  parseInstancePage,
  parseTokenFile,
  tokenFilePath,
} from "./api.ts";

const MAX_PAGES = 1000;
const INSTANCE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Build the Namespace provider.
 *
 * @example
 * ```ts
 * import { createNamespaceProvider } from "./provider.ts";
 * const p = createNamespaceProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false },
 * );
 * p.features.has("ssh"); // true
 * ```
 */
export function createNamespaceProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 2000);
  const settings = () => namespaceSettings(ctx.env, ctx.config);

  async function token(): Promise<string> {
    const path = tokenFilePath(ctx.env);
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch {
      throw new CrabboxError(
        "credentials",
        "namespace_no_token",
        `no Namespace token: ${path} (NSC_TOKEN_FILE) cannot be read`,
        { hint: 'write {"bearer_token": "…"} to a file and export NSC_TOKEN_FILE=<file>' },
      );
    }
    return parseTokenFile(text, path);
  }

  async function call(
    method: string,
    body: unknown,
    opts: { signal?: AbortSignal; notFoundOk?: boolean; retry?: boolean } = {},
  ): Promise<unknown> {
    const bearer = await token();
    const { baseUrl } = settings();
    const answer = await fetchWithRetry({
      provider: "namespace",
      api: "the Namespace API",
      host: new URL(baseUrl).host,
      what: method,
      rt,
      log: ctx.log,
      signal: opts.signal,
      secrets: () => [bearer],
      request: [JSON.stringify(body)],
      send: () =>
        ctx.fetch(`${baseUrl}${methodPath(method)}`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${bearer}`,
            "content-type": "application/json",
            "connect-protocol-version": "1",
          },
          body: JSON.stringify(body),
          signal: opts.signal,
        }),
      retryDelayMs: (a, attempt) => {
        const code = parseConnectError(a.status, a.text).code;
        // Throttling says when to come back (Retry-After); capacity does not and fails at once.
        const retryAfter = retryAfterMs(a.headers.get("retry-after"), rt.now());
        if (code === "resource_exhausted") {
          return retryAfter === undefined ? undefined : Math.min(rt.maxBackoffMs, retryAfter);
        }
        return code === "unavailable" && opts.retry !== false
          ? backoffMs(attempt, 500, rt.maxBackoffMs)
          : undefined;
      },
    });
    if (answer.ok) return parseJsonAnswer("namespace", "Namespace", answer.text, method) ?? {};
    const err = parseConnectError(answer.status, answer.text);
    if (err.code === "not_found" && opts.notFoundOk) return undefined;
    throw namespaceError(err, method);
  }

  const describe = async (instanceId: string, signal?: AbortSignal) => {
    if (!INSTANCE_ID.test(instanceId)) return undefined;
    const json = await call("DescribeInstance", { instanceId }, { signal, notFoundOk: true });
    return json === undefined ? undefined : parseInstance(json);
  };

  function target(inst: { instanceId: string; leaseId: string; crew?: string }, keyPath?: string) {
    return {
      host: inst.instanceId,
      port: 22,
      user: settings().sshUser,
      keyPath: keyPath ?? clientKeyPath(ctx.home, { crew: inst.crew, leaseId: inst.leaseId }),
      proxyCommand: proxyArgv({
        home: ctx.home,
        provider: "namespace",
        providerId: inst.instanceId,
        leaseId: inst.leaseId,
        port: 22,
      }),
    } satisfies SshTarget;
  }

  function toLease(inst: NamespaceInstance, keyPath?: string): ProviderLease | undefined {
    const facts = decodeLabels(inst.labels);
    if (!facts) return undefined;
    return {
      providerId: inst.instanceId,
      leaseId: facts.leaseId,
      labels: inst.labels,
      state: leaseState(inst.status),
      ssh: target(
        { instanceId: inst.instanceId, leaseId: facts.leaseId, crew: facts.crew },
        keyPath,
      ),
      createdAt: inst.createdAt,
      data: { deadline: inst.deadline ?? null, status: inst.status },
    };
  }

  const destroy = (instanceId: string, signal?: AbortSignal) =>
    call("DestroyInstance", { instanceId, reason: "crabbox release" }, {
      signal,
      notFoundOk: true,
    });

  async function waitReady(instanceId: string, signal?: AbortSignal): Promise<NamespaceInstance> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    await call("WaitInstanceSync", { instanceId }, { signal });
    while (true) {
      const inst = await describe(instanceId, signal);
      if (!inst || inst.status === "DESTROYED" || inst.status === "ERROR") {
        throw new CrabboxError(
          "provider",
          "namespace_instance_failed",
          `Namespace instance ${instanceId} is ${inst?.status ?? "gone"} instead of running`,
        );
      }
      if (inst.status === "RUNNING" && inst.sshEndpoint) return inst;
      if (rt.now() >= deadline) {
        throw timeoutError(
          "namespace",
          `instance ${instanceId} running with ssh`,
          rt.readyTimeoutMs,
        );
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  return {
    name: "namespace",
    features: new Set(["ssh"]),

    async create(spec: CreateSpec, signal?: AbortSignal): Promise<ProviderLease> {
      if (spec.tailscale) {
        throw new CrabboxError(
          "usage",
          "namespace_no_tailscale",
          "--tailscale is not supported on namespace (SSH goes through Namespace's WebSocket ingress)",
        );
      }
      const body = createInstanceBody(spec, settings(), rt.now());
      ctx.log(`namespace: creating an instance for ${spec.leaseId} (deadline ${body.deadline})`);
      const created = parseInstance(await call("CreateInstance", body, { signal, retry: false }));
      return await finishCreate({
        provider: "namespace",
        what: `instance ${created.instanceId}`,
        ctx,
        rt,
        spec,
        signal,
        ready: async () => {
          const inst = await waitReady(created.instanceId, signal);
          const lease = toLease(inst, spec.sshKeyPath);
          if (!lease?.ssh) {
            throw new CrabboxError(
              "provider",
              "namespace_bad_response",
              `Namespace instance ${inst.instanceId} lost its crabbox labels`,
            );
          }
          return lease;
        },
        remove: async () => {
          await destroy(created.instanceId);
        },
      });
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const crew = selector.crew === undefined
        ? undefined
        : assertSelectorValue("crew", selector.crew);
      const out: ProviderLease[] = [];
      let cursor: string | undefined;
      for (let n = 0;; n++) {
        if (n >= MAX_PAGES) {
          throw new CrabboxError("provider", "namespace_pagination", "ListInstances did not end");
        }
        const page = parseInstancePage(
          await call("ListInstances", listInstancesBody(crew, cursor), { signal }),
        );
        for (const inst of page.instances) {
          const lease = inst.status === "DESTROYED" ? undefined : toLease(inst);
          if (lease && (crew === undefined || lease.labels.crew === crew)) out.push(lease);
        }
        if (page.next === undefined || page.next === cursor) return out;
        cursor = page.next;
      }
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      const inst = await describe(providerId, signal);
      return inst && inst.status !== "DESTROYED" ? toLease(inst) : undefined;
    },

    async delete(lease, signal): Promise<void> {
      if (!INSTANCE_ID.test(lease.providerId)) {
        throw badProviderIdError("namespace", lease.providerId, "a Namespace instance id");
      }
      const inst = await describe(lease.providerId, signal);
      if (!inst || inst.status === "DESTROYED") return;
      if (decodeLabels(inst.labels)?.leaseId !== lease.leaseId) {
        throw notOursError(
          "namespace",
          `Namespace instance ${inst.instanceId}`,
          lease.leaseId,
          "destroying",
        );
      }
      await destroy(inst.instanceId, signal);
      ctx.log(`namespace: destroyed ${inst.instanceId}`);
    },

    sshTarget(lease: ProviderLease): SshTarget | undefined {
      return lease.ssh ??
        target({ instanceId: lease.providerId, leaseId: lease.leaseId, crew: lease.labels.crew });
    },

    async openTunnel(
      lease: ProviderLease,
      port: number,
      signal?: AbortSignal,
    ): Promise<ByteTunnel> {
      if (port !== 22) {
        throw new CrabboxError("usage", "namespace_port", "Namespace exposes only sshd (port 22)");
      }
      const inst = await describe(lease.providerId, signal);
      if (!inst || inst.status === "DESTROYED") {
        throw new CrabboxError(
          "notFound",
          "namespace_gone",
          `Namespace instance ${lease.providerId} is gone`,
        );
      }
      const url = checkEndpoint(inst.sshEndpoint ?? "", inst.instanceId);
      // Each connection keeps the instance alive for another durationMinutes.
      await call(
        "ExtendInstance",
        extendInstanceBody(inst.instanceId, settings().durationMinutes),
        { signal },
      ).catch((e) => ctx.log(`namespace: could not extend ${inst.instanceId}: ${e.message}`));
      const bearer = await token();
      const conn = await WsConnection.open(
        `Namespace ssh ingress of ${inst.instanceId}`,
        url,
        { authorization: `Bearer ${bearer}`, "x-nsc-ingress-auth": bearer },
        { signal },
      );
      return conn.tunnel();
    },
  };
}
