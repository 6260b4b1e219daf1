/**
 * Daytona API (`https://app.daytona.io/api`, Bearer API key or JWT +
 * `X-Daytona-Organization-ID`), the pure half: settings, the
 * `POST /sandbox` body with the reserved labels, the `labels` JSON list
 * query, sandbox and ssh-access parsers (`sshCommand` may carry `-p`), both
 * list shapes (`{items, nextCursor}` and the older plain array), and error
 * mapping. Boxes are reached through Daytona's SSH gateway, where an access
 * token is the user name.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import { decodeLabels, type Labels } from "../../lib/core/labels.ts";
import { apiBaseUrl, configInt, configString } from "../cloud/common.ts";
import { type ApiFailure, errorMessage, restError } from "../cloud/http_api.ts";
import { leaseResourceName } from "../cloud/lease_identity.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Documented production endpoint. */
export const DAYTONA_API_URL = "https://app.daytona.io/api";
/** Default SSH gateway. */
export const DAYTONA_SSH_GATEWAY = "ssh.app.daytona.io";

/** Resolved Daytona settings (no secrets). */
export interface DaytonaSettings {
  /** API base URL without trailing slash. */
  baseUrl: string;
  /** Snapshot the sandbox starts from. */
  snapshot: string;
  /** Region (`us`, `eu`), when set. */
  target?: string;
  /** OS user inside the sandbox. */
  user: string;
  /** SSH gateway host when `sshCommand` names none. */
  gatewayHost: string;
  /** Lifetime of an SSH access token in minutes. */
  sshAccessMinutes: number;
}

/** Credentials: a Bearer token and, for a JWT, the organization. */
export interface DaytonaAuth {
  /** API key or JWT. */
  bearer: string;
  /** `X-Daytona-Organization-ID`, when known (required with a JWT). */
  organizationId?: string;
}

function first(env: EnvReader, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env(n)?.trim();
    if (v) return v;
  }
  return undefined;
}

/**
 * Settings from env (upstream names: `CRABBOX_DAYTONA_*` / `DAYTONA_*`) and
 * `daytona:` in config.yaml. A snapshot is required.
 *
 * @example
 * ```ts
 * import { daytonaSettings } from "./api.ts";
 * daytonaSettings((k) => (k === "DAYTONA_SNAPSHOT" ? "daytonaio/sandbox:0.4.3" : undefined), {}).user; // "daytona"
 * ```
 */
export function daytonaSettings(env: EnvReader, config: Record<string, unknown>): DaytonaSettings {
  const raw = first(env, "CRABBOX_DAYTONA_API_URL", "DAYTONA_API_URL") ?? DAYTONA_API_URL;
  const snapshot = first(env, "CRABBOX_DAYTONA_SNAPSHOT", "DAYTONA_SNAPSHOT") ??
    configString(config, "daytona", "snapshot");
  if (!snapshot) {
    throw new CrabboxError("config", "daytona_no_snapshot", "no Daytona snapshot is configured", {
      hint:
        "set daytona.snapshot in config.yaml or export DAYTONA_SNAPSHOT (e.g. daytonaio/sandbox:0.4.3)",
    });
  }
  const gateway = first(env, "CRABBOX_DAYTONA_SSH_GATEWAY_HOST") ?? DAYTONA_SSH_GATEWAY;
  if (!/^[A-Za-z0-9.-]+$/.test(gateway) || gateway.startsWith("-")) {
    throw new CrabboxError(
      "usage",
      "bad_endpoint",
      "CRABBOX_DAYTONA_SSH_GATEWAY_HOST is not a host name",
    );
  }
  const minutesRaw = first(env, "CRABBOX_DAYTONA_SSH_ACCESS_MINUTES");
  const minutes = minutesRaw === undefined
    ? configInt(config, "daytona", "sshAccessMinutes", 60, 1, 1440)
    : Number(minutesRaw);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
    throw new CrabboxError(
      "config",
      "bad_config_value",
      "CRABBOX_DAYTONA_SSH_ACCESS_MINUTES must be 1..1440",
    );
  }
  return {
    baseUrl: apiBaseUrl("CRABBOX_DAYTONA_API_URL", raw).href.replace(/\/+$/, ""),
    snapshot,
    target: first(env, "CRABBOX_DAYTONA_TARGET", "DAYTONA_TARGET") ??
      configString(config, "daytona", "target"),
    user: first(env, "CRABBOX_DAYTONA_USER") ?? configString(config, "daytona", "user") ??
      "daytona",
    gatewayHost: gateway,
    sshAccessMinutes: minutes,
  };
}

/**
 * Credentials: an API key (`CRABBOX_DAYTONA_API_KEY` / `DAYTONA_API_KEY`), or
 * a JWT (`…_JWT_TOKEN`) which needs `…_ORGANIZATION_ID`.
 */
export function daytonaAuth(env: EnvReader): DaytonaAuth {
  const org = first(env, "CRABBOX_DAYTONA_ORGANIZATION_ID", "DAYTONA_ORGANIZATION_ID");
  const key = first(env, "CRABBOX_DAYTONA_API_KEY", "DAYTONA_API_KEY");
  if (key) return { bearer: key, organizationId: org };
  const jwt = first(env, "CRABBOX_DAYTONA_JWT_TOKEN", "DAYTONA_JWT_TOKEN");
  if (jwt && !org) {
    throw new CrabboxError(
      "credentials",
      "daytona_no_org",
      "DAYTONA_JWT_TOKEN needs DAYTONA_ORGANIZATION_ID",
      { hint: "export DAYTONA_ORGANIZATION_ID (or use an API key in DAYTONA_API_KEY)" },
    );
  }
  if (jwt) return { bearer: jwt, organizationId: org };
  throw new CrabboxError("credentials", "daytona_no_key", "DAYTONA_API_KEY is not set", {
    hint: "create an API key in the Daytona dashboard and export DAYTONA_API_KEY",
  });
}

/** Headers of every call. */
export function daytonaHeaders(auth: DaytonaAuth): Record<string, string> {
  const h: Record<string, string> = { authorization: `Bearer ${auth.bearer}` };
  if (auth.organizationId) h["x-daytona-organization-id"] = auth.organizationId;
  return h;
}

/** The `POST /sandbox` body: labels, no auto-stop, no auto-delete. */
export function createSandboxBody(spec: CreateSpec, s: DaytonaSettings): Record<string, unknown> {
  const body: Record<string, unknown> = {
    name: leaseResourceName(spec),
    snapshot: s.snapshot,
    user: s.user,
    labels: { ...spec.labels },
    autoStopInterval: 0,
    autoDeleteInterval: -1,
  };
  if (s.target) body.target = s.target;
  return body;
}

/**
 * Path + query of one list page: `labels` is a JSON object.
 *
 * @example
 * ```ts
 * import { listPath } from "./api.ts";
 * listPath({ crabbox: "true" }); // "/sandbox?labels=%7B%22crabbox%22%3A%22true%22%7D&limit=100"
 * ```
 */
export function listPath(labels: Labels, cursor?: string): string {
  const q = new URLSearchParams({ labels: JSON.stringify(labels), limit: "100" });
  if (cursor) q.set("cursor", cursor);
  return `/sandbox?${q}`;
}

/** The fields of a sandbox crabbox uses. */
export interface DaytonaSandbox {
  /** Id. */
  id: string;
  /** Name. */
  name: string;
  /** State (`started`, `creating`, …). */
  state: string;
  /** Labels. */
  labels: Labels;
  /** Error reason when failed. */
  errorReason?: string;
  /** Creation time. */
  createdAt?: string;
}

function obj(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}

function malformed(what: string): CrabboxError {
  return new CrabboxError(
    "provider",
    "daytona_bad_response",
    `Daytona returned a malformed ${what}`,
  );
}

/** Parse a sandbox. */
export function parseSandbox(v: unknown): DaytonaSandbox {
  const s = obj(v);
  if (typeof s.id !== "string" || s.id === "") throw malformed("sandbox");
  const labels: Labels = {};
  for (const [k, val] of Object.entries(obj(s.labels))) {
    if (typeof val === "string") labels[k] = val;
  }
  return {
    id: s.id,
    name: typeof s.name === "string" ? s.name : "",
    state: typeof s.state === "string" ? s.state : "unknown",
    labels,
    errorReason: typeof s.errorReason === "string" ? s.errorReason : undefined,
    createdAt: typeof s.createdAt === "string" ? s.createdAt : undefined,
  };
}

/** Parse a list answer: `{items, nextCursor}` or the older plain array. */
export function parseSandboxPage(v: unknown): { items: DaytonaSandbox[]; next?: string } {
  if (Array.isArray(v)) return { items: v.map(parseSandbox) };
  const root = obj(v);
  if (!Array.isArray(root.items)) throw malformed("sandbox list");
  const next = root.nextCursor;
  return {
    items: root.items.map(parseSandbox),
    next: typeof next === "string" && next !== "" ? next : undefined,
  };
}

/** States after which a sandbox will not start. */
export const DAYTONA_FAILED = new Set(["error", "build_failed", "destroyed", "destroying"]);

/** An SSH access grant. The token is a credential: never log or store it in a claim. */
export interface SshAccess {
  /** Token (the gateway user name). */
  token: string;
  /** Expiry, ISO 8601. */
  expiresAt: string;
  /** Gateway host. */
  host: string;
  /** Gateway port. */
  port: number;
}

/**
 * Parse `POST /sandbox/{id}/ssh-access`: token, expiry and the gateway host
 * and port from `sshCommand` (`ssh [-p N] <token>@<host>`).
 *
 * @example
 * ```ts
 * import { parseSshAccess } from "./api.ts";
 * parseSshAccess({ token: "tok123", expiresAt: "2026-01-01T00:00:00Z",
 *   sshCommand: "ssh -p 2222 tok123@ssh.app.daytona.io" }, "ssh.app.daytona.io").port; // 2222
 * ```
 */
export function parseSshAccess(v: unknown, fallbackHost: string): SshAccess {
  const a = obj(v);
  if (typeof a.token !== "string" || !/^[A-Za-z0-9_.-]{4,255}$/.test(a.token)) {
    throw malformed("ssh access token");
  }
  const expires = typeof a.expiresAt === "string" ? Date.parse(a.expiresAt) : NaN;
  if (Number.isNaN(expires)) throw malformed("ssh access expiry");
  let host = fallbackHost;
  let port = 22;
  if (typeof a.sshCommand === "string") {
    const words = a.sshCommand.trim().split(/\s+/);
    if (words[0] !== "ssh") throw malformed("ssh command");
    for (let i = 1; i < words.length; i++) {
      if (words[i] === "-p" && /^[0-9]{1,5}$/.test(words[i + 1] ?? "")) port = Number(words[++i]);
      else if (words[i].includes("@")) {
        const [user, h] = words[i].split("@");
        if (user !== a.token || !/^[A-Za-z0-9.-]+$/.test(h ?? "") || h.startsWith("-")) {
          throw malformed("ssh command");
        }
        host = h;
      }
    }
  }
  if (port < 1 || port > 65535) throw malformed("ssh command port");
  return { token: a.token, expiresAt: new Date(expires).toISOString(), host, port };
}

/** A sandbox as a lease (no SSH target: the shell adds the gateway's); `undefined` unless ours. */
export function sandboxToLease(sb: DaytonaSandbox): ProviderLease | undefined {
  const facts = decodeLabels(sb.labels);
  if (!facts) return undefined;
  const state: ProviderLease["state"] = sb.state === "started"
    ? "running"
    : sb.state === "stopped" || sb.state === "archived"
    ? "stopped"
    : sb.state === "destroying" || sb.state === "destroyed"
    ? "deleting"
    : DAYTONA_FAILED.has(sb.state) || sb.state === "unknown"
    ? "unknown"
    : "creating";
  return {
    providerId: sb.id,
    leaseId: facts.leaseId,
    labels: sb.labels,
    state,
    createdAt: sb.createdAt,
    data: { name: sb.name },
  };
}

/**
 * Map a failed answer: a quota/capacity message → capacity (exit 4,
 * Daytona's words), else the common REST mapping (401/403 → exit 9 naming
 * `DAYTONA_API_KEY`, 404 → not found, 409 → conflict, which delete retries).
 * Both error body generations carry `message` (a string or a list).
 *
 * @example
 * ```ts
 * import { daytonaError } from "./api.ts";
 * daytonaError({ status: 409, text: '{"statusCode":409,"message":"State change in progress"}',
 *   where: "DELETE /sandbox/x" }).code; // "daytona_conflict"
 * ```
 */
export function daytonaError(f: ApiFailure): CrabboxError {
  const said = errorMessage(f.text, ["message"]);
  if (/quota|limit exceeded|no available runner|insufficient resources/i.test(said)) {
    return new CrabboxError("provider", "daytona_capacity", `Daytona has no capacity: ${said}`, {
      hint:
        "release unused sandboxes, pick another daytona.target, or raise the organization's quota",
      details: { status: f.status },
    });
  }
  return restError(f, said, {
    provider: "daytona",
    label: "Daytona",
    credentials: "DAYTONA_API_KEY (or DAYTONA_JWT_TOKEN)",
    hint: "check DAYTONA_API_KEY (or DAYTONA_JWT_TOKEN with DAYTONA_ORGANIZATION_ID)",
  });
}
