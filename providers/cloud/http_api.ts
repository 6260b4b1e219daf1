/**
 * A small JSON/form API client on top of {@link fetchWithRetry}, for the
 * providers whose calls are plain REST (RunPod, Semaphore, Daytona, Proxmox):
 * one retry policy (429 waits for `Retry-After`, bounded; 5xx is retried only
 * for GET/DELETE or when the caller says a retry is safe; an answer the
 * provider maps to not-found, not-ready or capacity is final), JSON or form
 * bodies, JSON answers, and the provider's own error mapping. Redirects are
 * refused, so credentials never follow one.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { retryAfterMs } from "../../lib/core/retry_after.ts";
import { backoffMs, type CloudRuntime } from "./common.ts";
import { fetchWithRetry, parseJsonAnswer } from "./http.ts";
import { capMessage } from "./request_data.ts";

/** A body: JSON (sent as `application/json`) or form fields (`x-www-form-urlencoded`). */
export type ApiBody = { json: unknown } | { form: string };

/** One call. */
export interface ApiRequest {
  /** HTTP method. */
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path (and query) below the base URL, starting with `/`. */
  path: string;
  /** Request body. */
  body?: ApiBody;
  /** Abort signal. */
  signal?: AbortSignal;
  /** Retry this call on 5xx even though the method is not GET/DELETE. */
  retryOnServerError?: boolean;
}

/** A failed answer as the provider's error mapper sees it (body already redacted). */
export interface ApiFailure {
  /** HTTP status. */
  status: number;
  /** Response body, secrets redacted. */
  text: string;
  /** `METHOD /path` without the query, for messages. */
  where: string;
}

/** What {@link apiClient} needs from a provider. */
export interface ApiClientOptions {
  /** Provider name for codes and logs (`runpod`). */
  provider: string;
  /** Base URL without trailing slash. */
  baseUrl: string;
  /** Auth and extra headers of every call (read lazily, so a missing key fails at the first call). */
  headers: () => Record<string, string>;
  /** Secrets to redact from anything that could be printed. */
  secrets: () => string[];
  /** fetch. */
  fetch: typeof fetch;
  /** A `Deno.HttpClient` (custom CA), passed to fetch when set. */
  client?: Deno.HttpClient;
  /** Runtime knobs (retries, backoff cap, sleep, clock). */
  rt: CloudRuntime;
  /** Progress log. */
  log: (message: string) => void;
  /** Map a failed answer to the error to throw. */
  toError: (failure: ApiFailure) => CrabboxError;
}

/** A response: status, parsed JSON (`undefined` for an empty body) and headers. */
export interface ApiResponse {
  /** HTTP status. */
  status: number;
  /** Parsed body. */
  json: unknown;
  /** Response headers. */
  headers: Headers;
}

/** Whether a mapped error ends the retries even for a retryable status. */
function final(e: CrabboxError): boolean {
  return e.kind !== "provider" || /_(not_found|not_ready|capacity)$/.test(e.code);
}

/**
 * Build the call function of one provider's API. `options` may be a
 * function: it is called once, at the first request, so settings that can be
 * missing (a base URL from config, a CA file) fail that call, not the
 * provider's construction.
 *
 * @example
 * ```ts
 * import { apiClient } from "./http_api.ts";
 * import { cloudRuntime } from "./common.ts";
 * import { CrabboxError } from "../../lib/core/mod.ts";
 * const ctx = { home: "/tmp", env: () => undefined, config: {}, fetch, log: () => {} };
 * const call = apiClient({
 *   provider: "demo", baseUrl: "http://127.0.0.1:9", headers: () => ({}), secrets: () => [],
 *   fetch, rt: cloudRuntime(ctx, { waitForSsh: false }, 10), log: () => {},
 *   toError: (f) => new CrabboxError("provider", "demo_error", `${f.where}: ${f.status}`),
 * });
 * ```
 */
export function apiClient(
  configure: ApiClientOptions | (() => ApiClientOptions),
): (request: ApiRequest) => Promise<ApiResponse> {
  let resolved: ApiClientOptions | undefined;
  return async (request) => {
    const options = resolved ??= typeof configure === "function" ? configure() : configure;
    const { provider, rt } = options;
    const where = `${request.method} ${request.path.split("?")[0]}`;
    const headers: Record<string, string> = { accept: "application/json", ...options.headers() };
    let body: string | undefined;
    if (request.body && "json" in request.body) {
      body = JSON.stringify(request.body.json);
      headers["content-type"] = "application/json";
    } else if (request.body) {
      body = request.body.form;
      headers["content-type"] = "application/x-www-form-urlencoded";
    }
    const init: RequestInit & { client?: Deno.HttpClient } = {
      method: request.method,
      headers,
      body,
      signal: request.signal,
      redirect: "error",
    };
    if (options.client) init.client = options.client;
    const safe = request.method === "GET" || request.method === "DELETE";
    const answer = await fetchWithRetry({
      provider,
      api: `the ${provider} API`,
      host: new URL(options.baseUrl).host,
      what: where,
      send: () => options.fetch(`${options.baseUrl}${request.path}`, init),
      secrets: options.secrets,
      request: [body, request.path.split("?")[1]],
      retryDelayMs: (a, attempt) => {
        const retryable = a.status === 429 ||
          (a.status >= 500 && (safe || request.retryOnServerError === true));
        if (!retryable || final(options.toError({ status: a.status, text: a.text, where }))) {
          return undefined;
        }
        return a.status === 429
          ? Math.min(
            rt.maxBackoffMs,
            Math.max(250, retryAfterMs(a.headers.get("retry-after"), rt.now()) ?? 250),
          )
          : backoffMs(attempt, 500, rt.maxBackoffMs);
      },
      rt,
      log: options.log,
      signal: request.signal,
    });
    if (!answer.ok) throw options.toError({ status: answer.status, text: answer.text, where });
    return {
      status: answer.status,
      json: parseJsonAnswer(provider, provider, answer.text, where),
      headers: answer.headers,
    };
  };
}

/**
 * The message of an error body: the first non-empty string among `fields` of
 * its JSON (a string list is joined), else the plain text; trimmed, at most
 * 300 characters.
 *
 * @example
 * ```ts
 * import { errorMessage } from "./http_api.ts";
 * errorMessage('{"error":"pod not found","status":404}'); // "pod not found"
 * errorMessage("Unauthorized"); // "Unauthorized"
 * ```
 */
export function errorMessage(
  text: string,
  fields: readonly string[] = ["message", "error"],
): string {
  let json: Record<string, unknown> = {};
  try {
    const v = JSON.parse(text);
    if (v !== null && typeof v === "object" && !Array.isArray(v)) json = v;
  } catch {
    // a plain-text body
  }
  for (const f of fields) {
    const v = json[f];
    if (typeof v === "string" && v.trim() !== "") return capMessage(v);
    if (Array.isArray(v) && v.some((x) => typeof x === "string")) {
      return capMessage(v.filter((x) => typeof x === "string").join("; "));
    }
  }
  return capMessage(text) || "(empty body)";
}

/** How a provider's REST errors are named. */
export interface RestErrorNames {
  /** Provider name, the prefix of codes (`runpod`). */
  provider: string;
  /** Display name (`RunPod`). */
  label: string;
  /** The credentials as the user sets them (`RUNPOD_API_KEY`); named in 401/403 messages. */
  credentials: string;
  /** How to fix rejected credentials. */
  hint: string;
}

/**
 * The common mapping of a failed REST call: 401/403 → credentials (exit 9)
 * naming the variable, 404 → `<p>_not_found`, 400/422 → `<p>_invalid`,
 * 409 → `<p>_conflict`, 429 → `<p>_rate_limited`, else `<p>_error` (all
 * provider errors exit 4). `said` is the provider's message.
 *
 * @example
 * ```ts
 * import { restError } from "./http_api.ts";
 * restError({ status: 401, text: "", where: "GET /pods" }, "bad key",
 *   { provider: "runpod", label: "RunPod", credentials: "RUNPOD_API_KEY", hint: "check it" })
 *   .exitStatus; // 9
 * ```
 */
export function restError(f: ApiFailure, said: string, names: RestErrorNames): CrabboxError {
  const { provider: p, label } = names;
  const details = { status: f.status };
  if (f.status === 401 || f.status === 403) {
    return new CrabboxError(
      "credentials",
      `${p}_auth`,
      `${label} rejected ${names.credentials} (${f.status} ${said}) on ${f.where}`,
      { hint: names.hint, details },
    );
  }
  const [code, message] = f.status === 404
    ? ["not_found", `${label}: ${f.where}: ${said}`]
    : f.status === 400 || f.status === 422
    ? ["invalid", `${label} rejected ${f.where}: ${said}`]
    : f.status === 409
    ? ["conflict", `${label}: ${f.where}: ${said}`]
    : f.status === 429
    ? ["rate_limited", `${label} rate limit exceeded on ${f.where} and retries ran out`]
    : ["error", `${label} ${f.where} failed: ${f.status} ${said}`];
  return new CrabboxError("provider", `${p}_${code}`, message, { details });
}
