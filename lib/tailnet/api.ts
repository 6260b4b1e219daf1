/**
 * A small Tailscale API client: read and write the tailnet policy file
 * (HuJSON, ETag / If-Match) and create auth keys. Every effect is injected
 * (`fetch`, `sleep`, clock, environment), every error is a {@link CrabboxError}
 * that names the call that failed and how to fix it, and no secret (API key,
 * OAuth secret or token, auth key) ever reaches an error or debug line.
 *
 * @module
 */

import { sleep } from "../core/async.ts";
import { CrabboxError, type ExitStatusName } from "../core/errors.ts";
import { processEnv } from "../core/fs.ts";
import { redact, secretForms } from "../core/redact.ts";
import { retryAfterMs } from "../core/retry_after.ts";
import {
  type EnvSource,
  resolveTailnetConfig,
  type TailnetAuth,
  type TailnetConfig,
} from "./config.ts";

/** Options shared by the client and the functions that build one. */
export interface TailnetClientOptions {
  /** Environment variables (map or lookup). Default: the process environment, read at call time. */
  env?: EnvSource;
  /** The `fetch` to use. Default: `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Cancels every request. */
  signal?: AbortSignal;
  /** Sleeps `ms` milliseconds (429 back-off). Default: a timer that the signal cancels. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Milliseconds since the epoch (OAuth token expiry). Default: `Date.now`. */
  now?: () => number;
  /** Per-request timeout in milliseconds (default 15 000). */
  timeoutMs?: number;
  /** How many times a 429 answer is retried (default 3). */
  rateLimitRetries?: number;
  /** Longest `Retry-After` wait accepted, in milliseconds (default 30 000); longer fails. */
  maxRetryAfterMs?: number;
  /** Receives one redacted line per request, for `--debug`. */
  debug?: (line: string) => void;
}

/** The tailnet policy as read from the API. */
export interface TailnetPolicy {
  /** The HuJSON text, exactly as served. */
  text: string;
  /** The ETag, normalized to its quoted strong form, e.g. `"e0b2…"`. */
  etag: string;
}

/** OAuth scopes the client asks for. */
export type TailnetScope =
  | "policy_file"
  | "policy_file:read"
  | "auth_keys"
  | "devices:core"
  | "devices:core:read";

const DEFAULT_TIMEOUT_MS = 15_000;
const DEFAULT_RATE_LIMIT_RETRIES = 3;
const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;
/** Refresh OAuth tokens this long before they expire. */
const TOKEN_MARGIN_MS = 60_000;

/** Error code for "this control plane has no Tailscale-compatible policy API". */
export const POLICY_API_UNAVAILABLE = "tailnet_policy_api_unavailable";
/** Error code for a 412 on a policy write (the policy changed since it was read). */
export const POLICY_CHANGED = "tailnet_policy_changed";

/**
 * Normalizes an ETag to the quoted strong form Tailscale expects in
 * `If-Match`: drops a `W/` prefix and surrounding quotes, then re-quotes.
 *
 * @example
 * ```ts
 * import { normalizeEtag } from "./api.ts";
 * normalizeEtag('W/"abc"'); // '"abc"'
 * normalizeEtag("abc"); // '"abc"'
 * ```
 */
export function normalizeEtag(etag: string): string {
  let v = etag.trim();
  if (v.startsWith("W/")) v = v.slice(2);
  v = v.replace(/^"+|"+$/g, "");
  return `"${v}"`;
}

/** One API call for {@link TailnetClient.request}. */
export interface RequestSpec {
  /** What the call does, for messages: e.g. "read the tailnet policy". */
  what: string;
  /** HTTP method. */
  method: string;
  /** Path under `/api/v2`, e.g. `/tailnet/-/acl`. */
  path: string;
  /** Request headers (lowercase names). */
  headers?: Record<string, string>;
  /** Request body. */
  body?: string;
  /** OAuth scope needed; undefined = no auth (the token endpoint). */
  scope?: TailnetScope;
}

/** A response whose body has been read (under the same timeout). */
export interface TailnetResponse {
  /** HTTP status. */
  status: number;
  /** Response headers. */
  headers: Headers;
  /** Response body text. */
  body: string;
  /** `METHOD /api/v2/…` of the call, for messages. */
  call: string;
}

/**
 * A Tailscale API client. Construct it with {@link tailnetClientFromEnv} or
 * `new TailnetClient(options)`; it reads its settings once, at construction.
 *
 * @example
 * ```ts
 * import { TailnetClient } from "@crabbox/crabbox";
 * const client = new TailnetClient({ env: { TS_API_KEY: "tskey-api-…" } });
 * const { text, etag } = await client.getPolicy();
 * ```
 */
export class TailnetClient {
  /** API base URL without a trailing `/`. */
  readonly apiUrl: string;
  /** Tailnet name (unescaped). */
  readonly tailnet: string;
  /** Which credentials are used. */
  readonly authKind: TailnetAuth["kind"];
  readonly #auth: TailnetAuth;
  readonly #fetch: typeof fetch;
  readonly #signal?: AbortSignal;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #rateLimitRetries: number;
  readonly #maxRetryAfterMs: number;
  readonly #debug?: (line: string) => void;
  readonly #secrets = new Set<string>();
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();

  /**
   * Reads settings from `options.env` (default: the process environment).
   * Throws a `credentials` error when no credentials are configured.
   *
   * @param options environment, fetch, signal, sleep, clock and limits
   */
  constructor(options: TailnetClientOptions = {}) {
    const config: TailnetConfig = resolveTailnetConfig(options.env ?? processEnv);
    if (!config.auth) {
      throw new CrabboxError(
        "credentials",
        "tailnet_no_credentials",
        "no Tailscale API credentials: TS_API_KEY or TS_OAUTH_CLIENT_ID/TS_OAUTH_CLIENT_SECRET is not set",
        {
          hint:
            "create an API key (Settings → Keys) and export TS_API_KEY, or export an OAuth client's TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET",
        },
      );
    }
    this.apiUrl = config.apiUrl;
    this.tailnet = config.tailnet;
    this.#auth = config.auth;
    this.authKind = config.auth.kind;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#signal = options.signal;
    this.#sleep = options.sleep ?? sleep;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#rateLimitRetries = options.rateLimitRetries ?? DEFAULT_RATE_LIMIT_RETRIES;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    this.#debug = options.debug;
    const secrets = config.auth.kind === "api-key"
      ? secretForms(config.auth.apiKey)
      : [config.auth.clientSecret, btoa(`${config.auth.clientId}:${config.auth.clientSecret}`)];
    for (const s of secrets) this.#secrets.add(s);
  }

  /** The tailnet path segment, URL-escaped. */
  get tailnetPath(): string {
    return `/tailnet/${encodeURIComponent(this.tailnet)}`;
  }

  /**
   * Removes every secret this client knows (and anything shaped like a
   * Tailscale key) from `text`.
   *
   * @param text any text that may contain secrets
   * @param extra more secrets to remove (e.g. a freshly minted auth key)
   */
  redact(text: string, extra: readonly string[] = []): string {
    return redact(text, [...this.#secrets, ...extra]);
  }

  /**
   * `GET /api/v2/tailnet/{tailnet}/acl` as HuJSON with its ETag.
   *
   * Throws a `tailnet` error with code {@link POLICY_API_UNAVAILABLE} when the
   * control plane has no Tailscale-compatible policy API (404, 405, 501, a 401
   * with a non-JSON body, an HTML page, or a 2xx without `ETag`: Headscale).
   */
  async getPolicy(): Promise<TailnetPolicy> {
    const res = await this.request({
      what: "read the tailnet policy",
      method: "GET",
      path: `${this.tailnetPath}/acl`,
      headers: { accept: "application/hujson" },
      scope: "policy_file:read",
    });
    const unavailable = unavailableReason(res);
    if (unavailable) throw this.#unavailable(res, unavailable);
    if (res.status < 200 || res.status > 299) throw this.apiError("read the tailnet policy", res);
    const etag = res.headers.get("etag");
    if (!etag) throw this.#unavailable(res, `${res.call} answered ${res.status} without an ETag`);
    return { text: res.body, etag: normalizeEtag(etag) };
  }

  /**
   * `POST /api/v2/tailnet/{tailnet}/acl` with `If-Match`, replacing the whole
   * policy. Returns the new ETag when the server sends one. A 412 (the policy
   * changed since `etag` was read) throws code {@link POLICY_CHANGED}.
   *
   * @param text the complete new policy (HuJSON); must not be empty
   * @param etag the ETag of the policy `text` was derived from
   */
  async setPolicy(text: string, etag: string): Promise<{ etag?: string }> {
    if (text.trim() === "") {
      throw new CrabboxError(
        "tailnet",
        "tailnet_empty_policy",
        "refusing to write an empty tailnet policy (Tailscale would reset it to allow-all)",
      );
    }
    const res = await this.request({
      what: "write the tailnet policy",
      method: "POST",
      path: `${this.tailnetPath}/acl`,
      headers: {
        "content-type": "application/hujson",
        accept: "application/json",
        "if-match": normalizeEtag(etag),
      },
      body: text,
      scope: "policy_file",
    });
    if (res.status === 412) {
      throw new CrabboxError(
        "tailnet",
        POLICY_CHANGED,
        `${res.call}: the tailnet policy changed since it was read (412: ${
          this.#message(res) ?? "precondition failed"
        })`,
        { hint: "read the policy again and retry" },
      );
    }
    const unavailable = res.status === 404 || res.status === 405 || res.status === 501
      ? `${res.call} answered ${res.status}`
      : undefined;
    if (unavailable) throw this.#unavailable(res, unavailable);
    if (res.status < 200 || res.status > 299) throw this.apiError("write the tailnet policy", res);
    const next = res.headers.get("etag");
    return next ? { etag: normalizeEtag(next) } : {};
  }

  /**
   * Sends one authenticated API request (path under `/api/v2`) with the
   * timeout, 429 back-off and debug logging; reads the whole body. Does not
   * interpret the status: callers do.
   *
   * @param spec method, path, headers, body, OAuth scope and a description
   */
  async request(spec: RequestSpec): Promise<TailnetResponse> {
    const headers: Record<string, string> = { ...spec.headers };
    if (spec.scope) headers.authorization = await this.#authorization(spec.scope);
    return await this.#send(spec, headers);
  }

  /**
   * Builds the error for a non-2xx answer: credentials errors for 401/403,
   * Tailscale's `message` and `data[].errors` for 400, and a hint for each.
   *
   * @param what what the call does, e.g. "read the tailnet policy"
   * @param res the response
   * @param extraSecrets more secrets to redact
   */
  apiError(what: string, res: TailnetResponse, extraSecrets: readonly string[] = []): CrabboxError {
    const message = this.#message(res, extraSecrets);
    const details = this.#errorDetails(res, extraSecrets);
    const said = message ? `: ${message}` : "";
    const base = `cannot ${what}: ${res.call} answered ${res.status}${said}`;
    const credsHint = this.authKind === "api-key"
      ? "check TS_API_KEY: it may be expired or revoked (Settings → Keys)"
      : "check TS_OAUTH_CLIENT_ID / TS_OAUTH_CLIENT_SECRET (Settings → OAuth clients)";
    let kind: ExitStatusName = "tailnet";
    let code = "tailnet_api_error";
    let hint: string | undefined;
    if (res.status === 401) {
      kind = "credentials";
      code = "tailnet_unauthorized";
      hint = credsHint;
    } else if (res.status === 403) {
      kind = "credentials";
      code = "tailnet_forbidden";
      hint = this.authKind === "api-key"
        ? "the API key's user must be an Owner, Admin or Network admin of the tailnet"
        : "give the OAuth client the scopes crabbox needs: policy_file and auth_keys (with its tag)";
    } else if (res.status === 400) {
      code = "tailnet_rejected";
      hint = details.length > 0
        ? "fix what Tailscale reports above (a failing policy test blocks every edit), then retry"
        : undefined;
    } else if (res.status === 404) {
      code = "tailnet_not_found";
      hint = "check TS_TAILNET (use - for the credential's own tailnet)";
    } else if (res.status === 429) {
      code = "tailnet_rate_limited";
      hint = "the Tailscale API is rate limiting this client; wait a minute and retry";
    } else if (res.status >= 500) {
      code = "tailnet_server_error";
      hint = "the Tailscale API failed; retry later (status.tailscale.com)";
    }
    const text = details.length > 0 ? `${base}\n${details.map((d) => `  ${d}`).join("\n")}` : base;
    return new CrabboxError(kind, code, text, {
      hint,
      details: { status: res.status, call: res.call, message, errors: details },
    });
  }

  async #authorization(scope: TailnetScope): Promise<string> {
    const auth = this.#auth;
    if (auth.kind === "api-key") return `Basic ${btoa(`${auth.apiKey}:`)}`;
    const cached = this.#tokens.get(scope);
    if (cached && cached.expiresAt - TOKEN_MARGIN_MS > this.#now()) return `Bearer ${cached.token}`;
    const form = new URLSearchParams({
      grant_type: "client_credentials",
      client_id: auth.clientId,
      client_secret: auth.clientSecret,
      scope,
    });
    const res = await this.#send(
      { what: "get an OAuth access token", method: "POST", path: "/oauth/token" },
      {
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      form.toString(),
    );
    const unavailable = unavailableReason(res);
    if (unavailable) throw this.#unavailable(res, unavailable);
    if (res.status < 200 || res.status > 299) {
      const err = this.apiError("get an OAuth access token", res);
      if (res.status === 400 || res.status === 401 || res.status === 403) {
        throw new CrabboxError("credentials", "tailnet_oauth_rejected", err.message, {
          hint:
            `check TS_OAUTH_CLIENT_ID / TS_OAUTH_CLIENT_SECRET and that the OAuth client has the ${scope} scope`,
          details: err.details,
        });
      }
      throw err;
    }
    let token: unknown;
    let expiresIn: unknown;
    try {
      const json = JSON.parse(res.body);
      token = json?.access_token;
      expiresIn = json?.expires_in;
    } catch {
      token = undefined;
    }
    if (typeof token !== "string" || token === "") {
      throw new CrabboxError(
        "tailnet",
        "tailnet_oauth_bad_response",
        `cannot get an OAuth access token: ${res.call} answered ${res.status} without an access_token`,
        { hint: "check CRABBOX_TS_API_URL / TS_API_URL points at the Tailscale API" },
      );
    }
    this.#secrets.add(token);
    const seconds = typeof expiresIn === "number" && expiresIn > 0 ? expiresIn : 3600;
    this.#tokens.set(scope, { token, expiresAt: this.#now() + seconds * 1000 });
    return `Bearer ${token}`;
  }

  async #send(
    spec: RequestSpec,
    headers: Record<string, string>,
    body = spec.body,
  ): Promise<TailnetResponse> {
    const url = `${this.apiUrl}/api/v2${spec.path}`;
    const call = `${spec.method} /api/v2${spec.path}`;
    for (let attempt = 0;; attempt++) {
      this.#checkAborted(spec.what);
      const timeout = AbortSignal.timeout(this.#timeoutMs);
      const signal = this.#signal ? AbortSignal.any([this.#signal, timeout]) : timeout;
      const started = this.#now();
      this.#log(
        `-> ${call}${attempt > 0 ? ` (retry ${attempt})` : ""} ${this.#headerLine(headers)}`,
      );
      let res: TailnetResponse;
      try {
        const r = await this.#fetch(url, { method: spec.method, headers, body, signal });
        res = { status: r.status, headers: r.headers, body: await r.text(), call };
      } catch (e) {
        this.#checkAborted(spec.what);
        if (timeout.aborted) {
          throw new CrabboxError(
            "tailnet",
            "tailnet_timeout",
            `cannot ${spec.what}: ${call} got no answer from ${this.apiUrl} within ${this.#timeoutMs} ms`,
            { hint: "check the network, or CRABBOX_TS_API_URL / TS_API_URL" },
          );
        }
        const reason = this.redact(e instanceof Error ? e.message : String(e));
        throw new CrabboxError(
          "tailnet",
          "tailnet_unreachable",
          `cannot ${spec.what}: ${call} could not reach ${this.apiUrl}: ${reason}`,
          { hint: "check the network, or CRABBOX_TS_API_URL / TS_API_URL" },
        );
      }
      this.#log(`<- ${res.status} ${call} (${this.#now() - started} ms)`);
      if (res.status !== 429 || attempt >= this.#rateLimitRetries) return res;
      const wait = retryAfterMs(res.headers.get("retry-after"), this.#now()) ?? 1000 * 2 ** attempt;
      if (wait > this.#maxRetryAfterMs) return res;
      this.#log(`   rate limited; waiting ${wait} ms`);
      try {
        await this.#sleep(wait, this.#signal);
      } catch {
        this.#checkAborted(spec.what);
        throw new CrabboxError(
          "interrupted",
          "tailnet_aborted",
          `cannot ${spec.what}: interrupted`,
        );
      }
    }
  }

  #checkAborted(what: string): void {
    if (this.#signal?.aborted) {
      throw new CrabboxError("interrupted", "tailnet_aborted", `cannot ${what}: interrupted`);
    }
  }

  #headerLine(headers: Record<string, string>): string {
    return this.redact(
      Object.entries(headers)
        .map(([k, v]) => `${k}: ${k === "authorization" ? `${v.split(" ")[0]} [redacted]` : v}`)
        .join("; "),
    );
  }

  #log(line: string): void {
    this.#debug?.(this.redact(line));
  }

  #message(res: TailnetResponse, extra: readonly string[] = []): string | undefined {
    const json = parseJson(res.body);
    const m = json && typeof json === "object"
      ? (json as { message?: unknown }).message
      : undefined;
    return typeof m === "string" && m.trim() !== "" ? this.redact(m.trim(), extra) : undefined;
  }

  #errorDetails(res: TailnetResponse, extra: readonly string[]): string[] {
    const json = parseJson(res.body) as { data?: unknown } | undefined;
    const data = json && typeof json === "object" && Array.isArray(json.data) ? json.data : [];
    const out: string[] = [];
    for (const d of data) {
      if (!d || typeof d !== "object") continue;
      const { user, errors, warnings } = d as {
        user?: unknown;
        errors?: unknown;
        warnings?: unknown;
      };
      const who = typeof user === "string" && user ? `${user}: ` : "";
      for (const [list, label] of [[errors, ""], [warnings, "warning: "]] as const) {
        if (!Array.isArray(list)) continue;
        for (const e of list) {
          if (typeof e === "string") out.push(this.redact(`${who}${label}${e}`, extra));
        }
      }
    }
    return out;
  }

  #unavailable(res: TailnetResponse, reason: string): CrabboxError {
    const said = this.#message(res);
    const full = said ? `${reason} (${said})` : reason;
    return new CrabboxError(
      "tailnet",
      POLICY_API_UNAVAILABLE,
      `this control plane has no Tailscale-compatible policy API: ${full}`,
      {
        hint:
          "on Headscale, add the tag owner and access rule to the policy yourself; if this is Tailscale, check TS_TAILNET and CRABBOX_TS_API_URL / TS_API_URL",
        details: { status: res.status, call: res.call, reason: full },
      },
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Why a response means "no Tailscale-compatible API here", or undefined. */
function unavailableReason(res: TailnetResponse): string | undefined {
  const type = res.headers.get("content-type") ?? "";
  if (res.status === 404 || res.status === 405 || res.status === 501) {
    return `${res.call} answered ${res.status}`;
  }
  if (res.status === 401 && parseJson(res.body) === undefined) {
    return `${res.call} answered 401 with a non-JSON body (Headscale answers so)`;
  }
  if (res.status >= 200 && res.status <= 299 && /^text\/html/i.test(type)) {
    return `${res.call} answered an HTML page`;
  }
  return undefined;
}

/**
 * A client configured from environment variables (see {@link TailnetClient}).
 * Throws a `credentials` error when none are set.
 *
 * @example
 * ```ts
 * import { tailnetClientFromEnv } from "./api.ts";
 * const client = tailnetClientFromEnv(Deno.env.toObject());
 * console.log(client.authKind); // "api-key" or "oauth"
 * ```
 */
export function tailnetClientFromEnv(
  env: EnvSource,
  options: Omit<TailnetClientOptions, "env"> = {},
): TailnetClient {
  return new TailnetClient({ ...options, env });
}
