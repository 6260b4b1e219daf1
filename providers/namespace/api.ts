/**
 * Namespace's public Compute API over Connect with JSON, the pure half:
 * settings, the token file, request bodies (proto3 JSON: lowerCamelCase,
 * int64 as strings, bytes as base64, enums as strings), instance parsing and
 * the mapping of Connect errors (`{"code","message"}`) to exit statuses.
 * `provider.ts` is the fetch/WebSocket shell.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { apiBaseUrl, configString } from "../cloud/common.ts";
import { capMessage } from "../cloud/request_data.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** The Connect service every call is a method of. */
export const COMPUTE_SERVICE = "namespace.cloud.compute.v1beta.ComputeService";
/** The service kind crabbox reaches sshd through. */
export const SSH_ENDPOINT_KIND = "PROXY_OVER_SECURE_WEBSOCKET";
/** Entries per ListInstances page crabbox asks for. */
export const LIST_PAGE_SIZE = 100;

/** Resolved settings. */
export interface NamespaceSettings {
  /** API base URL (no trailing slash). */
  baseUrl: string;
  /** Instance shape. */
  shape: { virtualCpu: number; memoryMegabytes: number; machineArch: string; os: "linux" };
  /** Minutes an instance lives past its creation or last SSH connection. */
  durationMinutes: number;
  /** Login user (default `root`). */
  sshUser: string;
}

function configInt(
  config: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      `namespace.${key} must be an integer ${min}..${max}`,
    );
  }
  return v;
}

/**
 * Settings from config (`namespace.region` (`us`), `virtualCpu` (2),
 * `memoryMegabytes` (4096), `machineArch` (`amd64`), `durationMinutes` (240),
 * `sshUser` (`root`)) and `CRABBOX_NAMESPACE_API_URL`.
 *
 * @example
 * ```ts
 * import { namespaceSettings } from "./api.ts";
 * namespaceSettings(() => undefined, { region: "eu" }).baseUrl; // "https://eu.compute.namespaceapis.com"
 * ```
 */
export function namespaceSettings(
  env: EnvReader,
  config: Record<string, unknown>,
): NamespaceSettings {
  const region = configString(config, "namespace", "region") ?? "us";
  if (!/^[a-z0-9-]{1,32}$/.test(region)) {
    throw new CrabboxError("config", "bad_config_value", "namespace.region must be like us or eu");
  }
  const raw = env("CRABBOX_NAMESPACE_API_URL")?.trim() ||
    `https://${region}.compute.namespaceapis.com`;
  return {
    baseUrl: apiBaseUrl("CRABBOX_NAMESPACE_API_URL", raw).href.replace(/\/+$/, ""),
    shape: {
      virtualCpu: configInt(config, "virtualCpu", 2, 1, 64),
      memoryMegabytes: configInt(config, "memoryMegabytes", 4096, 512, 524_288),
      machineArch: configString(config, "namespace", "machineArch") ?? "amd64",
      os: "linux",
    },
    durationMinutes: configInt(config, "durationMinutes", 240, 10, 7 * 24 * 60),
    sshUser: configString(config, "namespace", "sshUser") ?? "root",
  };
}

/**
 * Where the token file is: `NSC_TOKEN_FILE`, else `~/.config/ns/token.json`.
 *
 * @example
 * ```ts
 * import { tokenFilePath } from "./api.ts";
 * tokenFilePath((k) => ({ HOME: "/home/a" })[k]); // "/home/a/.config/ns/token.json"
 * ```
 */
export function tokenFilePath(env: EnvReader): string {
  return env("NSC_TOKEN_FILE")?.trim() || `${env("HOME") ?? ""}/.config/ns/token.json`;
}

/** The `bearer_token` of a token file's text; a credentials error when it has none. */
export function parseTokenFile(text: string, path: string): string {
  let token: unknown;
  try {
    token = (JSON.parse(text) as Record<string, unknown>)?.bearer_token;
  } catch {
    token = undefined;
  }
  if (typeof token !== "string" || token.trim() === "") {
    throw new CrabboxError(
      "credentials",
      "namespace_bad_token_file",
      `${path} (NSC_TOKEN_FILE) has no bearer_token`,
      { hint: 'write {"bearer_token": "…"} with a Namespace API token to NSC_TOKEN_FILE' },
    );
  }
  return token.trim();
}

/** Path of a Connect method. */
export function methodPath(method: string): string {
  return `/${COMPUTE_SERVICE}/${method}`;
}

/** Label names may not hold `_`: it becomes `-` (as upstream does). */
export function labelName(key: string): string {
  return key.replaceAll("_", "-");
}

/** A `{name, value}` label list. */
export function toLabelList(labels: Labels): { name: string; value: string }[] {
  return Object.entries(labels).map(([k, v]) => ({ name: labelName(k), value: v }));
}

/**
 * The CreateInstance body: shape, purpose, deadline (now + duration),
 * labels, the crew key in `experimental.authorizedSshKeys`.
 *
 * @example
 * ```ts
 * import { createInstanceBody, namespaceSettings } from "./api.ts";
 * declare const spec: import("../types.ts").CreateSpec;
 * createInstanceBody(spec, namespaceSettings(() => undefined, {}), Date.parse("2026-01-01T00:00:00Z")).deadline;
 * // "2026-01-01T04:00:00.000Z"
 * ```
 */
export function createInstanceBody(spec: CreateSpec, settings: NamespaceSettings, now: number) {
  return {
    shape: settings.shape,
    documentedPurpose: `crabbox lease ${spec.leaseId}${spec.crew ? ` crew ${spec.crew}` : ""}`,
    deadline: new Date(now + settings.durationMinutes * 60_000).toISOString(),
    labels: toLabelList(spec.labels),
    experimental: { authorizedSshKeys: [spec.sshPublicKey.trim()] },
  };
}

/** The ListInstances body for crabbox instances (of one crew), one page. */
export function listInstancesBody(crew: string | undefined, cursor: string | undefined) {
  const labelFilter = [{ name: "crabbox", value: "true", op: "EQUAL" }];
  if (crew !== undefined) labelFilter.push({ name: "crew", value: crew, op: "EQUAL" });
  return {
    labelFilter,
    maxEntries: String(LIST_PAGE_SIZE),
    ...(cursor ? { paginationCursor: cursor } : {}),
  };
}

/** The ExtendInstance body: keep the instance alive at least `minutes` more. */
export function extendInstanceBody(instanceId: string, minutes: number) {
  return { instanceId, ensureMinimum: `${minutes * 60}s` };
}

/** An instance as crabbox needs it. */
export interface NamespaceInstance {
  /** Instance id. */
  instanceId: string;
  /** `PENDING`, `CREATING`, `RUNNING`, `DESTROYING`, `DESTROYED`, … */
  status: string;
  /** Labels as a map. */
  labels: Labels;
  /** Deadline (RFC 3339). */
  deadline?: string;
  /** Creation time. */
  createdAt?: string;
  /** The `ssh` service endpoint (a `wss:` URL), when the instance has one. */
  sshEndpoint?: string;
}

/** Parse an `InstanceMetadata` object (or a response wrapping it in `metadata`). */
export function parseInstance(v: unknown): NamespaceInstance {
  const o0 = (v ?? {}) as Record<string, unknown>;
  const o = (o0.metadata && typeof o0.metadata === "object" ? o0.metadata : o0) as Record<
    string,
    unknown
  >;
  if (typeof o.instanceId !== "string" || o.instanceId === "") {
    throw new CrabboxError(
      "provider",
      "namespace_bad_response",
      "Namespace returned an instance without instanceId",
    );
  }
  const labels: Labels = {};
  for (const l of Array.isArray(o.labels) ? o.labels : []) {
    const { name, value } = (l ?? {}) as Record<string, unknown>;
    if (typeof name === "string" && typeof value === "string") labels[name] = value;
  }
  const ssh = (Array.isArray(o.services) ? o.services : []).map((s) =>
    (s ?? {}) as Record<string, unknown>
  ).find((s) => s.name === "ssh" && s.endpointKind === SSH_ENDPOINT_KIND);
  return {
    instanceId: o.instanceId,
    status: typeof o.status === "string" ? o.status : "UNKNOWN",
    labels,
    deadline: typeof o.deadline === "string" ? o.deadline : undefined,
    createdAt: typeof o.createdAt === "string" ? o.createdAt : undefined,
    sshEndpoint: typeof ssh?.endpoint === "string" ? ssh.endpoint : undefined,
  };
}

/** Parse a ListInstances answer. */
export function parseInstancePage(v: unknown): { instances: NamespaceInstance[]; next?: string } {
  const o = (v ?? {}) as Record<string, unknown>;
  const list = o.instances === undefined ? [] : o.instances;
  if (!Array.isArray(list)) {
    throw new CrabboxError(
      "provider",
      "namespace_bad_response",
      "ListInstances answer has no instances array",
    );
  }
  const cursor = typeof o.paginationCursor === "string" && o.paginationCursor !== ""
    ? o.paginationCursor
    : undefined;
  return { instances: list.map(parseInstance), next: cursor };
}

/** Provider lease state of an instance status. */
export function leaseState(status: string): ProviderLease["state"] {
  if (status === "RUNNING") return "running";
  if (status === "PENDING" || status === "CREATING") return "creating";
  if (status === "DESTROYING" || status === "DESTROYED") return "deleting";
  if (status === "SUSPENDING" || status === "SUSPENDED") return "stopped";
  return "unknown";
}

/**
 * Check an ssh endpoint before a token is sent to it: `wss:`, or `ws:` only on
 * a loopback host (fakes).
 */
export function checkEndpoint(endpoint: string, instanceId: string): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    url = new URL("invalid:");
  }
  const loopback = /^(127(\.\d{1,3}){3}|localhost|\[::1\])$/.test(url.hostname);
  if (url.protocol !== "wss:" && !(url.protocol === "ws:" && loopback)) {
    throw new CrabboxError(
      "provider",
      "namespace_bad_endpoint",
      `Namespace instance ${instanceId} has no usable ssh endpoint (${url.protocol})`,
    );
  }
  return url;
}

/** Connect error codes and the HTTP status they travel with. */
export const CONNECT_STATUS: Readonly<Record<string, number>> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

/** A Connect error body. */
export interface ConnectError {
  /** Connect code (`not_found`, …). */
  code: string;
  /** Message. */
  message: string;
}

/** Parse `{"code","message"}`; other bodies get a code from the HTTP status. */
export function parseConnectError(status: number, text: string): ConnectError {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.code === "string") {
      return {
        code: o.code,
        message: capMessage(typeof o.message === "string" ? o.message : o.code),
      };
    }
  } catch { /* not JSON */ }
  const code = Object.entries(CONNECT_STATUS).find(([, s]) => s === status)?.[0] ?? "unknown";
  return { code, message: capMessage(text) || `HTTP ${status}` };
}

/**
 * Map a Connect error to a {@link CrabboxError}: unauthenticated/permission
 * denied → credentials (9), not_found → not found (3), everything else
 * (resource_exhausted = capacity or quota) → provider (4).
 */
export function namespaceError(err: ConnectError, method: string): CrabboxError {
  const text = `Namespace ${method} failed: ${err.message} (${err.code})`;
  if (err.code === "unauthenticated" || err.code === "permission_denied") {
    return new CrabboxError(
      "credentials",
      `namespace_${err.code}`,
      `${text}: the token in NSC_TOKEN_FILE was refused`,
      { hint: "check the token file named by NSC_TOKEN_FILE" },
    );
  }
  if (err.code === "not_found") return new CrabboxError("notFound", "namespace_not_found", text);
  return new CrabboxError("provider", `namespace_${err.code}`, text, {
    details: { code: err.code },
  });
}
