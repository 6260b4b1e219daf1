/**
 * Hetzner Cloud API v1, the pure half: settings from env/config, request
 * builders and response parsers, and the mapping of Hetzner's error envelope
 * `{"error":{"code","message","details"}}` to {@link CrabboxError}s. Nothing
 * here performs I/O; `hetzner.ts` is the fetch shell around it.
 *
 * @module
 */

import { decodeBase64 } from "../../lib/core/base64.ts";
import { clientKeyPath } from "../../lib/ssh/keys.ts";
import { createHash } from "node:crypto";
import { CrabboxError } from "../../lib/core/errors.ts";
import { isLeaseId } from "../../lib/core/names.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import {
  apiBaseUrl,
  type BoxOwner,
  configPort,
  configString,
  isIpv4,
  ownerOf,
} from "../cloud/common.ts";
import { asObject, errorEnvelope } from "../cloud/http.ts";
import { capMessage } from "../cloud/request_data.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Documented production endpoint. */
export const HETZNER_API_URL = "https://api.hetzner.cloud/v1";
/** Default server type (shared vCPU, x86). */
export const HETZNER_DEFAULT_SERVER_TYPE = "cpx22";
/** Default image: the current Ubuntu LTS. */
export const HETZNER_DEFAULT_IMAGE = "ubuntu-24.04";
/** Hetzner caps `user_data` at 32 KiB. */
export const HETZNER_MAX_USER_DATA = 32 * 1024;
/** Largest `per_page` the API accepts. */
export const HETZNER_MAX_PER_PAGE = 50;

/** Resolved Hetzner settings (the token is kept out of anything printable). */
export interface HetznerSettings {
  /** API base URL without trailing slash. */
  baseUrl: string;
  /** Server type name. */
  serverType: string;
  /** Image name or id. */
  image: string;
  /** Location name; `undefined` lets Hetzner choose. */
  location?: string;
  /** sshd port on the box. */
  sshPort: number;
  /** Login user. */
  sshUser: string;
}

/**
 * Read settings from config (`hetzner.serverType`, `image`, `location`,
 * `sshPort`, `sshUser`) and `CRABBOX_HETZNER_API_URL`.
 *
 * @example
 * ```ts
 * import { hetznerSettings } from "./api.ts";
 * hetznerSettings(() => undefined, { location: "fsn1" }).location; // "fsn1"
 * ```
 */
export function hetznerSettings(env: EnvReader, config: Record<string, unknown>): HetznerSettings {
  const raw = env("CRABBOX_HETZNER_API_URL")?.trim() || HETZNER_API_URL;
  const base = apiBaseUrl("CRABBOX_HETZNER_API_URL", raw).href.replace(/\/+$/, "");
  return {
    baseUrl: base,
    serverType: configString(config, "hetzner", "serverType") ?? HETZNER_DEFAULT_SERVER_TYPE,
    image: configString(config, "hetzner", "image") ?? HETZNER_DEFAULT_IMAGE,
    location: configString(config, "hetzner", "location"),
    sshPort: configPort(config, "hetzner", "sshPort", 22),
    sshUser: configString(config, "hetzner", "sshUser") ?? "root",
  };
}

/**
 * The API token from `HCLOUD_TOKEN`; a credentials error when unset.
 */
export function hetznerToken(env: EnvReader): string {
  const token = env("HCLOUD_TOKEN")?.trim();
  if (!token) {
    throw new CrabboxError("credentials", "hetzner_no_token", "HCLOUD_TOKEN is not set", {
      hint:
        "create an API token (Read & Write) in the Hetzner Cloud console and export HCLOUD_TOKEN",
    });
  }
  return token;
}

/**
 * Server name: `crabbox-<slug>-<lease hex>` (unique per project, RFC 1123).
 *
 * @example
 * ```ts
 * import { hetznerServerName } from "./api.ts";
 * hetznerServerName({ slug: "api", leaseId: "cbx-0123456789ab" }); // "crabbox-api-0123456789ab"
 * ```
 */
export function hetznerServerName(spec: { slug: string; leaseId: string }): string {
  return `crabbox-${spec.slug}-${spec.leaseId.slice(4)}`;
}

/**
 * The MD5 fingerprint Hetzner reports for an OpenSSH public key
 * (`aa:bb:…`, like `ssh-keygen -E md5 -l`).
 *
 * @example
 * ```ts
 * import { sshKeyFingerprint } from "./api.ts";
 * sshKeyFingerprint("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== c"); // "…:…"
 * ```
 */
export function sshKeyFingerprint(publicKey: string): string {
  const bytes = decodeBase64(publicKey.trim().split(/\s+/)[1] ?? "");
  if (!bytes || bytes.length === 0) {
    throw new CrabboxError("usage", "bad_public_key", "the crew public key is not an OpenSSH key");
  }
  const hex = createHash("md5").update(bytes).digest("hex");
  return hex.match(/../g)!.join(":");
}

/** Name of the crew's Hetzner SSH key: `crabbox-crew-<crew>-<first 8 fingerprint hex>`. */
export function hetznerKeyName(owner: BoxOwner, fingerprint: string): string {
  const base = owner.crew ? `crabbox-crew-${owner.crew}` : `crabbox-${owner.leaseId}`;
  return `${base}-${fingerprint.replaceAll(":", "").slice(0, 8)}`;
}

/**
 * A `label_selector` from exact matches, in key order: `crabbox=true,crew=pr-42`.
 *
 * @example
 * ```ts
 * import { labelSelector } from "./api.ts";
 * labelSelector({ crabbox: "true", crew: "pr-42" }); // "crabbox=true,crew=pr-42"
 * ```
 */
export function labelSelector(labels: Labels): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
}

/**
 * Path + query of one page of a collection.
 *
 * @example
 * ```ts
 * import { pagePath } from "./api.ts";
 * pagePath("/servers", { label_selector: "crabbox=true" }, 2); // "/servers?label_selector=crabbox%3Dtrue&page=2&per_page=50"
 * ```
 */
export function pagePath(
  collection: string,
  query: Record<string, string>,
  page: number,
  perPage = HETZNER_MAX_PER_PAGE,
): string {
  const q = new URLSearchParams({ ...query, page: String(page), per_page: String(perPage) });
  return `${collection}?${q}`;
}

/** The `POST /servers` body for a lease. */
export interface CreateServerBody {
  /** Server name. */
  name: string;
  /** Server type. */
  server_type: string;
  /** Image. */
  image: string;
  /** Location, when configured. */
  location?: string;
  /** SSH key ids. */
  ssh_keys: number[];
  /** Reserved labels. */
  labels: Labels;
  /** cloud-init, when given. */
  user_data?: string;
  /** Boot right away. */
  start_after_create: true;
  /** Public IPv4 on, IPv6 off. */
  public_net: { enable_ipv4: true; enable_ipv6: false };
}

/**
 * Build the `POST /servers` body. User data over 32 KiB is a usage error
 * before anything is sent.
 */
export function createServerBody(
  spec: CreateSpec,
  settings: HetznerSettings,
  sshKeyId: number,
): CreateServerBody {
  if (spec.userData !== undefined) {
    const size = new TextEncoder().encode(spec.userData).length;
    if (size > HETZNER_MAX_USER_DATA) {
      throw new CrabboxError(
        "usage",
        "user_data_too_large",
        `cloud-init user data is ${size} bytes; Hetzner accepts at most ${HETZNER_MAX_USER_DATA}`,
      );
    }
  }
  const body: CreateServerBody = {
    name: hetznerServerName(spec),
    server_type: settings.serverType,
    image: settings.image,
    ssh_keys: [sshKeyId],
    labels: { ...spec.labels },
    start_after_create: true,
    public_net: { enable_ipv4: true, enable_ipv6: false },
  };
  if (settings.location) body.location = settings.location;
  if (spec.userData !== undefined) body.user_data = spec.userData;
  return body;
}

/** The fields of a Hetzner server crabbox uses. */
export interface HetznerServer {
  /** Numeric id. */
  id: number;
  /** Name. */
  name: string;
  /** `initializing`, `starting`, `running`, `stopping`, `off`, `deleting`, … */
  status: string;
  /** Public IPv4, once assigned. */
  ipv4?: string;
  /** Labels. */
  labels: Labels;
  /** ISO creation time. */
  created?: string;
  /** Server type name. */
  serverType?: string;
  /** Location name. */
  location?: string;
}

function malformed(what: string): CrabboxError {
  return new CrabboxError(
    "provider",
    "hetzner_bad_response",
    `Hetzner returned a malformed ${what}`,
  );
}

/** Parse one server object (`private_net` is an array and is ignored). */
export function parseServer(v: unknown): HetznerServer {
  const s = asObject(v);
  if (typeof s.id !== "number" || typeof s.status !== "string") throw malformed("server");
  const labels: Labels = {};
  for (const [k, val] of Object.entries(asObject(s.labels))) {
    if (typeof val === "string") labels[k] = val;
  }
  const ip = asObject(asObject(s.public_net).ipv4).ip;
  const location = asObject(asObject(s.datacenter).location).name;
  const serverType = asObject(s.server_type).name;
  return {
    id: s.id,
    name: typeof s.name === "string" ? s.name : "",
    status: s.status,
    ipv4: isIpv4(ip) ? ip : undefined,
    labels,
    created: typeof s.created === "string" ? s.created : undefined,
    serverType: typeof serverType === "string" ? serverType : undefined,
    location: typeof location === "string" ? location : undefined,
  };
}

/** One page of a collection: items and `meta.pagination.next_page`. */
export interface Page<T> {
  /** Items on this page. */
  items: T[];
  /** Next page number, or `undefined` on the last page. */
  nextPage?: number;
}

/**
 * Parse a list response `{<key>: [...], meta: {pagination: {next_page}}}`.
 *
 * @example
 * ```ts
 * import { parsePage, parseServer } from "./api.ts";
 * parsePage({ servers: [], meta: { pagination: { next_page: null } } }, "servers", parseServer);
 * ```
 */
export function parsePage<T>(json: unknown, key: string, parse: (v: unknown) => T): Page<T> {
  const root = asObject(json);
  const list = root[key];
  if (!Array.isArray(list)) throw malformed(`${key} list`);
  const next = asObject(asObject(root.meta).pagination).next_page;
  return {
    items: list.map(parse),
    nextPage: typeof next === "number" && Number.isInteger(next) && next > 0 ? next : undefined,
  };
}

/** A Hetzner action's progress. */
export interface HetznerAction {
  /** Action id. */
  id: number;
  /** `running`, `success` or `error`. */
  status: string;
  /** Command (`create_server`, …). */
  command: string;
  /** Error message when `status` is `error`. */
  error?: string;
}

/** Parse an action object. */
export function parseAction(v: unknown): HetznerAction {
  const a = asObject(v);
  if (typeof a.id !== "number" || typeof a.status !== "string") throw malformed("action");
  const err = asObject(a.error);
  return {
    id: a.id,
    status: a.status,
    command: typeof a.command === "string" ? a.command : "",
    error: typeof err.message === "string" ? `${err.code ?? "error"}: ${err.message}` : undefined,
  };
}

/** A Hetzner SSH key. */
export interface HetznerSshKey {
  /** Id. */
  id: number;
  /** Name. */
  name: string;
  /** MD5 fingerprint. */
  fingerprint: string;
  /** Labels. */
  labels: Labels;
}

/** Parse an SSH key object. */
export function parseSshKey(v: unknown): HetznerSshKey {
  const k = asObject(v);
  if (typeof k.id !== "number") throw malformed("ssh key");
  const labels: Labels = {};
  for (const [key, val] of Object.entries(asObject(k.labels))) {
    if (typeof val === "string") labels[key] = val;
  }
  return {
    id: k.id,
    name: typeof k.name === "string" ? k.name : "",
    fingerprint: typeof k.fingerprint === "string" ? k.fingerprint : "",
    labels,
  };
}

/** Map a Hetzner status to the provider-neutral lease state. */
export function leaseState(status: string): ProviderLease["state"] {
  switch (status) {
    case "initializing":
    case "starting":
      return "creating";
    case "running":
      return "running";
    case "stopping":
    case "off":
      return "stopped";
    case "deleting":
      return "deleting";
    default:
      return "unknown";
  }
}

/**
 * A server as a {@link ProviderLease}; `undefined` for servers without the
 * reserved labels (crabbox never touches those). The SSH key path is the
 * crew's generated key.
 */
export function serverToLease(
  server: HetznerServer,
  settings: HetznerSettings,
  home: string,
  keyPath?: string,
): ProviderLease | undefined {
  const owner = ownerOf(server.labels);
  if (!owner || !isLeaseId(owner.leaseId)) return undefined;
  return {
    providerId: String(server.id),
    leaseId: owner.leaseId,
    labels: server.labels,
    state: leaseState(server.status),
    ssh: server.ipv4
      ? {
        host: server.ipv4,
        port: settings.sshPort,
        user: settings.sshUser,
        keyPath: keyPath ?? clientKeyPath(home, owner),
      }
      : undefined,
    createdAt: server.created,
    data: { name: server.name, serverType: server.serverType, location: server.location },
  };
}

/** The decoded error envelope. */
export interface HetznerApiError {
  /** Hetzner error code, e.g. `invalid_input`. */
  code: string;
  /** Hetzner's message. */
  message: string;
  /** Field names from `details.fields` (invalid_input, uniqueness_error). */
  fields: string[];
}

/** Decode `{"error": {...}}`; tolerates a non-JSON body. */
export function parseApiError(status: number, text: string): HetznerApiError {
  const err = errorEnvelope(text);
  const fields = Array.isArray(asObject(err.details).fields)
    ? (asObject(err.details).fields as unknown[]).map((f) => asObject(f).name).filter((n) =>
      typeof n === "string"
    ) as string[]
    : [];
  return {
    code: typeof err.code === "string" ? err.code : `http_${status}`,
    message: capMessage(typeof err.message === "string" ? err.message : text),
    fields,
  };
}

/** What the failed request was doing, for error messages. */
export interface HetznerRequestContext {
  /** HTTP method. */
  method: string;
  /** Path (no host, no secrets). */
  path: string;
  /** Server type being created, if any. */
  serverType?: string;
  /** Location being created in, if any. */
  location?: string;
}

const AUTH = new Set(["unauthorized", "forbidden", "token_readonly"]);

const CAPACITY = new Set([
  "resource_unavailable",
  "server_type_not_available",
  "location_not_available",
  "placement_error",
  "dedicated_core_limit",
]);

/**
 * Map an HTTP status + Hetzner error to a {@link CrabboxError}. 401/403 are
 * credentials errors naming `HCLOUD_TOKEN` (except quota errors); capacity
 * codes name the server type and location.
 *
 * @example
 * ```ts
 * import { hetznerError } from "./api.ts";
 * hetznerError(401, { code: "unauthorized", message: "unable to authenticate", fields: [] },
 *   { method: "GET", path: "/servers" }).kind; // "credentials"
 * ```
 */
export function hetznerError(
  status: number,
  err: HetznerApiError,
  ctx: HetznerRequestContext,
): CrabboxError {
  const where = `${ctx.method} ${ctx.path.split("?")[0]}`;
  const details = { status, code: err.code, fields: err.fields };
  const said = `${err.code}: ${err.message}`;
  if (err.code === "resource_limit_exceeded") {
    return new CrabboxError(
      "provider",
      "hetzner_limit",
      `Hetzner project limit reached (${said})`,
      {
        hint: "delete unused servers or ask Hetzner to raise the project limit",
        details,
      },
    );
  }
  if (CAPACITY.has(err.code)) {
    const type = ctx.serverType ?? "the server type";
    const loc = ctx.location ? `location ${ctx.location}` : "any location";
    return new CrabboxError(
      "provider",
      "hetzner_unavailable",
      `Hetzner has no ${type} available in ${loc} right now (${said})`,
      { hint: "set hetzner.serverType or hetzner.location to another one and retry", details },
    );
  }
  if (AUTH.has(err.code) || status === 401 || (status === 403 && err.code.startsWith("http_"))) {
    return new CrabboxError(
      "credentials",
      "hetzner_auth",
      `Hetzner rejected HCLOUD_TOKEN (${status} ${said}) on ${where}`,
      {
        hint: status === 403
          ? "HCLOUD_TOKEN needs Read & Write permission in this project"
          : "check HCLOUD_TOKEN: it must be a valid API token of the project",
        details,
      },
    );
  }
  if (
    err.code === "invalid_input" || err.code === "uniqueness_error" || err.code === "json_error"
  ) {
    const f = err.fields.length > 0 ? ` [fields: ${err.fields.join(", ")}]` : "";
    return new CrabboxError(
      "provider",
      `hetzner_${err.code}`,
      `Hetzner rejected ${where}: ${err.message}${f}`,
      { details },
    );
  }
  if (status === 429 || err.code === "rate_limit_exceeded") {
    return new CrabboxError(
      "provider",
      "hetzner_rate_limited",
      `Hetzner rate limit exceeded on ${where} and retries ran out`,
      { hint: "wait a minute; Hetzner refills one request per second", details },
    );
  }
  return new CrabboxError(
    "provider",
    "hetzner_error",
    `Hetzner ${where} failed: ${status} ${said}`,
    {
      details,
    },
  );
}

/**
 * How long to wait after a 429: until `RateLimit-Reset` (unix seconds),
 * at least `minMs`, at most `maxMs`.
 *
 * @example
 * ```ts
 * import { rateLimitDelayMs } from "./api.ts";
 * rateLimitDelayMs(new Headers({ "RateLimit-Reset": "1002" }), 1_000_000, 250, 30_000); // 2000
 * ```
 */
export function rateLimitDelayMs(headers: Headers, nowMs: number, minMs: number, maxMs: number) {
  const reset = Number(headers.get("RateLimit-Reset"));
  const wait = Number.isFinite(reset) && reset > 0 ? reset * 1000 - nowMs : minMs;
  return Math.min(maxMs, Math.max(minMs, Math.ceil(wait)));
}
