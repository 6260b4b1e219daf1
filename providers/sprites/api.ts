/**
 * The Sprites REST + WebSocket API, the pure half: settings, names, request
 * builders (create body, list path, exec and proxy URLs, the proxy hello),
 * response parsers and error mapping. `provider.ts` is the fetch/WebSocket
 * shell around it.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { retryAfterMs } from "../../lib/core/retry_after.ts";
import type { EnvReader } from "../../lib/core/fs.ts";
import type { Labels } from "../../lib/core/labels.ts";
import { apiBaseUrl, configString } from "../cloud/common.ts";
import { decodeFlatTags, encodeFlatTags } from "../cloud/flat_tags.ts";
import { capMessage } from "../cloud/request_data.ts";
import { wsUrl } from "../cloud/ws_tunnel.ts";
import type { CreateSpec, ProviderLease } from "../types.ts";

/** Documented production endpoint. */
export const SPRITES_API_URL = "https://api.sprites.dev";
/** Token variables, first set wins (upstream's order). */
export const SPRITES_TOKEN_VARS = [
  "CRABBOX_SPRITES_TOKEN",
  "SPRITES_TOKEN",
  "SPRITE_TOKEN",
  "SETUP_SPRITE_TOKEN",
] as const;
/** Largest `max_results` the list accepts. */
export const SPRITES_MAX_RESULTS = 50;
/** Every crabbox sprite's name starts with this (the list `prefix=`). */
export const SPRITES_NAME_PREFIX = "crabbox-";

/** Resolved settings. */
export interface SpritesSettings {
  /** API base URL without trailing slash. */
  baseUrl: string;
  /** Login user on the sprite (default `sprite`). */
  sshUser: string;
}

/**
 * Settings from `CRABBOX_SPRITES_API_URL` and config (`sprites.sshUser`).
 *
 * @example
 * ```ts
 * import { spritesSettings } from "./api.ts";
 * spritesSettings(() => undefined, {}).sshUser; // "sprite"
 * ```
 */
export function spritesSettings(env: EnvReader, config: Record<string, unknown>): SpritesSettings {
  const raw = env("CRABBOX_SPRITES_API_URL")?.trim() || SPRITES_API_URL;
  return {
    baseUrl: apiBaseUrl("CRABBOX_SPRITES_API_URL", raw).href.replace(/\/+$/, ""),
    sshUser: configString(config, "sprites", "sshUser") ?? "sprite",
  };
}

/** A token and the variable it came from. */
export interface SpritesToken {
  /** The secret. */
  token: string;
  /** Where it was read (named in errors, never the token itself). */
  variable: string;
}

/** The API token (first of {@link SPRITES_TOKEN_VARS} set); a credentials error when none is. */
export function spritesToken(env: EnvReader): SpritesToken {
  for (const name of SPRITES_TOKEN_VARS) {
    const v = env(name)?.trim();
    if (v) return { token: v, variable: name };
  }
  throw new CrabboxError(
    "credentials",
    "sprites_no_token",
    `${SPRITES_TOKEN_VARS[0]} (or SPRITES_TOKEN) is not set`,
    { hint: "create a token at sprites.dev and export SPRITES_TOKEN" },
  );
}

/**
 * Sprite name: `crabbox-<slug>-<lease hex>` (names are the id, unique per org).
 *
 * @example
 * ```ts
 * import { spriteName } from "./api.ts";
 * spriteName({ slug: "api", leaseId: "cbx-0123456789ab" }); // "crabbox-api-0123456789ab"
 * ```
 */
export function spriteName(spec: { slug: string; leaseId: string }): string {
  return `${SPRITES_NAME_PREFIX}${spec.slug}-${spec.leaseId.slice(4)}`;
}

/** True for a name crabbox could have made (a safe path segment). */
export function isSpriteName(name: string): boolean {
  return /^crabbox-[a-z0-9-]{1,80}$/.test(name);
}

/** The `POST /v1/sprites` body. */
export interface CreateSpriteBody {
  /** Sprite name. */
  name: string;
  /** Reserved labels as flat tags. */
  labels: string[];
}

/** Build the create body for a lease. */
export function createSpriteBody(spec: CreateSpec): CreateSpriteBody {
  return { name: spriteName(spec), labels: encodeFlatTags(spec.labels) };
}

/**
 * Path + query of one list page.
 *
 * @example
 * ```ts
 * import { listPath } from "./api.ts";
 * listPath(undefined); // "/v1/sprites?prefix=crabbox-&max_results=50"
 * ```
 */
export function listPath(
  continuationToken: string | undefined,
  maxResults = SPRITES_MAX_RESULTS,
): string {
  const q = new URLSearchParams({ prefix: SPRITES_NAME_PREFIX, max_results: String(maxResults) });
  if (continuationToken) q.set("continuation_token", continuationToken);
  return `/v1/sprites?${q}`;
}

/** A sprite as the API reports it. */
export interface Sprite {
  /** Name (the id). */
  name: string;
  /** `cold`, `warm`, `running`, … */
  status?: string;
  /** Flat labels, when the answer carries them. */
  labels?: string[];
  /** Creation time. */
  createdAt?: string;
}

/** Parse one sprite object; a provider error when it has no name. */
export function parseSprite(v: unknown): Sprite {
  const o = (v ?? {}) as Record<string, unknown>;
  if (typeof o.name !== "string" || o.name === "") {
    throw new CrabboxError(
      "provider",
      "sprites_bad_response",
      "Sprites returned a sprite without a name",
    );
  }
  return {
    name: o.name,
    status: typeof o.status === "string" ? o.status : undefined,
    labels: Array.isArray(o.labels)
      ? o.labels.filter((l): l is string => typeof l === "string")
      : undefined,
    createdAt: typeof o.created_at === "string" ? o.created_at : undefined,
  };
}

/** One list page. */
export interface SpritePage {
  /** Sprites on this page. */
  sprites: Sprite[];
  /** Token of the next page, when there is one. */
  next?: string;
}

/** Parse `{sprites, has_more, next_continuation_token}`. */
export function parseSpritePage(v: unknown): SpritePage {
  const o = (v ?? {}) as Record<string, unknown>;
  if (!Array.isArray(o.sprites)) {
    throw new CrabboxError(
      "provider",
      "sprites_bad_response",
      "Sprites list answer has no sprites array",
    );
  }
  const token = typeof o.next_continuation_token === "string" && o.next_continuation_token !== ""
    ? o.next_continuation_token
    : undefined;
  return { sprites: o.sprites.map(parseSprite), next: o.has_more === true ? token : undefined };
}

/** The labels a sprite carries; `undefined` when the answer had none. */
export function spriteLabels(sprite: Sprite): Labels | undefined {
  return sprite.labels ? decodeFlatTags(sprite.labels) : undefined;
}

/** A sprite as a provider lease (SSH target added by the provider); `undefined` when not crabbox's. */
export function spriteToLease(sprite: Sprite): ProviderLease | undefined {
  const labels = spriteLabels(sprite);
  const leaseId = labels?.["crabbox-lease"];
  if (!labels || labels.crabbox !== "true" || !leaseId) return undefined;
  return {
    providerId: sprite.name,
    leaseId,
    labels,
    // A hibernated (cold) sprite wakes on the next exec or proxy connection.
    state: ["cold", "warm", "running"].includes(sprite.status ?? "running") ? "running" : "unknown",
    createdAt: sprite.createdAt,
    data: { status: sprite.status ?? "unknown" },
  };
}

/**
 * WebSocket URL of an exec: `cmd` once per argv word, `env=K=V` per variable,
 * no stdin, no tty.
 *
 * @example
 * ```ts
 * import { execUrl } from "./api.ts";
 * execUrl("https://api.sprites.dev", "crabbox-a-1", ["bash", "-lc", "true"], { A: "1" }).search;
 * // "?cmd=bash&cmd=-lc&cmd=true&env=A%3D1&stdin=false&tty=false"
 * ```
 */
export function execUrl(
  baseUrl: string,
  name: string,
  argv: readonly string[],
  env: Record<string, string> = {},
): URL {
  const url = wsUrl(baseUrl, `/v1/sprites/${encodeURIComponent(name)}/exec`);
  for (const word of argv) url.searchParams.append("cmd", word);
  for (const [k, v] of Object.entries(env)) url.searchParams.append("env", `${k}=${v}`);
  url.searchParams.set("stdin", "false");
  url.searchParams.set("tty", "false");
  return url;
}

/** WebSocket URL of the TCP proxy of a sprite. */
export function proxyUrl(baseUrl: string, name: string): URL {
  return wsUrl(baseUrl, `/v1/sprites/${encodeURIComponent(name)}/proxy`);
}

/** The first (text) message on the proxy socket. */
export function proxyHello(port: number): string {
  return JSON.stringify({ host: "localhost", port });
}

/**
 * Check the proxy's answer to the hello: `{"status":"connected",…}` is ok;
 * anything else is a provider error quoting it.
 *
 * @example
 * ```ts
 * import { checkProxyReply } from "./api.ts";
 * checkProxyReply('{"status":"connected","target":"localhost:22"}', "crabbox-a-1"); // ok
 * ```
 */
export function checkProxyReply(reply: string | Uint8Array | undefined, name: string): void {
  let status: unknown;
  let detail = "";
  if (typeof reply === "string") {
    try {
      const o = JSON.parse(reply) as Record<string, unknown>;
      status = o.status;
      detail = String(o.message ?? o.error ?? o.status ?? "");
    } catch {
      detail = reply.slice(0, 200);
    }
  } else detail = reply === undefined ? "the proxy closed" : "binary data before the handshake";
  if (status === "connected") return;
  throw new CrabboxError(
    "ssh",
    "sprites_proxy_refused",
    `Sprites proxy to ${name} did not connect: ${detail || "no status"}`,
  );
}

/** Sprites' error body. */
export interface SpritesApiError {
  /** Error code (`sprite_creation_rate_limited`, …) or the HTTP status text. */
  code: string;
  /** Message. */
  message: string;
  /** Seconds to wait, from the body. */
  retryAfterSeconds?: number;
}

/** Parse `{"error","message","retry_after_seconds",…}` (or plain text). */
export function parseSpritesError(status: number, text: string): SpritesApiError {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const code = typeof o.error === "string" ? o.error : `http_${status}`;
    const message = capMessage(typeof o.message === "string" ? o.message : code);
    const retry = typeof o.retry_after_seconds === "number" ? o.retry_after_seconds : undefined;
    return { code, message, retryAfterSeconds: retry };
  } catch {
    return { code: `http_${status}`, message: capMessage(text) || `HTTP ${status}` };
  }
}

/**
 * Milliseconds to wait after a 429: `Retry-After` (seconds or a date), else
 * the body's `retry_after_seconds`, else 1 s; capped at `capMs`.
 *
 * @example
 * ```ts
 * import { rateLimitWaitMs } from "./api.ts";
 * rateLimitWaitMs(new Headers({ "retry-after": "3" }), undefined, 30000, 0); // 3000
 * ```
 */
export function rateLimitWaitMs(
  headers: Headers,
  bodySeconds: number | undefined,
  capMs: number,
  now: number,
): number {
  const ms = retryAfterMs(headers.get("retry-after"), now) ??
    (bodySeconds === undefined ? 1000 : bodySeconds * 1000);
  return Math.min(capMs, Math.max(0, Math.round(ms)));
}

/** Sprites' answer to too many live sprites: waiting does not help, releasing one does. */
export function isConcurrencyLimit(err: SpritesApiError): boolean {
  return err.code === "concurrent_sprite_limit_exceeded";
}

/**
 * Map a final error answer to a {@link CrabboxError}; a refused token names
 * the variable it came from (`tokenVariable`).
 */
export function spritesError(
  status: number,
  err: SpritesApiError,
  what: string,
  tokenVariable = "SPRITES_TOKEN",
): CrabboxError {
  const text = `Sprites ${what} failed: ${err.message} (${err.code})`;
  const limit = /limit|rate_limited|capacity/.test(err.code);
  if (status === 401 || (status === 403 && !limit)) {
    return new CrabboxError(
      "credentials",
      "sprites_unauthorized",
      `${text}: the token in ${tokenVariable} was refused`,
      { hint: `check ${tokenVariable}` },
    );
  }
  if (status === 404) return new CrabboxError("notFound", "sprites_not_found", text);
  return new CrabboxError(
    "provider",
    `sprites_${status === 429 ? "rate_limited" : "error"}`,
    text,
    {
      details: { status, code: err.code },
    },
  );
}
