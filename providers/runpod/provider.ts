/**
 * The `runpod` provider: RunPod pods over the REST API v1 (Bearer auth). The
 * box is a container reached over SSH at its public IP and the public port
 * mapped to 22, as root, with the crew key installed through `PUBLIC_KEY`.
 * Request bodies and parsers live in `api.ts`.
 *
 * Env: `RUNPOD_API_KEY` (or `CRABBOX_RUNPOD_API_KEY`), `CRABBOX_RUNPOD_API_URL`.
 * Config (`runpod:`): `imageName`, `computeType` (`CPU`|`GPU`), `cpuFlavorIds`,
 * `vcpuCount`, `gpuTypeIds`, `gpuCount`, `cloudType`, `containerDiskInGb`,
 * `volumeInGb` (default 0).
 *
 * @example
 * ```ts
 * import { createRunpodProvider } from "./provider.ts";
 * const runpod = createRunpodProvider({
 *   home: "/tmp/cbx", env: (k) => Deno.env.get(k), config: {}, fetch, log: console.error,
 * });
 * ```
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
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
  createPodBody,
  parsePod,
  parsePodList,
  podReady,
  podToLease,
  runpodApiKey,
  runpodError,
  type RunpodPod,
  type RunpodSettings,
  runpodSettings,
} from "./api.ts";

const POD_ID = /^[a-z0-9]{6,40}$/;

/**
 * Build the RunPod provider. `options` injects the SSH wait, poll interval,
 * sleep and clock (tests).
 *
 * @example
 * ```ts
 * import { createRunpodProvider } from "./provider.ts";
 * const p = createRunpodProvider(
 *   { home: "/tmp/cbx", env: () => undefined, config: {}, fetch, log: () => {} },
 *   { waitForSsh: false, pollIntervalMs: 10 },
 * );
 * p.features.has("tailscale"); // false
 * ```
 */
export function createRunpodProvider(
  ctx: ProviderContext,
  options: CloudProviderOptions = {},
): Provider {
  const rt = cloudRuntime(ctx, options, 3000);
  let cached: RunpodSettings | undefined;
  const settings = () => cached ??= runpodSettings(ctx.env, ctx.config);
  const call = apiClient(() => ({
    provider: "runpod",
    baseUrl: settings().baseUrl,
    headers: () => ({ authorization: `Bearer ${runpodApiKey(ctx.env)}` }),
    secrets: () => [ctx.env("CRABBOX_RUNPOD_API_KEY") ?? "", ctx.env("RUNPOD_API_KEY") ?? ""],
    fetch: ctx.fetch,
    rt,
    log: ctx.log,
    toError: runpodError,
  }));

  async function getPod(id: string, signal?: AbortSignal): Promise<RunpodPod | undefined> {
    try {
      return parsePod((await call({ method: "GET", path: `/pods/${id}`, signal })).json);
    } catch (e) {
      if (e instanceof CrabboxError && e.code === "runpod_not_found") return undefined;
      throw e;
    }
  }

  async function deletePod(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await call({ method: "DELETE", path: `/pods/${id}`, signal });
    } catch (e) {
      if (!(e instanceof CrabboxError && e.code === "runpod_not_found")) throw e;
    }
  }

  async function waitReady(id: string, signal?: AbortSignal): Promise<RunpodPod> {
    const deadline = rt.now() + rt.readyTimeoutMs;
    while (true) {
      const pod = await getPod(id, signal);
      if (!pod || pod.desiredStatus === "EXITED" || pod.desiredStatus === "TERMINATED") {
        throw new CrabboxError(
          "provider",
          "runpod_pod_gone",
          `RunPod pod ${id} is ${pod?.desiredStatus ?? "gone"} instead of running`,
        );
      }
      if (podReady(pod)) return pod;
      if (rt.now() >= deadline) {
        throw timeoutError(
          "runpod",
          `pod ${id} running with a public IP and port 22`,
          rt.readyTimeoutMs,
        );
      }
      await rt.sleep(rt.pollIntervalMs, signal);
    }
  }

  return {
    name: "runpod",
    features: new Set(["ssh"]),

    async create(spec, signal): Promise<ProviderLease> {
      refuseTailscale("runpod", spec, "pods are containers without a TUN device");
      const s = settings();
      const body = createPodBody(spec, s);
      const name = leaseResourceName(spec);
      ctx.log(`runpod: creating pod ${name} (${s.computeType}, ${s.imageName})`);
      const created = parsePod(
        (await call({ method: "POST", path: "/pods", body: { json: body }, signal })).json,
      );
      return await finishCreate({
        provider: "runpod",
        what: `pod ${name} (${created.id})`,
        ctx,
        rt,
        spec,
        signal,
        ready: async () => {
          const pod = await waitReady(created.id, signal);
          const lease = podToLease(pod, ctx.home, spec.sshKeyPath);
          if (!lease) {
            throw new CrabboxError(
              "provider",
              "runpod_bad_response",
              `RunPod pod ${pod.id} does not carry the name and env crabbox gave it`,
            );
          }
          return lease;
        },
        remove: () => deletePod(created.id),
      });
    },

    async list(selector, signal): Promise<ProviderLease[]> {
      const want = selectorLabels(selector);
      const pods = parsePodList((await call({ method: "GET", path: "/pods", signal })).json);
      return pods.filter((p) => p.name.startsWith("crabbox-"))
        .map((p) => podToLease(p, ctx.home))
        .filter((l): l is ProviderLease => l !== undefined)
        .filter((l) => hasLabels(l.labels, want));
    },

    async get(providerId, signal): Promise<ProviderLease | undefined> {
      if (!POD_ID.test(providerId)) return undefined;
      const pod = await getPod(providerId, signal);
      return pod ? podToLease(pod, ctx.home) : undefined;
    },

    async delete(lease, signal): Promise<void> {
      if (!POD_ID.test(lease.providerId)) {
        throw badProviderIdError("runpod", lease.providerId, "a RunPod pod id");
      }
      const pod = await getPod(lease.providerId, signal);
      if (!pod) return;
      const mine = podToLease(pod, ctx.home);
      if (mine?.leaseId !== lease.leaseId) {
        throw notOursError(
          "runpod",
          `RunPod pod ${pod.id} (${pod.name})`,
          lease.leaseId,
          "deleting",
        );
      }
      await deletePod(pod.id, signal);
      ctx.log(`runpod: deleted pod ${pod.id} (${pod.name})`);
    },

    sshTarget(lease) {
      return lease.ssh;
    },
  };
}
