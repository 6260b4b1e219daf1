/**
 * The HTTP exchange every cloud API client shares: send (re-signing or
 * re-authorizing per attempt), redact secrets from the answer, replace what
 * the request carried in a failed answer (so a provider that echoes the
 * request, user data and all, never gets it printed), and retry
 * what the provider's policy calls transient after the delay it chooses,
 * at most `maxRetries` times. Mapping the final error stays with each
 * provider; so do its request shapes.
 *
 * @module
 */

import { CrabboxError } from "../../lib/core/errors.ts";
import { redact } from "../../lib/core/redact.ts";
import { retryAfterMs } from "../../lib/core/retry_after.ts";
import { backoffMs, type CloudRuntime } from "./common.ts";
import { requestFragments, scrubRequestData } from "./request_data.ts";

/** One answer, body read and secrets redacted. */
export interface HttpAnswer {
  /** HTTP status. */
  status: number;
  /** `2xx`. */
  ok: boolean;
  /** Response headers. */
  headers: Headers;
  /**
   * Body text, with every secret replaced by `[redacted]`; in a non-2xx
   * answer also every fragment of the request replaced by `[request data]`.
   */
  text: string;
}

/** What {@link fetchWithRetry} needs. */
export interface RetryingRequest {
  /** Provider name, for error codes and log lines (`gcp`). */
  provider: string;
  /** What is being called, for messages: `the GCP compute API`. */
  api: string;
  /** Host, for the unreachable message. */
  host: string;
  /** The call, for log lines: `GET /servers` (no query, no secrets). */
  what: string;
  /**
   * Sends one attempt (called again for each retry, so it may re-sign or refresh a token).
   * A {@link CrabboxError} it throws is passed through; anything else means unreachable.
   */
  send: () => Promise<Response>;
  /** Secrets to redact from answers and network errors. */
  secrets: () => readonly (string | undefined)[];
  /**
   * What the request carries (its body, its query string): never repeated
   * from a failed answer (see {@link scrubRequestData}).
   */
  request?: readonly (string | undefined)[];
  /** Delay before retrying a non-2xx answer, or `undefined` to stop and return it. */
  retryDelayMs: (
    answer: HttpAnswer,
    attempt: number,
  ) => number | undefined | Promise<number | undefined>;
  /** Retries, sleep. */
  rt: Pick<CloudRuntime, "maxRetries" | "sleep">;
  /** Progress lines. */
  log: (message: string) => void;
  /** Abort signal (an abort is rethrown as is). */
  signal?: AbortSignal;
}

/**
 * Send a request, retrying per the provider's policy; returns the first 2xx
 * answer or the last non-2xx one. A network failure is a provider error
 * `<provider>_unreachable` naming the host.
 *
 * @example
 * ```ts
 * import { fetchWithRetry } from "./http.ts";
 * const answer = await fetchWithRetry({
 *   provider: "x", api: "the X API", host: "api.x.test", what: "GET /boxes",
 *   send: () => Promise.resolve(new Response("[]")), secrets: () => [],
 *   retryDelayMs: () => undefined, rt: { maxRetries: 2, sleep: () => Promise.resolve() },
 *   log: () => {},
 * });
 * answer.ok; // true
 * ```
 */
export async function fetchWithRetry(r: RetryingRequest): Promise<HttpAnswer> {
  let fragments: string[] | undefined;
  for (let attempt = 0;; attempt++) {
    let res: Response;
    try {
      res = await r.send();
    } catch (e) {
      // Aborts and crabbox's own errors (a rejected token exchange) pass through.
      if (r.signal?.aborted || e instanceof CrabboxError) throw e;
      throw new CrabboxError(
        "provider",
        `${r.provider}_unreachable`,
        `cannot reach ${r.api} at ${r.host}: ${
          redact(String((e as Error)?.message ?? e), r.secrets())
        }`,
      );
    }
    const text = redact(await res.text(), r.secrets());
    const answer: HttpAnswer = {
      status: res.status,
      ok: res.ok,
      headers: res.headers,
      text: res.ok ? text : scrubRequestData(text, fragments ??= requestFragments(r.request ?? [])),
    };
    if (answer.ok) return answer;
    const delay = attempt < r.rt.maxRetries ? await r.retryDelayMs(answer, attempt) : undefined;
    if (delay === undefined) return answer;
    r.log(`${r.provider}: ${answer.status} on ${r.what}; retrying in ${delay} ms`);
    await r.rt.sleep(delay, r.signal);
  }
}

/**
 * A 2xx body as JSON (`undefined` when empty); non-JSON is a provider error
 * `<provider>_bad_response`.
 */
export function parseJsonAnswer(
  provider: string,
  label: string,
  text: string,
  what: string,
): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new CrabboxError(
      "provider",
      `${provider}_bad_response`,
      `${label} returned non-JSON for ${what}`,
    );
  }
}

/** `v` as a plain object, or `{}` (for tolerant parsers of API answers). */
export function asObject(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? v as Record<string, unknown>
    : {};
}

/**
 * How long to wait after a throttling answer: its `Retry-After` (seconds or
 * an HTTP date), else exponential backoff; never longer than `maxBackoffMs`.
 *
 * @example
 * ```ts
 * import { retryAfterDelayMs } from "./http.ts";
 * retryAfterDelayMs(new Headers({ "retry-after": "3" }), 0,
 *   { maxBackoffMs: 30_000, now: () => 0 }); // 3000
 * ```
 */
export function retryAfterDelayMs(
  headers: Headers,
  attempt: number,
  rt: Pick<CloudRuntime, "maxBackoffMs" | "now">,
): number {
  return Math.min(
    rt.maxBackoffMs,
    retryAfterMs(headers.get("retry-after"), rt.now()) ?? backoffMs(attempt, 1000, rt.maxBackoffMs),
  );
}

/**
 * The `error` object of a JSON error envelope (`{"error": {...}}`, the shape
 * Hetzner, Google and Azure share), or `{}` when the body is not one.
 *
 * @example
 * ```ts
 * import { errorEnvelope } from "./http.ts";
 * errorEnvelope('{"error":{"code":"x"}}').code; // "x"
 * ```
 */
export function errorEnvelope(text: string): Record<string, unknown> {
  try {
    return asObject(asObject(JSON.parse(text)).error);
  } catch {
    return {};
  }
}
