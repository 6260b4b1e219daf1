/**
 * Where the Tailscale API is and how to authenticate, read from environment
 * variables through an injected source (nothing reads `Deno.env` at import).
 *
 * - API base URL: `CRABBOX_TS_API_URL`, then `TS_API_URL`, default
 *   `https://api.tailscale.com` (trailing `/` removed).
 * - Tailnet: `TS_TAILNET`, default `-` (the credential's own tailnet).
 * - Credentials: `TS_API_KEY` (HTTP Basic, key as user), else an OAuth client:
 *   `TS_OAUTH_CLIENT_SECRET` with `TS_OAUTH_CLIENT_ID` (the ID may be omitted
 *   when the secret has the `tskey-client-<id>-…` form).
 *
 * @module
 */

import { CrabboxError, usageError } from "../core/errors.ts";

/** Environment variables as a map, or a lookup function such as `Deno.env.get`. */
export type EnvSource =
  | Readonly<Record<string, string | undefined>>
  | ((name: string) => string | undefined);

/** The default Tailscale API base URL. */
export const DEFAULT_TAILSCALE_API_URL = "https://api.tailscale.com";

/** Credentials for the Tailscale API (secret values inside). */
export type TailnetAuth =
  | { readonly kind: "api-key"; readonly apiKey: string }
  | { readonly kind: "oauth"; readonly clientId: string; readonly clientSecret: string };

/** Resolved API settings. */
export interface TailnetConfig {
  /** API base URL without a trailing `/`. */
  readonly apiUrl: string;
  /** Tailnet name (`-` for the credential's default tailnet), not escaped. */
  readonly tailnet: string;
  /** Credentials, or undefined when none are configured. */
  readonly auth?: TailnetAuth;
}

/** What {@link tailnetCredentialsFrom} reports: no secret values. */
export interface TailnetCredentialStatus {
  /** Which kind of credentials will be used, or `none`. */
  auth: "api-key" | "oauth" | "none";
  /** The environment variables the credentials come from. */
  from: string[];
  /** API base URL that will be used. */
  apiUrl: string;
  /** Tailnet that will be used. */
  tailnet: string;
  /** Set when the variables are present but unusable (e.g. OAuth ID missing). */
  problem?: string;
}

/**
 * Turns an {@link EnvSource} into a lookup that trims values and treats empty
 * ones as unset.
 *
 * @example
 * ```ts
 * import { envLookup } from "./config.ts";
 * envLookup({ A: " x ", B: "" })("A"); // "x"
 * ```
 */
export function envLookup(env: EnvSource): (name: string) => string | undefined {
  return (name) => {
    const raw = typeof env === "function" ? env(name) : env[name];
    const v = raw?.trim();
    return v ? v : undefined;
  };
}

const CLIENT_SECRET_RE = /^tskey-client-([A-Za-z0-9]+)-/;

/**
 * Resolves the API URL, tailnet and credentials from `env`. Pure. Throws a
 * usage error for a malformed API URL and a credentials error for a half-set
 * OAuth client; returns `auth: undefined` when nothing is configured.
 *
 * @example
 * ```ts
 * import { resolveTailnetConfig } from "./config.ts";
 * resolveTailnetConfig({ TS_API_KEY: "tskey-api-x" }).auth?.kind; // "api-key"
 * ```
 */
export function resolveTailnetConfig(env: EnvSource): TailnetConfig {
  const get = envLookup(env);
  const rawUrl = get("CRABBOX_TS_API_URL") ?? get("TS_API_URL") ?? DEFAULT_TAILSCALE_API_URL;
  const urlVar = get("CRABBOX_TS_API_URL") ? "CRABBOX_TS_API_URL" : "TS_API_URL";
  let parsed: URL | undefined;
  try {
    parsed = new URL(rawUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== "https:" && parsed.protocol !== "http:") || parsed.search) {
    throw usageError(
      "bad_tailnet_api_url",
      `${urlVar} ${JSON.stringify(rawUrl)} is not an http(s) URL`,
      `set ${urlVar} to a base URL such as ${DEFAULT_TAILSCALE_API_URL}, or unset it`,
    );
  }
  const apiUrl = rawUrl.replace(/\/+$/, "");
  const tailnet = get("TS_TAILNET") ?? "-";
  const apiKey = get("TS_API_KEY");
  if (apiKey) return { apiUrl, tailnet, auth: { kind: "api-key", apiKey } };
  const clientSecret = get("TS_OAUTH_CLIENT_SECRET");
  const clientIdVar = get("TS_OAUTH_CLIENT_ID");
  if (clientSecret) {
    const clientId = clientIdVar ?? CLIENT_SECRET_RE.exec(clientSecret)?.[1];
    if (!clientId) {
      throw new CrabboxError(
        "credentials",
        "tailnet_oauth_incomplete",
        "TS_OAUTH_CLIENT_SECRET is set but TS_OAUTH_CLIENT_ID is not",
        { hint: "set TS_OAUTH_CLIENT_ID to the OAuth client's ID (Settings → OAuth clients)" },
      );
    }
    return { apiUrl, tailnet, auth: { kind: "oauth", clientId, clientSecret } };
  }
  if (clientIdVar) {
    throw new CrabboxError(
      "credentials",
      "tailnet_oauth_incomplete",
      "TS_OAUTH_CLIENT_ID is set but TS_OAUTH_CLIENT_SECRET is not",
      { hint: "set TS_OAUTH_CLIENT_SECRET to the OAuth client's secret, or use TS_API_KEY" },
    );
  }
  return { apiUrl, tailnet };
}

/**
 * Tells, without any network call and without returning secrets, whether
 * Tailscale API credentials are configured, which kind, and for which API
 * URL and tailnet. Never throws: problems are reported in `problem`.
 *
 * @example
 * ```ts
 * import { tailnetCredentialsFrom } from "./config.ts";
 * tailnetCredentialsFrom({ TS_API_KEY: "tskey-api-x" });
 * // { auth: "api-key", from: ["TS_API_KEY"], apiUrl: "https://api.tailscale.com", tailnet: "-" }
 * ```
 */
export function tailnetCredentialsFrom(env: EnvSource): TailnetCredentialStatus {
  const get = envLookup(env);
  try {
    const c = resolveTailnetConfig(env);
    const from = c.auth?.kind === "api-key"
      ? ["TS_API_KEY"]
      : c.auth?.kind === "oauth"
      ? (get("TS_OAUTH_CLIENT_ID")
        ? ["TS_OAUTH_CLIENT_ID", "TS_OAUTH_CLIENT_SECRET"]
        : ["TS_OAUTH_CLIENT_SECRET"])
      : [];
    return { auth: c.auth?.kind ?? "none", from, apiUrl: c.apiUrl, tailnet: c.tailnet };
  } catch (e) {
    return {
      auth: "none",
      from: [],
      apiUrl: get("CRABBOX_TS_API_URL") ?? get("TS_API_URL") ?? DEFAULT_TAILSCALE_API_URL,
      tailnet: get("TS_TAILNET") ?? "-",
      problem: e instanceof Error ? e.message : String(e),
    };
  }
}
