/**
 * RunPod REST API v1 (`https://rest.runpod.io/v1`), the pure half: settings,
 * the `POST /pods` body, the pod parser, pod → lease, and error mapping.
 * Pods have no labels: a lease is the pod name `crabbox-<slug>-<lease hex>`
 * plus the reserved labels in the pod's `env`, parsed back strictly.
 *
 * RunPod has announced that REST v1 is retired on 2026-11-15 in favour of the
 * v2 beta (`https://api.runpod.io/v2`); this follows v1 as documented in the
 * `runpod/docs` repository's `api-reference/openapi.json`.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import { apiBaseUrl, configInt, configString, configStringList, isIpv4 } from "../cloud/common.ts";
import { type ApiFailure, errorMessage, restError } from "../cloud/http_api.ts";
import { identityOf, labelsToEnv, leaseResourceName } from "../cloud/lease_identity.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Documented production endpoint (v1). */
export const RUNPOD_API_URL = "https://rest.runpod.io/v1";
/**
 * Default image: RunPod's official CPU base image, whose start script installs
 * `PUBLIC_KEY` into root's authorized_keys and starts sshd.
 */
export const RUNPOD_DEFAULT_IMAGE = "runpod/base:0.6.2-cpu";

/** Resolved RunPod settings (no secrets). */
export interface RunpodSettings {
  /** API base URL without trailing slash. */
  baseUrl: string;
  /** Container image (must honour `PUBLIC_KEY`). */
  imageName: string;
  /** `CPU` or `GPU`. */
  computeType: "CPU" | "GPU";
  /** CPU flavors (CPU pods). */
  cpuFlavorIds: string[];
  /** vCPUs (CPU pods). */
  vcpuCount: number;
  /** GPU types in order of preference (GPU pods). */
  gpuTypeIds: string[];
  /** GPUs per pod. */
  gpuCount: number;
  /** `SECURE` or `COMMUNITY`. */
  cloudType: string;
  /** Container disk in GB. */
  containerDiskInGb: number;
  /** Persistent volume in GB (sent explicitly: RunPod's default of 20 is billed). */
  volumeInGb: number;
}

/**
 * Settings from `runpod:` in config.yaml and `CRABBOX_RUNPOD_API_URL`.
 *
 * @example
 * ```ts
 * import { runpodSettings } from "./api.ts";
 * runpodSettings(() => undefined, {}).volumeInGb; // 0
 * ```
 */
export function runpodSettings(env: EnvReader, config: Record<string, unknown>): RunpodSettings {
  const raw = env("CRABBOX_RUNPOD_API_URL")?.trim() || RUNPOD_API_URL;
  const computeType = configString(config, "runpod", "computeType") ?? "CPU";
  if (computeType !== "CPU" && computeType !== "GPU") {
    throw new CrabboxError("config", "bad_config_value", "runpod.computeType must be CPU or GPU");
  }
  const gpuTypeIds = configStringList(config, "runpod", "gpuTypeIds", []);
  if (computeType === "GPU" && gpuTypeIds.length === 0) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      "runpod.gpuTypeIds must list at least one GPU type when runpod.computeType is GPU",
    );
  }
  return {
    baseUrl: apiBaseUrl("CRABBOX_RUNPOD_API_URL", raw).href.replace(/\/+$/, ""),
    imageName: configString(config, "runpod", "imageName") ?? RUNPOD_DEFAULT_IMAGE,
    computeType,
    cpuFlavorIds: configStringList(config, "runpod", "cpuFlavorIds", ["cpu3c"]),
    vcpuCount: configInt(config, "runpod", "vcpuCount", 2, 1, 512),
    gpuTypeIds,
    gpuCount: configInt(config, "runpod", "gpuCount", 1, 1, 16),
    cloudType: configString(config, "runpod", "cloudType") ?? "SECURE",
    containerDiskInGb: configInt(config, "runpod", "containerDiskInGb", 20, 1, 4096),
    volumeInGb: configInt(config, "runpod", "volumeInGb", 0, 0, 65536),
  };
}

/** The API key from `CRABBOX_RUNPOD_API_KEY` or `RUNPOD_API_KEY`; a credentials error when unset. */
export function runpodApiKey(env: EnvReader): string {
  const key = env("CRABBOX_RUNPOD_API_KEY")?.trim() || env("RUNPOD_API_KEY")?.trim();
  if (!key) {
    throw new CrabboxError("credentials", "runpod_no_key", "RUNPOD_API_KEY is not set", {
      hint:
        "create an API key in the RunPod console (Settings → API Keys) and export RUNPOD_API_KEY",
    });
  }
  return key;
}

/**
 * The `POST /pods` body: explicit ports (`22/tcp` only), public IP,
 * `volumeInGb`, the crew key as `PUBLIC_KEY` and the reserved labels as env.
 */
export function createPodBody(spec: CreateSpec, s: RunpodSettings): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: leaseResourceName(spec),
    imageName: s.imageName,
    cloudType: s.cloudType,
    computeType: s.computeType,
    containerDiskInGb: s.containerDiskInGb,
    volumeInGb: s.volumeInGb,
    ports: ["22/tcp"],
    supportPublicIp: true,
    env: { PUBLIC_KEY: spec.sshPublicKey.trim(), ...labelsToEnv(spec.labels) },
  };
  if (s.computeType === "GPU") {
    body.gpuTypeIds = s.gpuTypeIds;
    body.gpuTypePriority = "availability";
    body.gpuCount = s.gpuCount;
  } else {
    body.cpuFlavorIds = s.cpuFlavorIds;
    body.vcpuCount = s.vcpuCount;
  }
  return body;
}

/** The fields of a pod crabbox uses. */
export interface RunpodPod {
  /** Pod id. */
  id: string;
  /** Name. */
  name: string;
  /** `RUNNING`, `EXITED` or `TERMINATED`. */
  desiredStatus: string;
  /** Public IPv4, once the container runs. */
  publicIp?: string;
  /** Public port for private port 22, once mapped. */
  sshPort?: number;
  /** Environment as stored. */
  env: Record<string, unknown>;
  /** Image. */
  image?: string;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}

function malformed(what: string): CrabboxError {
  return new CrabboxError("provider", "runpod_bad_response", `RunPod returned a malformed ${what}`);
}

/** Parse one pod; `portMappings` values may be numbers or numeric strings. */
export function parsePod(v: unknown): RunpodPod {
  const p = obj(v);
  if (typeof p.id !== "string" || p.id === "") throw malformed("pod");
  const raw = obj(p.portMappings)["22"];
  const port = typeof raw === "string" && /^[0-9]{1,5}$/.test(raw) ? Number(raw) : raw;
  const image = typeof p.image === "string" ? p.image : p.imageName;
  return {
    id: p.id,
    name: typeof p.name === "string" ? p.name : "",
    desiredStatus: typeof p.desiredStatus === "string" ? p.desiredStatus : "",
    publicIp: isIpv4(p.publicIp) ? p.publicIp : undefined,
    sshPort: typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535
      ? port
      : undefined,
    env: obj(p.env),
    image: typeof image === "string" ? image : undefined,
  };
}

/** Parse `GET /pods`: a plain array. */
export function parsePodList(v: unknown): RunpodPod[] {
  if (!Array.isArray(v)) throw malformed("pod list");
  return v.map(parsePod);
}

/** True when a pod can be reached: RUNNING with a public IP and a mapped port 22. */
export function podReady(pod: RunpodPod): boolean {
  return pod.desiredStatus === "RUNNING" && pod.publicIp !== undefined &&
    pod.sshPort !== undefined;
}

/**
 * A pod as a lease; `undefined` unless its name and env identify a crabbox
 * lease. SSH: `root@publicIp -p portMappings["22"]` with the crew key.
 */
export function podToLease(pod: RunpodPod, home: string, keyPath?: string) {
  const labels = identityOf(pod.name, pod.env);
  if (!labels) return undefined;
  const leaseId = labels["crabbox-lease"];
  const crew = labels.crew;
  const state: ProviderLease["state"] = pod.desiredStatus === "RUNNING"
    ? (podReady(pod) ? "running" : "creating")
    : pod.desiredStatus === "EXITED"
    ? "stopped"
    : pod.desiredStatus === "TERMINATED"
    ? "deleting"
    : "unknown";
  const lease: ProviderLease = {
    providerId: pod.id,
    leaseId,
    labels,
    state,
    data: { name: pod.name, image: pod.image },
  };
  if (podReady(pod)) {
    lease.ssh = {
      host: pod.publicIp!,
      port: pod.sshPort!,
      user: "root",
      keyPath: keyPath ?? clientKeyPath(home, { crew, leaseId }),
    };
  }
  return lease;
}

/**
 * Map a failed answer: 500 "no instances available" → capacity (exit 4,
 * RunPod's own words), else the common REST mapping (401/403 → exit 9
 * naming `RUNPOD_API_KEY`, 404 → not found, …).
 *
 * @example
 * ```ts
 * import { runpodError } from "./api.ts";
 * runpodError({ status: 401, text: "invalid api key", where: "GET /pods" }).exitStatus; // 9
 * ```
 */
export function runpodError(f: ApiFailure): CrabboxError {
  const said = errorMessage(f.text, ["error"]);
  if (
    f.status >= 500 &&
    /no (longer any|instances)|not available|available with the requested/i.test(said)
  ) {
    return new CrabboxError("provider", "runpod_capacity", `RunPod has no capacity: ${said}`, {
      hint:
        "set runpod.gpuTypeIds / runpod.cpuFlavorIds or runpod.cloudType to another one and retry",
      details: { status: f.status },
    });
  }
  return restError(f, said, {
    provider: "runpod",
    label: "RunPod",
    credentials: "RUNPOD_API_KEY",
    hint: "check RUNPOD_API_KEY (it needs read/write access to pods)",
  });
}
